"""Calls through the aiortc gateway with independent in-process aiortc clients: each side
decodes the *other* participants' colours and receives their audio; hangup cleans up."""

from __future__ import annotations

import asyncio
import json

from tests.media.conftest import escalated, one_to_one, ring
from tests.media.rtc_client import BLUE, GREEN, RED, RtcClient


async def eventually(pred, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def users(state: dict) -> set[str]:
    return {p["user"] for p in state["participants"]}


async def test_one_to_one_then_host_joins_then_hangup(gw):
    media = gw.gw.media
    v, a, cid = await escalated(gw)
    h = await gw.client("host", "h1", room=gw.room_id, name="Host")
    await h.request("ping")  # a session is live (gets events) after its first request
    call = await ring(v, a, cid)
    vc, ac, hc = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN), RtcClient(h, "h1", BLUE)
    try:
        # 1:1 — each decodes the other's colour and hears the other
        await vc.start(call)
        await ac.start(call)
        await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED),
                             vc.wait_audio("a1"), ac.wait_audio("v1"))
        active = await v.event("call.state", call=call, state="active")
        assert users(active) == {"v1", "a1"} and active["started_at"] > 0
        assert vc.sink_of("v1", "video") is None  # nobody gets their own video back

        # the agent invites the host of the room; the host joins
        inv = await a.request("call.invite", call=call, user="h1")
        assert inv["type"] == "call.state" and inv["invited"] == ["h1"], inv
        inc = await h.event("call.incoming", call=call)
        assert inc["conversation"] == cid and inc["from"]["user"] == "a1"
        joined = await h.request("call.join", call=call)
        assert joined["type"] == "call.state" and users(joined) == {"v1", "a1", "h1"}
        assert joined["ice_servers"] == []
        await hc.start(call)
        await asyncio.gather(
            hc.wait_colour("v1", RED), hc.wait_colour("a1", GREEN),
            vc.wait_colour("h1", BLUE), vc.wait_colour("a1", GREEN),
            ac.wait_colour("h1", BLUE), ac.wait_colour("v1", RED),
            hc.wait_audio("v1"), hc.wait_audio("a1"), vc.wait_audio("h1"), ac.wait_audio("h1"))
        assert len(media.peers()) == 3
        assert not (vc.errors or ac.errors or hc.errors)

        # the host hangs up: only the host leaves; the other two keep talking
        left = await h.request("call.hangup", call=call)
        assert left["type"] == "call.state" and users(left) == {"v1", "a1"}
        assert left["state"] == "active"
        await v.wait_for(lambda f: f.get("type") == "call.state" and users(f) == {"v1", "a1"}
                         and f["state"] == "active" and f.get("invited") is None
                         and any(x["type"] == "call.state" and "h1" in users(x)
                                 for x in v.frames))
        await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED))
        assert len(media.peers()) == 2

        # the viewer hangs up: over for everyone
        end = await v.request("call.hangup", call=call)
        assert end["state"] == "ended" and end["reason"] == "hangup"
        got = await a.event("call.state", call=call, state="ended")
        assert got["reason"] == "hangup"
        # the ended state goes out first; the connections close right behind it
        await eventually(lambda: media.peers() == [] and media.forwarder.sources() == []
                         and media.calls.all() == [] and not media._tasks)
        late = await a.request("call.hangup", call=call)
        assert late["type"] == "error" and late["code"] == "bad_state"
    finally:
        for c in (vc, ac, hc):
            await c.close()


def _said(frame: dict) -> str:
    """A call.state as its recipient reads it: without its sequence number and request id,
    TURN credentials (minted anew each time) reduced to whether there are any."""
    f = {k: v for k, v in frame.items() if k not in ("seq", "id")}
    f["ice_servers"] = bool(f.get("ice_servers"))
    return json.dumps(f, sort_keys=True)


async def test_call_set_up_announces_no_call_state_twice(gw):
    """Every ``call.state`` a participant gets through a call's set-up says something new:
    the connections' steps that change nothing shown are not announced (each repeat is a
    message every page handles while its camera starts; docs/performance.md)."""
    async with one_to_one(gw) as c:
        await c.v.event("call.state", call=c.call, state="active")
        await c.a.event("call.state", call=c.call, state="active")
        await asyncio.sleep(0.3)  # whatever else the set-up announces
        for who in (c.v, c.a):
            said = [_said(f) for f in who.frames
                    if f.get("type") == "call.state" and f.get("call") == c.call]
            assert len(said) >= 3, said  # ringing (or incoming) … connecting … active
            repeats = [b for a, b in zip(said, said[1:], strict=False) if a == b]
            assert not repeats, repeats
            # and nothing was left out: the last one says what is so
            last = json.loads(said[-1])
            assert last["state"] == "active", last
            assert {p["status"] for p in last["participants"]} == {"connected"}, last
