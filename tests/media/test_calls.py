"""Calls through the aiortc gateway with independent in-process aiortc clients: each side
decodes the *other* participants' colours and receives their audio; hangup cleans up."""

from __future__ import annotations

import asyncio

from tests.media.conftest import escalated, ring
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
