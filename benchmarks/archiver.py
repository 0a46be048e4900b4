"""Archiver lag and throughput: Redis change log → PostgreSQL (gateway/archiver.py).

    python -m benchmarks.archiver [--rate 1000] [--seconds 10] [--backlog 20000]
        [--pg-url postgresql://postgres@127.0.0.1:5432]

Starts its own redis-server (free port) and creates (then drops) its own PostgreSQL
database. Three measurements in the same run:

1. **lag under load**: two archiver candidates run while one task appends change lists to
   ``ld:{ld}:ops`` with the gateway's own commit script at ``--rate`` entries a second (each a
   chat message; every 15th also opens a conversation) for ``--seconds``; the lag (age of the
   oldest entry not yet committed in PostgreSQL, and how many) is sampled every 50 ms from the
   stored cursor, as a third node would see it.
2. **catch-up**: ``--backlog`` entries appended with no archiver running, then one started:
   entries a second until the cursor reaches the end.
3. **raw baseline**: the same change lists turned into the same store writes
   (``writes_from_changes``) and committed with ``Store.apply`` in batches of the archiver's
   size, with no Redis read, fence or cursor: what the single-node store feed costs.

``ratio`` = catch-up rate / raw rate (the archiver's overhead over writing the same rows).
Prints progress on stderr and one JSON object last on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from benchmarks.common import cpu_model, pct  # noqa: E402
from gateway.archiver import SUPPORT_STREAM, Archiver, ArchiverConfig  # noqa: E402
from gateway.store import Store  # noqa: E402
from gateway.store.database import PostgresDatabase  # noqa: E402
from gateway.store.ingest import writes_from_changes  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.store.archive_helpers import Appender, message, opened  # noqa: E402

PER_CONVERSATION = 15


def change_list(i: int, tag: str) -> list:
    cid = f"{tag}{i // PER_CONVERSATION}"
    n = i % PER_CONVERSATION + 1
    return ([opened(cid)] if n == 1 else []) + [message(cid, n, f"第{n}条消息 order ORD-{i}")]


async def new_database(admin: str) -> str:
    import asyncpg

    name = f"livedesk_bench_arch_{secrets.token_hex(4)}"
    c = await asyncpg.connect(f"{admin}/postgres")
    try:
        await c.execute(f'CREATE DATABASE "{name}"')
    finally:
        await c.close()
    return name


async def drop_database(admin: str, name: str) -> None:
    import asyncpg

    c = await asyncpg.connect(f"{admin}/postgres")
    try:
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await c.close()


async def lag_under_load(redis, url: str, rate: float, seconds: float) -> dict:
    stores = [await Store(PostgresDatabase(url, max_size=4)).start() for _ in range(3)]
    nodes = [Archiver(redis, s, lambda: [SUPPORT_STREAM], f"n{i}", ArchiverConfig())
             for i, s in enumerate(stores[:2])]
    watcher = Archiver(redis, stores[2], lambda: [SUPPORT_STREAM], "watcher")
    for a in nodes:
        await a.start()
    app = Appender(redis)
    lags: list[float] = []
    behind: list[int] = []
    sent = 0
    done = asyncio.Event()

    async def load() -> None:
        nonlocal sent
        t0 = time.perf_counter()
        while True:
            due = t0 + sent / rate
            now = time.perf_counter()
            if now - t0 >= seconds:
                break
            if due > now:
                await asyncio.sleep(due - now)
            await app.append(change_list(sent, "L"))
            sent += 1
        done.set()

    async def sample() -> None:
        while not done.is_set():
            lag = await watcher.measure()
            lags.append(lag.seconds)
            behind.append(lag.entries)
            await asyncio.sleep(0.05)

    t0 = time.perf_counter()
    await asyncio.gather(load(), sample())
    took = time.perf_counter() - t0
    while (await watcher.measure()).entries:
        await asyncio.sleep(0.05)
    for a in nodes:
        await a.close()
    archived = sum(a.archived for a in nodes)
    for s in stores:
        await s.close()
    return {"appended": sent, "append_rate_per_s": round(sent / took, 1),
            "archived": archived, "lag_samples": len(lags),
            "lag_p50_s": round(pct(lags, 50), 3), "lag_p99_s": round(pct(lags, 99), 3),
            "lag_max_s": round(max(lags), 3),
            "lag_entries_p99": int(pct([float(b) for b in behind], 99)),
            "lag_entries_max": max(behind)}


async def catch_up(redis, url: str, backlog: int) -> dict:
    await redis.flushall()
    app = Appender(redis)
    for i in range(backlog):
        await app.append(change_list(i, "B"))
    store = await Store(PostgresDatabase(url, max_size=4)).start()
    await store.db.transact([])  # warm the pool
    a = Archiver(redis, store, lambda: [SUPPORT_STREAM], "catchup", ArchiverConfig())
    t0 = time.perf_counter()
    await a.start()
    while a.archived < backlog:
        await asyncio.sleep(0.01)
    took = time.perf_counter() - t0
    await a.close()
    await store.close()
    return {"backlog": backlog, "catch_up_s": round(took, 3),
            "archive_rate_per_s": round(backlog / took, 1)}


async def raw_baseline(url: str, n: int, batch: int) -> dict:
    store = await Store(PostgresDatabase(url, max_size=4)).start()
    lists = [change_list(i, "R") for i in range(n)]
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        await store.apply(writes_from_changes([c for cl in lists[i:i + batch] for c in cl]))
    took = time.perf_counter() - t0
    await store.close()
    return {"raw_s": round(took, 3), "raw_rate_per_s": round(n / took, 1)}


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--backlog", type=int, default=20_000)
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    args = p.parse_args()
    admin = args.pg_url.rstrip("/")
    srv = RedisServer(durable=False).start()
    redis = aioredis.Redis.from_url(srv.url)
    names = [await new_database(admin) for _ in range(3)]
    try:
        res: dict = {"benchmark": "archiver", "cpu": cpu_model(), "rate": args.rate,
                     "seconds": args.seconds}
        res.update(await lag_under_load(redis, f"{admin}/{names[0]}", args.rate, args.seconds))
        print(f"lag under {res['append_rate_per_s']}/s: p50 {res['lag_p50_s']} s, p99 "
              f"{res['lag_p99_s']} s, max {res['lag_max_s']} s", file=sys.stderr, flush=True)
        res.update(await catch_up(redis, f"{admin}/{names[1]}", args.backlog))
        print(f"catch-up: {res['archive_rate_per_s']} entries/s", file=sys.stderr, flush=True)
        res.update(await raw_baseline(f"{admin}/{names[2]}", args.backlog,
                                      ArchiverConfig().batch))
        print(f"raw store writes: {res['raw_rate_per_s']} entries/s", file=sys.stderr,
              flush=True)
        res["ratio"] = round(res["archive_rate_per_s"] / res["raw_rate_per_s"], 2)
    finally:
        await redis.aclose()
        srv.cleanup()
        for n in names:
            await drop_database(admin, n)
    print(json.dumps(res, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
