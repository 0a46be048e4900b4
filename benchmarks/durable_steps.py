"""Durable before acknowledged: support steps per second with and without the store.

One process, the memory backend (the single-node default). ``--writers`` concurrent
viewers each run a whole conversation life, step by step — open (with the bot's greeting),
``--messages`` appends, escalate, assign to an agent, the agent's reply, resolve — and every
step returns only once its changes are committed (``MemoryBackend(durability=StoreFeed)``,
group commit), as ``livedesk serve --data-dir`` runs. The baseline is the same load through
the memory backend without a store, in the same run. ``ratio`` = steps/s with the store /
steps/s without (below 1: what durability costs).

    python -m benchmarks.durable_steps [--writers 50] [--conversations 400] [--messages 6]
        [--backend sqlite|postgresql] [--pg-url postgresql://postgres@127.0.0.1:5432]

Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import cpu_model, pct  # noqa: E402
from gateway.store import Store  # noqa: E402
from gateway.store.database import PostgresDatabase, SQLiteDatabase  # noqa: E402
from gateway.store.ingest import StoreFeed  # noqa: E402
from gateway.support.backend import MemoryBackend  # noqa: E402
from gateway.support.conversation import Author, ConversationStore  # noqa: E402
from gateway.support.routing import Router  # noqa: E402

BOT = Author("bot", "bot", "小助手")


async def run(store: Store | None, writers: int, conversations: int, messages: int) -> dict:
    """Steps per second and per-step latency through one memory backend."""
    b = MemoryBackend(ConversationStore(), Router(1000, reachable=lambda u: True),
                      durability=StoreFeed(store) if store is not None else None)
    await b.set_status("agent-1", "available", "Ann", capacity=100000)
    run_id = secrets.token_hex(3)
    lat: list[float] = []
    steps = 0

    async def timed(coro):
        nonlocal steps
        t = time.perf_counter()
        r = await coro
        lat.append(time.perf_counter() - t)
        steps += 1
        return r

    async def viewer(w: int) -> None:
        for k in range(w, conversations, writers):
            v = f"bench-{run_id}-{k}"
            conv, _ = await timed(b.open("bench", v, "Bench", (BOT, "您好，有什么可以帮您？")))
            a = Author("viewer", v, "Bench")
            for i in range(messages):
                await timed(b.append(conv, a, f"第{i}条：我的蓝牙耳机什么时候发货 LD{k}{i}",
                                     f"m{i}"))
            await timed(b.escalate(conv, "asked"))
            await timed(b.assign_next())
            await timed(b.append(conv, Author("agent", "agent-1", "Ann"), "马上帮您查", None))
            await timed(b.resolve(conv, by="agent"))

    t0 = time.perf_counter()
    await asyncio.gather(*(viewer(w) for w in range(writers)))
    took = time.perf_counter() - t0
    return {"steps": steps, "seconds": round(took, 3), "steps_per_s": round(steps / took, 1),
            "step_p50_ms": round(pct(lat, 50) * 1000, 3),
            "step_p99_ms": round(pct(lat, 99) * 1000, 3)}


async def main_async(args) -> dict:
    tmp = None
    if args.backend == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="livedesk-steps-"))
        db: SQLiteDatabase | PostgresDatabase = SQLiteDatabase(tmp / "livedesk.db")
    else:
        import asyncpg

        admin = args.pg_url.rstrip("/")
        name = f"livedesk_bench_{secrets.token_hex(4)}"
        c = await asyncpg.connect(f"{admin}/postgres")
        await c.execute(f'CREATE DATABASE "{name}"')
        await c.close()
        db = PostgresDatabase(f"{admin}/{name}")
    store = await Store(db).start()
    try:
        base = await run(None, args.writers, args.conversations, args.messages)
        durable = await run(store, args.writers, args.conversations, args.messages)
        commits = store.commits
    finally:
        await store.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            import asyncpg

            c = await asyncpg.connect(f"{admin}/postgres")
            await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await c.close()
    return {"benchmark": "durable_steps", "backend": args.backend, "cpu": cpu_model(),
            "writers": args.writers, "conversations": args.conversations,
            "messages_per_conversation": args.messages,
            "memory": base, "with_store": durable,
            "store_commits": commits,
            "steps_per_commit": round(durable["steps"] / max(1, commits), 1),
            "ratio": round(durable["steps_per_s"] / base["steps_per_s"], 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--writers", type=int, default=50)
    p.add_argument("--conversations", type=int, default=400)
    p.add_argument("--messages", type=int, default=6)
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    args = p.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
