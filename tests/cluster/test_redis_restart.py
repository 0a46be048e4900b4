"""Redis restarted under two live nodes (AOF kept): nothing acknowledged is lost, no order
accepted before the restart is accepted again, and service resumes by itself."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.cluster.nodes import Node, token, write_room
from tests.cluster.test_cross_node import assigned_pair, chat, connect

pytestmark = pytest.mark.redis


async def wait_ready(http, node, want=200, within=10.0):
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while True:
        try:
            async with http.get(node.url + "/readyz") as r:
                if r.status == want:
                    return loop.time() - t0
        except aiohttp.ClientError:
            pass
        assert loop.time() - t0 < within, f"{node.node_id} not {want} within {within}s"
        await asyncio.sleep(0.05)


async def order(http, node, oid, sku="S1"):
    async with http.post(f"{node.url}/api/rooms/flash/orders",
                         json={"order_id": oid, "user": "u" + oid, "sku": sku, "qty": 1},
                         headers={"Authorization": "Bearer " + token("service", "shop")}) as r:
        return r.status, await r.json()


async def test_redis_restart_keeps_acknowledged_state(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    a = Node(redis_server.url, "A", rooms=[room]).start()
    b = Node(redis_server.url, "B", rooms=[room]).start()
    http = aiohttp.ClientSession()
    try:
        viewer, agent, cid = await assigned_pair(http, a, b)
        acked = []
        for i in range(5):
            r = await viewer.request("message.send", conversation=cid, text=f"pre {i}",
                                     client_msg_id=f"p{i}")
            assert r["type"] == "message"
            acked.append(r["message_id"])
        before = {}
        for i in range(5):
            st, body = await order(http, a if i % 2 else b, f"o{i}")
            assert st == 200
            before[f"o{i}"] = body

        redis_server.restart()  # same port, same AOF directory
        await wait_ready(http, a)
        await wait_ready(http, b)

        # orders accepted before the restart are repeats now: same answer, nothing counted twice
        for oid, body in before.items():
            st, again = await order(http, b, oid)
            assert st == 200 and again == body
        st, fresh = await order(http, a, "o-new")
        assert st == 200 and fresh["stock_left"] == before["o4"]["stock_left"] - 1
        assert fresh["rank"] == 6

        # every acknowledged message is still in the log, in order, seen from a third session
        other = await connect(http, a, "agent", "agent-1", name="Alice")
        snap = await other.request("conversation.get", conversation=cid, timeout=5)
        ids = [m["message_id"] for m in snap["messages"]]
        assert [i for i in ids if i in acked] == acked

        # and the conversation goes on across nodes
        async def send_until_ok(c, text, cmid):
            for _ in range(40):
                r = await c.request("message.send", conversation=cid, text=text, client_msg_id=cmid)
                if r["type"] == "message":
                    return r
                assert r["code"] == "unavailable", r
                await asyncio.sleep(0.1)
            raise AssertionError("never accepted")
        await send_until_ok(viewer, "after restart", "after")
        await agent.wait_for(lambda f: f.get("text") == "after restart", timeout=5)
        got = [m["text"] for m in chat(agent.frames, cid)]
        assert got.count("after restart") == 1
    finally:
        await http.close()
        a.stop()
        b.stop()
