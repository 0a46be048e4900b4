"""Negotiation rules and refusals: bad_state while ringing (for the callee), bad_sdp (the call carries on),
glare, a second client offer, and who may touch a call (not_member / forbidden)."""

from __future__ import annotations

import asyncio

from tests.media.conftest import escalated, ring
from tests.media.rtc_client import GREEN, RED, RtcClient

GARBAGE_SDP = "v=0\r\nthis is not an SDP\r\n"


async def test_offer_while_ringing_is_bad_state(gw):
    v, a, cid = await escalated(gw)
    st = await v.request("call.request", conversation=cid, video=True)
    call = st["call"]
    # the callee has not accepted: nothing to negotiate yet
    e = await a.request("rtc.offer", call=call, sdp=GARBAGE_SDP)
    assert e["type"] == "error" and e["code"] == "bad_state", e
    # the requester may offer while it rings (early media, test_early_media.py): its offer
    # is read, and this one is refused as an SDP
    e = await v.request("rtc.offer", call=call, sdp=GARBAGE_SDP)
    assert e["type"] == "error" and e["code"] == "bad_sdp", e
    # a second call on the same conversation is refused while this one lives
    e = await a.request("call.request", conversation=cid, video=False)
    assert e["type"] == "error" and e["code"] == "conflict"
    # the callee declines: ended/declined for both
    d = await a.request("call.decline", call=call)
    assert d["type"] == "call.state" and d["state"] == "ended" and d["reason"] == "declined"
    got = await v.event("call.state", call=call, state="ended")
    assert got["reason"] == "declined"
    assert gw.gw.metrics.calls.labels(outcome="declined")._value.get() == 1


async def test_bad_sdp_offer_and_answer_then_call_carries_on(gw):
    v, a, cid = await escalated(gw)
    call = await ring(v, a, cid)
    for bad in (GARBAGE_SDP, "", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 NOPE/90000\r\n"):
        e = await v.request("rtc.offer", call=call, sdp=bad)
        assert e["type"] == "error" and e["code"] == "bad_sdp", e
    vc = RtcClient(v, "v1", RED, auto_answer=False)
    ac = RtcClient(a, "a1", GREEN)
    try:
        # the viewer offers audio only: the agent's audio goes out in the answer's own
        # m-line, its video needs an m-line of a gateway offer (answered by hand below)
        await vc.start(call, video=False)
        await ac.start(call)
        offer = await v.event("rtc.offer", call=call, timeout=5)  # the agent's video for v1
        e = await v.request("rtc.answer", call=call, sdp=GARBAGE_SDP)
        assert e["type"] == "error" and e["code"] == "bad_sdp", e
        ok = await vc.answer(offer)
        assert ok["type"] == "ack", ok
        await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_audio("v1"))
        # nothing outstanding now: a stray answer is bad_state
        e = await v.request("rtc.answer", call=call, sdp=GARBAGE_SDP)
        assert e["type"] == "error" and e["code"] == "bad_state"
    finally:
        await vc.close()
        await ac.close()


async def test_glare_and_second_offer(gw):
    v, a, cid = await escalated(gw)
    call = await ring(v, a, cid)
    vc = RtcClient(v, "v1", RED, auto_answer=False)
    ac = RtcClient(a, "a1", GREEN)
    try:
        await vc.start(call, video=False)  # the agent's video then needs a gateway offer
        await ac.start(call)
        offer = await v.event("rtc.offer", call=call, timeout=5)
        # the viewer offers while the gateway's offer is outstanding: glare, nothing changes
        e = await v.request("rtc.offer", call=call, sdp=vc.pc.localDescription.sdp)
        assert e["type"] == "error" and e["code"] == "glare", e
        assert (await vc.answer(offer))["type"] == "ack"
        await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_audio("v1"))
        # negotiated and nothing outstanding: only the gateway offers from now on
        e = await a.request("rtc.offer", call=call, sdp=ac.pc.localDescription.sdp)
        assert e["type"] == "error" and e["code"] == "bad_state", e
        # trickled browser candidates are accepted (end-of-candidates too)
        ok = await a.request("rtc.candidate", call=call, sdpMid="0", sdpMLineIndex=0,
                             candidate="candidate:1 1 udp 2122260223 192.0.2.9 50000 typ host")
        assert ok["type"] == "ack", ok
        assert (await a.request("rtc.candidate", call=call, candidate=""))["type"] == "ack"
        e = await a.request("rtc.candidate", call=call, candidate="candidate:nonsense")
        assert e["type"] == "error" and e["code"] == "bad_request"
        await vc.wait_colour("a1", GREEN)  # still flowing
    finally:
        await vc.close()
        await ac.close()


async def test_who_may_touch_a_call(gw):
    v, a, cid = await escalated(gw)
    other_v = await gw.client("viewer", "v2", room=gw.room_id)
    host = await gw.client("host", "h1", room=gw.room_id)
    await host.request("ping")
    stranger_host = await gw.client("host", "h2", room="some-other-room")
    await stranger_host.request("ping")
    e = await other_v.request("call.request", conversation=cid, video=True)
    assert e["code"] == "not_member", e
    e = await host.request("call.request", conversation=cid, video=True)
    assert e["code"] == "forbidden", e  # hosts cannot place calls
    call = await ring(v, a, cid)
    for msg, fields in (("call.hangup", {}), ("call.mute", {"audio": False}),
                        ("rtc.offer", {"sdp": GARBAGE_SDP}), ("call.accept", {})):
        e = await other_v.request(msg, call=call, **fields)
        assert e["type"] == "error" and e["code"] == "not_member", (msg, e)
    e = await host.request("call.join", call=call)
    assert e["code"] == "not_member", e  # not invited (yet)
    e = await v.request("call.invite", call=call, user="h1")
    assert e["code"] == "forbidden", e  # only agents invite
    e = await a.request("call.invite", call=call, user="v2")
    assert e["code"] == "forbidden", e  # not a host
    e = await a.request("call.invite", call=call, user="h2")
    assert e["code"] == "forbidden", e  # host of another room
    e = await a.request("call.invite", call=call, user="nobody")
    assert e["code"] == "not_found", e
    e = await a.request("call.invite", call="call_nope", user="h1")
    assert e["code"] == "not_found", e
    # mute is reflected to the others
    m = await v.request("call.mute", call=call, video=False)
    assert m["type"] == "call.state"
    got = await a.wait_for(lambda f: f.get("type") == "call.state" and any(
        p["user"] == "v1" and p["video"] is False and p["audio"] is True
        for p in f["participants"]))
    assert got["call"] == call
    # an invited host may decline; it is then no longer invited
    assert (await a.request("call.invite", call=call, user="h1"))["type"] == "call.state"
    await host.event("call.incoming", call=call)
    d = await host.request("call.decline", call=call)
    assert d["type"] == "call.state" and d.get("invited") is None
    e = await host.request("call.join", call=call)
    assert e["code"] == "not_member", e
