"""Cross-node message latency: viewer on node A → agent on node B, against bare Redis pub/sub.

Starts its own redis-server (free port) and two real gateway processes. A viewer on A and an
agent on B chat; each viewer message is timed from the send to its arrival at the agent's
socket. In the same run, a bare Redis PUBLISH → subscriber round trip is timed with the same
count and pacing. Prints both, their ratio, and a JSON line last.

    python -m benchmarks.cross_node [--messages 1000] [--interval-ms 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import pct  # noqa: E402
from tests.cluster.nodes import Node, token, write_room  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.wsclient import WSClient  # noqa: E402


async def bare_redis(url: str, n: int, interval: float) -> list[float]:
    pub = aioredis.Redis.from_url(url)
    sub = aioredis.Redis.from_url(url)
    ps = sub.pubsub()
    await ps.subscribe("bench")
    got: dict[int, float] = {}

    async def reader():
        while len(got) < n:
            m = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if m:
                got[int(m["data"])] = time.perf_counter()
    task = asyncio.create_task(reader())
    await asyncio.sleep(0.2)
    sent = {}
    for i in range(n):
        sent[i] = time.perf_counter()
        await pub.publish("bench", str(i))
        await asyncio.sleep(interval)
    await asyncio.wait_for(task, 10)
    await ps.aclose()
    await pub.aclose()
    await sub.aclose()
    return [(got[i] - sent[i]) * 1000 for i in range(n)]


async def gateway_path(a: Node, b: Node, n: int, interval: float) -> list[float]:
    async with aiohttp.ClientSession() as http:
        agent = await WSClient(b.url, http).connect()
        await agent.hello(token("agent", "bench-agent", name="Bench"))
        await agent.request("agent.status", status="available")
        viewer = await WSClient(a.url, http).connect()
        await viewer.hello(token("viewer", "bench-viewer", room="flash"))
        cid = (await viewer.request("conversation.open", room="flash"))["conversation"]
        await viewer.request("conversation.escalate", conversation=cid)
        await agent.event("conversation.assigned", conversation=cid, timeout=10)
        arrivals: dict[str, float] = {}
        done = asyncio.Event()

        def stamp(f):
            if f.get("type") == "message" and (f.get("client_msg_id") or "").startswith("b"):
                arrivals[f["client_msg_id"]] = time.perf_counter()
                if len(arrivals) == n:
                    done.set()
        agent.on_frame = stamp
        sent = {}
        for i in range(n):
            k = f"b{i}"
            sent[k] = time.perf_counter()
            await viewer.send("message.send", conversation=cid, text=f"m{i}", client_msg_id=k)
            await asyncio.sleep(interval)
        await asyncio.wait_for(done.wait(), 30)
        await viewer.close()
        await agent.close()
        return [(arrivals[k] - sent[k]) * 1000 for k in sent]


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--interval-ms", type=float, default=5.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    srv = RedisServer().start()
    tmp = Path(tempfile.mkdtemp(prefix="ld-bench-"))
    room = write_room(tmp / "flash.json")
    env = {"LIVEDESK_RATE_PER_S": "100000", "LIVEDESK_RATE_BURST": "100000"}
    a = Node(srv.url, "bench-A", rooms=[room], extra_env=env).start()
    b = Node(srv.url, "bench-B", rooms=[room], extra_env=env).start()
    try:
        interval = args.interval_ms / 1000
        bare = await bare_redis(srv.url, args.messages, interval)
        gw = await gateway_path(a, b, args.messages, interval)
    finally:
        a.stop()
        b.stop()
        srv.cleanup()
    res = {
        "messages": args.messages,
        "interval_ms": args.interval_ms,
        "cross_node_p50_ms": round(statistics.median(gw), 3),
        "cross_node_p99_ms": round(pct(gw, 99), 3),
        "bare_redis_p50_ms": round(statistics.median(bare), 3),
        "bare_redis_p99_ms": round(pct(bare, 99), 3),
    }
    res["ratio_p50"] = round(res["cross_node_p50_ms"] / max(res["bare_redis_p50_ms"], 1e-6), 2)
    res["ratio_p99"] = round(res["cross_node_p99_ms"] / max(res["bare_redis_p99_ms"], 1e-6), 2)
    print(f"viewer@A → agent@B: p50 {res['cross_node_p50_ms']} ms, p99 {res['cross_node_p99_ms']} ms")
    print(f"bare Redis PUBLISH → subscriber: p50 {res['bare_redis_p50_ms']} ms, "
          f"p99 {res['bare_redis_p99_ms']} ms")
    print(f"ratio: p50 ×{res['ratio_p50']}, p99 ×{res['ratio_p99']}  "
          f"({args.messages} messages every {args.interval_ms} ms, {os.cpu_count()} cores)")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
