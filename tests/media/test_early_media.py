"""Early media: the requester offers while its call rings (docs/protocol.md#calls-and-webrtc).

Why it exists: the callee's first picture of the requester needs the requester's connection
up; offered at the ring instead of after the accept, that set-up (~150 ms) is off the path
(benchmarks/call_setup.py). What must hold: the early answer keeps m-lines for the callee, so
an accepted call needs no further negotiation with the requester; nothing is forwarded before
the accept, and a declined call leaves no connection behind; an early connection that did not
come up is rebuilt by a second offer (the TURN servers arrive with ``connecting``).
"""

from __future__ import annotations

import asyncio

from aiortc.mediastreams import AudioStreamTrack

from tests.media.conftest import escalated
from tests.media.rtc_client import GREEN, RED, ColourTrack, RtcClient, bare_pc


async def _ringing(gw):
    v, a, cid = await escalated(gw)
    st = await v.request("call.request", conversation=cid, video=True)
    assert st["type"] == "call.state" and st["state"] == "ringing", st
    assert "ice_servers" not in st or not st["ice_servers"]  # no TURN while it rings
    return v, a, cid, st["call"]


def _peers(gw, user: str) -> list:
    return [p for p in gw.gw.media.peers() if p.owner == user]


async def test_early_offer_then_accept_needs_no_second_round(gw):
    v, a, cid, call = await _ringing(gw)
    vc, ac = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN)
    try:
        answer = await vc.start(call)  # while ringing
        # the answer keeps one m-line per kind for the callee, still to come
        assert {(t["user"], t["kind"]) for t in answer["tracks"]} == {("a1", "audio"),
                                                                       ("a1", "video")}
        peer = _peers(gw, "v1")[0]
        for _ in range(100):  # the early connection comes up while it rings
            if peer.connected:
                break
            await asyncio.sleep(0.05)
        assert peer.connected
        assert gw.gw.media.calls.get(call).state == "ringing"
        assert not ac.sinks  # nothing reaches anyone before the accept
        acc = await a.request("call.accept", call=call)
        assert acc["type"] == "call.state" and acc["state"] == "connecting", acc
        await ac.start(call)
        await asyncio.gather(ac.wait_colour("v1", RED), vc.wait_colour("a1", GREEN),
                             ac.wait_audio("v1"), vc.wait_audio("a1"))
        assert vc.offers == [], "the requester was asked to negotiate again"
        await v.event("call.state", call=call, state="active")
    finally:
        await vc.close()
        await ac.close()


async def test_declined_early_call_leaves_no_connection(gw):
    v, a, cid, call = await _ringing(gw)
    vc = RtcClient(v, "v1", RED)
    try:
        await vc.start(call)
        assert len(_peers(gw, "v1")) == 1
        d = await a.request("call.decline", call=call)
        assert d["type"] == "call.state" and d["state"] == "ended", d
        for _ in range(50):
            if not _peers(gw, "v1"):
                break
            await asyncio.sleep(0.05)
        assert _peers(gw, "v1") == []
    finally:
        await vc.close()


async def test_early_connection_not_up_is_rebuilt_by_a_new_offer(gw):
    v, a, cid, call = await _ringing(gw)
    stuck = bare_pc()  # offers, never applies the answer: never connects
    stuck.addTrack(AudioStreamTrack())
    stuck.addTrack(ColourTrack(RED))
    await stuck.setLocalDescription(await stuck.createOffer())
    vc, ac = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN)
    try:
        r = await v.request("rtc.offer", call=call, sdp=stuck.localDescription.sdp)
        assert r["type"] == "rtc.answer", r
        first = _peers(gw, "v1")[0]
        assert not first.connected
        acc = await a.request("call.accept", call=call)
        assert acc["state"] == "connecting", acc
        await vc.start(call)  # the second offer: a new connection, not bad_state
        assert first.closed and _peers(gw, "v1") != [first]
        await ac.start(call)
        await ac.wait_colour("v1", RED)
        # once a connection is up, a client offer is refused again (only the gateway offers)
        e = await v.request("rtc.offer", call=call, sdp=stuck.localDescription.sdp)
        assert e["type"] == "error" and e["code"] == "bad_state", e
    finally:
        await stuck.close()
        await vc.close()
        await ac.close()


async def test_turn_credentials_reach_an_early_requester_only_if_it_must_offer_again():
    from tests.conftest import start_gateway, stop_gateway
    from tests.media.conftest import EscalatingStub, media_config
    # (no STUN server: the gateway would ask it for its own candidates, and none listens)
    turn = dict(turn_urls=["turn:127.0.0.1:3478"], turn_secret="early-secret")
    gw = await start_gateway(media_config(**turn), responder=EscalatingStub())
    stuck = bare_pc()
    stuck.addTrack(AudioStreamTrack())
    await stuck.setLocalDescription(await stuck.createOffer())
    vc = None
    try:
        # an early connection that is not up when the call is answered: TURN comes with it
        v, a, cid, call = await _ringing(gw)
        r = await v.request("rtc.offer", call=call, sdp=stuck.localDescription.sdp)
        assert r["type"] == "rtc.answer", r
        assert not any("credential" in s for s in r.get("ice_servers") or [])
        await a.request("call.accept", call=call)
        vst = await v.event("call.state", call=call, state="connecting")
        assert any(s.get("credential") for s in vst["ice_servers"]), vst
        await a.request("call.hangup", call=call)
        await v.event("call.state", call=call, state="ended")
        # an early connection that is up: nothing to offer again, no credential
        v2, a2, cid2, call2 = await _ringing_as(gw, "v2", "a2")
        vc = RtcClient(v2, "v2", RED)
        await vc.start(call2)
        peer = _peers(gw, "v2")[0]
        for _ in range(100):
            if peer.connected:
                break
            await asyncio.sleep(0.05)
        assert peer.connected
        await a2.request("call.accept", call=call2)
        vst2 = await v2.event("call.state", call=call2, state="connecting")
        assert not vst2.get("ice_servers"), vst2
    finally:
        await stuck.close()
        if vc is not None:
            await vc.close()
        await stop_gateway(gw)


async def _ringing_as(gw, viewer: str, agent: str):
    v, a, cid = await escalated(gw, viewer, agent)
    st = await v.request("call.request", conversation=cid, video=True)
    assert st["state"] == "ringing", st
    return v, a, cid, st["call"]
