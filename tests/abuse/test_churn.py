"""Finding 8 (issue 13): abuse by one viewer does not reach agents.

* one viewer cycling open → escalate → call → close 30 times in 10 s sent one agent 30
  ``conversation.assigned`` and 40 ``call.incoming``: now it is slowed, then refused
  (``rate_limited``), and the agent gets at most one ring per viewer per ``ring_interval_s``;
* three angry conversations the viewer closed itself right after assignment tripped the
  agent's fatigue guard and left an innocent viewer queued: now quick self-closes are ignored.

Both on the memory backend and on Redis.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.abuse.helpers import frames, start_on
from tests.conftest import stop_gateway
from tests.workspace.helpers import agent

pytestmark = pytest.mark.parity


async def test_churning_viewer_is_slowed_then_refused_and_rings_the_agent_once(backend):
    gw = await start_on(backend, escalation_delay_s=0.05)
    try:
        a = await agent(gw, "a1")
        v = await gw.client("viewer", "churner", room=gw.room_id, name="Churner")
        refusals: list[dict] = []
        slowest = 0.0
        t_end = time.monotonic() + 10.0
        for _i in range(30):
            if time.monotonic() > t_end:
                break
            o = await v.request("conversation.open", room=gw.room_id)
            if o["type"] == "error":
                refusals.append(o)
                continue
            cid = o["conversation"]
            t0 = time.monotonic()
            e = await v.request("conversation.escalate", conversation=cid, reason="churn")
            slowest = max(slowest, time.monotonic() - t0)
            if e["type"] == "error":
                refusals.append(e)
            else:
                try:
                    await v.event("conversation.state", conversation=cid, state="assigned",
                                  timeout=2.0)
                except TimeoutError:
                    pass
                for _ in range(2):  # a ring, and a second try at once
                    r = await v.request("call.request", conversation=cid, video=False)
                    if r["type"] == "error" and r["code"] == "rate_limited":
                        refusals.append(r)
                    c = [f for f in v.frames if f.get("type") == "call.state"
                         and f.get("conversation") == cid and f.get("state") == "ringing"]
                    if c:
                        await v.request("call.hangup", call=c[-1]["call"])
            await v.request("conversation.close", conversation=cid)
        await asyncio.sleep(0.3)
        assigned = frames(a, "conversation.assigned")
        rings = frames(a, "call.incoming")
        assert len(assigned) <= 6, f"{len(assigned)} assignments reached the agent"
        assert len(rings) == 1, f"{len(rings)} rings reached the agent"
        codes = {r["code"] for r in refusals}
        assert codes == {"rate_limited"}, refusals[:3]
        assert all("try again in" in r["message"] for r in refusals)
        assert slowest >= 0.05  # escalations past the third waited before their ack
    finally:
        await stop_gateway(gw)


async def test_bot_escalation_counts_too_and_the_bot_says_so(backend):
    """Asking the bot for a person goes through the same allowance as the button."""
    gw = await start_on(backend, escalation_delay_s=0.0, escalations_per_viewer_per_hour=2,
                        escalations_slow_after=2)
    try:
        a = await agent(gw, "a1")
        v = await gw.client("viewer", "v1", room=gw.room_id)
        for i in range(3):
            cid = (await v.request("conversation.open", room=gw.room_id))["conversation"]
            r = await v.request("message.send", conversation=cid, text="我要转人工",
                                client_msg_id=f"m{i}")
            assert r["type"] == "message"
            if i < 2:
                await a.event("conversation.assigned", conversation=cid)
            else:
                said = await v.wait_for(lambda f, cid=cid: f.get("type") == "message"
                                        and f.get("conversation") == cid
                                        and "转人工的次数较多" in f.get("text", ""))
                assert said["from"]["role"] == "bot"
            await v.request("conversation.close", conversation=cid)
        await asyncio.sleep(0.2)
        assert len(frames(a, "conversation.assigned")) == 2
    finally:
        await stop_gateway(gw)


async def test_quick_self_closes_do_not_trip_the_fatigue_guard(backend):
    gw = await start_on(backend, fatigue_threshold=3, quick_close_s=30.0)
    try:
        a = await agent(gw, "a1")
        v = await gw.client("viewer", "angry", room=gw.room_id)
        for i in range(3):
            cid = (await v.request("conversation.open", room=gw.room_id))["conversation"]
            await v.request("message.send", conversation=cid, text="angry!! 我要转人工",
                            client_msg_id=f"x{i}")
            await a.event("conversation.assigned", conversation=cid)
            r = await v.request("conversation.close", conversation=cid)
            assert r["type"] == "ack"
            await v.event("conversation.state", conversation=cid, state="resolved")
        await asyncio.sleep(0.2)
        assert not frames(a, "agent.break_suggested")
        assert gw.gw.workspace.wellbeing.run_of("a1") == 0
        # the innocent viewer is served at once, not queued behind a paused agent
        w = await gw.client("viewer", "innocent", room=gw.room_id)
        cid = (await w.request("conversation.open", room=gw.room_id))["conversation"]
        await w.request("message.send", conversation=cid, text="我要转人工", client_msg_id="i")
        await a.event("conversation.assigned", conversation=cid)
        assert gw.gw.support.store.get(cid).state == "assigned"
    finally:
        await stop_gateway(gw)


async def test_an_angry_conversation_the_agent_handled_still_counts(backend):
    """The guard still protects agents: conversations the agent resolved count, and so do
    ones the viewer closed after ``quick_close_s``."""
    gw = await start_on(backend, fatigue_threshold=2, quick_close_s=0.2)
    try:
        a = await agent(gw, "a1")
        v = await gw.client("viewer", "v1", room=gw.room_id)
        cid = (await v.request("conversation.open", room=gw.room_id))["conversation"]
        await v.request("message.send", conversation=cid, text="angry!! 我要转人工",
                        client_msg_id="a")
        await a.event("conversation.assigned", conversation=cid)
        await a.request("conversation.resolve", conversation=cid)
        w = await gw.client("viewer", "v2", room=gw.room_id)
        cid = (await w.request("conversation.open", room=gw.room_id))["conversation"]
        await w.request("message.send", conversation=cid, text="angry!! 我要转人工",
                        client_msg_id="b")
        await a.event("conversation.assigned", conversation=cid)
        await asyncio.sleep(0.3)  # longer than quick_close_s: a real conversation
        await w.request("conversation.close", conversation=cid)
        ev = await a.event("agent.break_suggested")
        assert ev["consecutive"] == 2
    finally:
        await stop_gateway(gw)


async def _assigned_conversation(gw, v):
    o = await v.request("conversation.open", room=gw.room_id)
    cid = o["conversation"]
    await v.request("conversation.escalate", conversation=cid, reason="a question")
    await v.event("conversation.state", conversation=cid, state="assigned", timeout=5.0)
    return cid


async def test_a_redial_after_an_answered_call_rings_at_once(backend):
    """The ring limit holds back repeat rings, not a viewer whose answered call dropped:
    an answered ring is forgotten, an unanswered one still counts."""
    gw = await start_on(backend)
    try:
        a = await agent(gw, "a1")
        v = await gw.client("viewer", "caller", room=gw.room_id, name="Caller")
        cid = await _assigned_conversation(gw, v)
        r = await v.request("call.request", conversation=cid, video=False)
        assert r["type"] != "error", r
        inc = await a.event("call.incoming", conversation=cid, timeout=5.0)
        assert (await a.request("call.accept", call=inc["call"]))["type"] != "error"
        await v.request("call.hangup", call=inc["call"])
        await v.event("call.state", call=inc["call"], state="ended", timeout=5.0)
        again = await v.request("call.request", conversation=cid, video=False)
        assert again["type"] != "error", again  # the redial rings
        inc2 = await a.wait_for(lambda f: f.get("type") == "call.incoming"
                                and f.get("call") != inc["call"], timeout=5.0)
        await v.request("call.hangup", call=inc2["call"])  # unanswered this time
        await v.event("call.state", call=inc2["call"], state="ended", timeout=5.0)
        third = await v.request("call.request", conversation=cid, video=False)
        assert third["type"] == "error" and third["code"] == "rate_limited", third
    finally:
        await stop_gateway(gw)
