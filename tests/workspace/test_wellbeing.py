"""Agent status, capacity from config, the fatigue guard and the supervisor view."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import stop_gateway
from tests.workspace.helpers import agent, escalated, start, viewer

pytestmark = pytest.mark.parity


async def negative_conversation(gw, a, user, mood="angry"):
    v, cid = await viewer(gw, user)
    await escalated(gw, v, cid, a, text=f"{mood}!! 我要转人工")
    await a.request("conversation.resolve", conversation=cid)
    return v, cid


async def test_fatigue_guard_pauses_after_three_negative_conversations(backend):
    gw = await start(backend, fatigue_threshold=3)
    try:
        admin = await gw.client("admin", "boss")
        await admin.request("queue.get")
        a = await agent(gw, "a1")
        await negative_conversation(gw, a, "u1", "angry")
        await negative_conversation(gw, a, "u2", "negative")
        assert not [f for f in a.frames if f.get("type") == "agent.break_suggested"]
        await negative_conversation(gw, a, "u3", "angry")
        ev = await a.event("agent.break_suggested")
        assert ev == {**ev, "agent": "a1", "consecutive": 3}
        await admin.event("agent.break_suggested", agent="a1")
        view = await admin.request("supervisor.agents")
        [row] = view["agents"]
        assert row["paused"] is True and row["consecutive_negative"] == 3
        assert row["status"] == "available" and row["load"] == 0

        # the next viewer waits: a1 is paused although available and free
        v4, c4 = await viewer(gw, "u4")
        await v4.request("message.send", conversation=c4, text="我要转人工", client_msg_id="e")
        await v4.event("queue", conversation=c4)
        await asyncio.sleep(0.2)
        assert gw.gw.support.store.get(c4).state == "queued"
        # a second agent gets it instead
        a2 = await agent(gw, "a2")
        await a2.event("conversation.assigned", conversation=c4)
        # a1 takes the break and comes back: pause cleared, run starts afresh
        await a.request("agent.status", status="break")
        await a.request("agent.status", status="available")
        view = await admin.request("supervisor.agents")
        row = next(r for r in view["agents"] if r["user"] == "a1")
        assert row["paused"] is False and row["consecutive_negative"] == 0
        v5, c5 = await viewer(gw, "u5")
        await escalated(gw, v5, c5, a)  # a1 has load 0 < a2's 1: gets it
    finally:
        await stop_gateway(gw)


async def test_a_calm_conversation_breaks_the_run(backend):
    gw = await start(backend, fatigue_threshold=2)
    try:
        a = await agent(gw, "a1")
        await negative_conversation(gw, a, "u1", "angry")
        await negative_conversation(gw, a, "u2", "calm")
        await negative_conversation(gw, a, "u3", "angry")
        await asyncio.sleep(0.1)
        assert not [f for f in a.frames if f.get("type") == "agent.break_suggested"]
        assert gw.gw.workspace.wellbeing.run_of("a1") == 1
    finally:
        await stop_gateway(gw)


async def test_capacity_per_agent_and_supervisor_pushes(backend):
    gw = await start(backend, agent_capacities={"a1": 1})
    try:
        admin = await gw.client("admin", "boss")
        await admin.request("queue.get")
        a = await agent(gw, "a1")
        view = await admin.request("supervisor.agents")
        row = view["agents"][0]
        assert row["capacity"] == 1 and row["status"] == "available" and row["in_status_s"] >= 0
        v1, c1 = await viewer(gw, "u1")
        await escalated(gw, v1, c1, a)
        v2, c2 = await viewer(gw, "u2")
        await v2.request("message.send", conversation=c2, text="我要转人工", client_msg_id="e")
        await v2.event("queue", conversation=c2)
        await asyncio.sleep(0.2)
        assert gw.gw.support.store.get(c2).state == "queued"  # a1 is full at 1
        push = await admin.wait_for(lambda f: f.get("type") == "agents" and f["agents"]
                                    and f["agents"][0]["load"] == 1, timeout=3)
        assert push["agents"][0]["user"] == "a1"
    finally:
        await stop_gateway(gw)
