"""A session outlives its node: kill -9 the node holding a socket, resume on another node."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.cluster.nodes import Node, token, write_room

pytestmark = pytest.mark.redis


async def hello(ws, tok):
    await ws.send_json({"type": "hello", "id": "h", "token": tok, "protocol": 1})
    return await ws.receive_json()


async def test_kill_9_then_resume_on_another_node_replays_with_original_seqs(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    a = Node(redis_server.url, "A", rooms=[room]).start()
    b = Node(redis_server.url, "B", rooms=[room]).start()
    try:
        tok = token("agent", "agent-1", name="Alice")
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(a.url.replace("http", "ws") + "/ws")
            w = await hello(ws, tok)
            sid = w["session"]
            seen = [w]
            await ws.send_json({"type": "room.watch", "id": 1, "room": "flash"})
            for i in range(5):
                await ws.send_json({"type": "ping", "id": 10 + i})
            while not (seen[-1].get("type") == "pong" and seen[-1].get("id") == 14):
                seen.append(await ws.receive_json())
            # a host on node B changes stock: the update crosses nodes to our socket on A
            hws = await http.ws_connect(b.url.replace("http", "ws") + "/ws")
            await hello(hws, token("host", "host-1", room="flash"))
            await hws.send_json({"type": "room.stock", "id": 2, "room": "flash", "sku": "S1", "stock": 5})
            while True:
                upd = await ws.receive_json()
                seen.append(upd)
                if upd["type"] == "room.update" and upd["change"]["kind"] == "stock":
                    break
            assert upd["counters"]["stock"]["S1"] == 5
            n = len(seen)
            assert [f["seq"] for f in seen] == list(range(1, n + 1))

            a.kill9()
            await ws.close()
            # resume on B asking for everything after seq 3: exact replay, original seqs
            ws2 = await http.ws_connect(b.url.replace("http", "ws") + "/ws")
            await hello(ws2, tok)
            await ws2.send_json({"type": "resume", "id": "r", "session": sid, "last_seq": 3})
            replay = []
            while True:
                f = await asyncio.wait_for(ws2.receive_json(), 5)
                replay.append(f)
                if f["type"] in ("resumed", "error"):
                    break
            assert replay[-1]["type"] == "resumed", replay[-1]
            assert [json.dumps(f, sort_keys=True) for f in replay[:-1]] == \
                   [json.dumps(f, sort_keys=True) for f in seen[3:]]
            assert replay[-1]["seq"] == n + 1
            # the session lives on B now: it answers and keeps counting
            await ws2.send_json({"type": "ping", "id": "p"})
            pong = await ws2.receive_json()
            while pong.get("id") != "p":
                pong = await ws2.receive_json()
            assert pong["type"] == "pong" and pong["seq"] > n + 1
            # another user cannot take it
            ws3 = await http.ws_connect(b.url.replace("http", "ws") + "/ws")
            await hello(ws3, token("agent", "mallory"))
            await ws3.send_json({"type": "resume", "id": "x", "session": sid, "last_seq": 0})
            err = await ws3.receive_json()
            assert err["code"] == "resume_failed"
            for s in (ws2, ws3, hws):
                await s.close()
    finally:
        a.stop()
        b.stop()


async def test_readyz_follows_redis(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    n = Node(redis_server.url, "R", rooms=[room]).start()
    try:
        async with aiohttp.ClientSession() as http:
            async def status(path):
                async with http.get(n.url + path) as r:
                    return r.status
            assert await status("/readyz") == 200
            live = await http.ws_connect(n.url.replace("http", "ws") + "/ws")
            await hello(live, token("viewer", "v-live", room="flash"))
            await live.send_json({"type": "ping", "id": "p"})
            await live.receive_json()
            redis_server.stop()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            while await status("/readyz") != 503:
                assert loop.time() - t0 < 1.5
                await asyncio.sleep(0.05)
            assert await status("/healthz") == 200
            # requests meanwhile are refused with a typed error, never dropped silently
            async with http.post(n.url + "/api/rooms/flash/orders",
                                 json={"order_id": "x", "user": "u", "sku": "S1", "qty": 1},
                                 headers={"Authorization": "Bearer " + token("service", "s")}) as r:
                assert r.status == 503 and (await r.json())["error"] == "unavailable"
            await live.send_json({"type": "conversation.open", "id": "o", "room": "flash"})
            while True:
                f = await asyncio.wait_for(live.receive_json(), 5)
                if f.get("id") == "o":
                    break
            assert f["type"] == "error" and f["code"] == "unavailable", f
            # a new socket's hello is refused with unavailable, then 1013
            ws = await http.ws_connect(n.url.replace("http", "ws") + "/ws")
            err = await hello(ws, token("viewer", "v", room="flash"))
            assert err["code"] == "unavailable"
            await ws.receive()
            assert ws.close_code == 1013
            redis_server.start()
            t0 = loop.time()
            while await status("/readyz") != 200:
                assert loop.time() - t0 < 5.0
                await asyncio.sleep(0.1)
    finally:
        n.stop()
