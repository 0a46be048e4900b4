"""A call between a viewer on one node and an agent on another: the call is pinned to one
node, signaling from the other node is forwarded to it, media flows; if that node dies the
other side is told ``node_lost``."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.cluster.nodes import Node, token, write_room
from tests.cluster.test_cross_node import assigned_pair, connect
from tests.media.rtc_client import BLUE, RED, RtcClient
from tests.wsclient import WSClient

pytestmark = pytest.mark.redis


async def test_call_across_nodes_then_node_lost(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    a = Node(redis_server.url, "A", rooms=[room]).start()
    b = Node(redis_server.url, "B", rooms=[room]).start()
    http = aiohttp.ClientSession()
    clients = []
    try:
        viewer, agent, cid = await assigned_pair(http, a, b)

        st = await viewer.request("call.request", conversation=cid, video=True, timeout=10)
        assert st["type"] == "call.state" and st["state"] == "ringing", st
        call, host_node = st["call"], st["node"]
        assert host_node in ("A", "B")
        await agent.event("call.incoming", call=call, timeout=5)
        acc = await agent.request("call.accept", call=call, timeout=10)
        assert acc["type"] == "call.state" and acc["state"] == "connecting", acc
        assert acc["node"] == host_node
        await viewer.event("call.state", call=call, state="connecting", timeout=5)

        rv = RtcClient(viewer, "v1", RED)
        ra = RtcClient(agent, "agent-1", BLUE)
        clients += [rv, ra]
        await asyncio.gather(rv.start(call), ra.start(call))
        # each side decodes the other's colour, across the two nodes
        await rv.wait_colour("agent-1", BLUE, timeout=20)
        await ra.wait_colour("v1", RED, timeout=20)
        await rv.wait_audio("agent-1", timeout=20)

        # the participant whose socket is NOT on the call's node drops and resumes on its
        # own node: the call's node hears of it, marks it reconnecting, and takes its re-offer
        remote_ws, remote_node, remote_rtc, other_ws, other_rtc, role, user, room_claim = (
            (agent, b, ra, viewer, rv, "agent", "agent-1", None) if host_node == "A"
            else (viewer, a, rv, agent, ra, "viewer", "v1", "flash"))
        n = len(other_ws.frames)
        await remote_ws.drop()
        await other_ws.wait_for(lambda f: f.get("type") == "call.state" and any(
            p["user"] == user and p["status"] == "reconnecting" for p in f["participants"]),
            start=n, timeout=10)
        back = await WSClient(remote_node.url, http).connect()
        await back.hello(token(role, user, room=room_claim))
        r = await back.request("resume", session=remote_ws.session, last_seq=remote_ws.last_seq)
        assert r["type"] == "resumed", r
        await back.wait_for(lambda f: f.get("type") == "call.state" and f.get("call") == call
                            and "ice_servers" in f, timeout=10)
        remote_rtc.use_socket(back)
        await remote_rtc.start(call)
        await rv.wait_colour("agent-1", BLUE, timeout=20)
        await ra.wait_colour("v1", RED, timeout=20)
        if remote_ws is agent:
            agent = back
        else:
            viewer = back

        # the node hosting the call dies: the participant on the other node learns node_lost
        survivor_ws, dead = (agent, a) if host_node == "A" else (viewer, b)
        dead.kill9()
        ended = await survivor_ws.event("call.state", call=call, state="ended", timeout=20)
        assert ended["reason"] == "node_lost"
    finally:
        for c in clients:
            await c.close()
        await http.close()
        a.stop()
        b.stop()


async def test_resolving_on_another_node_ends_the_call(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    a = Node(redis_server.url, "A", rooms=[room]).start()
    b = Node(redis_server.url, "B", rooms=[room]).start()
    http = aiohttp.ClientSession()
    try:
        viewer, agent, cid = await assigned_pair(http, a, b)
        st = await viewer.request("call.request", conversation=cid, video=False, timeout=10)
        call, host_node = st["call"], st["node"]
        # a supervisor on the OTHER node resolves the conversation
        other = b if host_node == "A" else a
        boss = await connect(http, other, "admin", "boss")
        r = await boss.request("conversation.resolve", conversation=cid)
        assert r["type"] == "ack", r
        ended = await viewer.event("call.state", call=call, state="ended", timeout=10)
        assert ended["reason"] == "resolved"
    finally:
        await http.close()
        a.stop()
        b.stop()
