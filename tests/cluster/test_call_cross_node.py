"""A call between a viewer on one node and an agent on another: the call is pinned to one
node, signaling from the other node is forwarded to it, media flows; if that node dies the
other side is told ``node_lost``."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.cluster.nodes import Node, write_room
from tests.cluster.test_cross_node import connect
from tests.media.rtc_client import BLUE, RED, RtcClient

pytestmark = pytest.mark.redis


async def test_call_across_nodes_then_node_lost(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    a = Node(redis_server.url, "A", rooms=[room]).start()
    b = Node(redis_server.url, "B", rooms=[room]).start()
    http = aiohttp.ClientSession()
    clients = []
    try:
        agent = await connect(http, b, "agent", "agent-1", name="Alice")
        await agent.request("agent.status", status="available")
        viewer = await connect(http, a, "viewer", "v1", room="flash")
        cid = (await viewer.request("conversation.open", room="flash"))["conversation"]
        await viewer.request("conversation.escalate", conversation=cid)
        await agent.event("conversation.assigned", conversation=cid, timeout=5)

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
