"""Orders across several gateway processes sharing one real Redis: one atomic Lua step."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from tests.cluster.nodes import Node, token, write_room

pytestmark = pytest.mark.redis


@pytest.fixture
def nodes(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    ns = [Node(redis_server.url, f"n{i}", rooms=[room]) for i in range(3)]
    for n in ns:
        n.start()
    yield ns
    for n in ns:
        n.stop()


async def test_2000_concurrent_orders_over_3_nodes_give_exactly_100_gifts(nodes):
    svc = token("service", "shop", room="flash")
    unique = [f"o{i}" for i in range(1800)]
    posts = unique + random.Random(7).sample(unique, 200)  # 200 repeats
    random.Random(8).shuffle(posts)
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as http:
        async def post(i, oid):
            node = nodes[i % len(nodes)]
            for attempt in range(5):
                try:
                    async with http.post(f"{node.url}/api/rooms/flash/orders",
                                         json={"order_id": oid, "user": "u" + oid, "sku": "S1", "qty": 1},
                                         headers={"Authorization": f"Bearer {svc}"}) as r:
                        return oid, r.status, await r.json()
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            raise AssertionError("order post failed 5 times")
        sem = asyncio.Semaphore(400)

        async def limited(i, oid):
            async with sem:
                return await post(i, oid)
        results = await asyncio.gather(*[limited(i, o) for i, o in enumerate(posts)])
        assert {st for _, st, _ in results} == {200}
        by_id = {}
        for oid, _, body in results:
            by_id.setdefault(oid, []).append(body)
        # repeats answered identically
        assert all(len({str(b) for b in bodies}) == 1 for bodies in by_id.values())
        ranks = sorted(b[0]["rank"] for b in by_id.values() if b[0]["gift"])
        assert ranks == list(range(1, 101))
        stock_left = min(b[0]["stock_left"] for b in by_id.values())
        assert stock_left == 100000 - 1800
        # every node converges on the same counters (pub/sub + refresh)
        await asyncio.sleep(0.5)
        for n in nodes:
            async with http.ws_connect(n.url.replace("http", "ws") + "/ws") as ws:
                await ws.send_json({"type": "hello", "id": 1, "token": token("agent", "a"), "protocol": 1})
                await ws.receive_json()
                await ws.send_json({"type": "room.watch", "id": 2, "room": "flash"})
                st = await ws.receive_json()
                while st.get("id") != 2:
                    st = await ws.receive_json()
                assert st["counters"]["gifts"]["G1"]["claimed"] == 100, n.node_id
                assert st["counters"]["stock"]["S1"] == 100000 - 1800, n.node_id
