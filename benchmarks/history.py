"""History store: bulk load, search latency, and the write overhead per message.

Loads ``--conversations`` conversations (15 messages each on average: 100,000 → 1.5
million; mixed Chinese/English live-commerce chat generated from templates, with order ids,
agents, rooms and dates over a year) into each backend, then times searches of every kind
the REST API offers (a Chinese word common or rare, an English word, an order id, a viewer,
an agent, a room with a date range, text with a filter), and reports p50/p99 per backend.

Write overhead: the same run appends messages through the in-memory support backend
(``MemoryBackend``, the default without a store) with and without the store recording every
change durably before the step returns, ``--writers`` concurrent conversations; the
difference per message is the overhead, ``ratio`` = with store / without.

    python -m benchmarks.history [--conversations 100000] [--backends sqlite,postgresql]
        [--queries 400] [--pg-url postgresql://postgres@127.0.0.1:5432] [--data-dir DIR]

PostgreSQL: a database ``livedesk_bench_<random>`` is made and dropped. Prints one JSON
object last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import cpu_model, pct  # noqa: E402
from gateway.store import SearchQuery, Store  # noqa: E402
from gateway.store.database import PostgresDatabase, SQLiteDatabase  # noqa: E402
from gateway.store.records import OrderRecorded, Write  # noqa: E402
from gateway.support.changes import (  # noqa: E402
    Attached,
    ConversationOpened,
    FieldsSet,
    MessageAppended,
)
from gateway.support.conversation import Author  # noqa: E402


def _msg(cid: str, n: int, role: str, user: str, name: str, text: str, cmid: str, kind: str,
         meta: dict, ts: float) -> MessageAppended:
    return MessageAppended(cid, n, Author(role, user, name), text, ts, cmid or None,
                           kind or None, meta)

YEAR_START = 1_764_547_200.0  # 2025-12-01 UTC
PRODUCTS_ZH = ["蓝牙耳机", "卫衣", "口红", "面膜", "保温杯", "运动鞋", "羽绒服", "扫地机器人",
               "电饭煲", "连衣裙", "牛仔裤", "香水", "充电宝", "机械键盘", "瑜伽垫", "茶叶",
               "坚果礼盒", "婴儿推车", "猫粮", "行李箱"]
PRODUCTS_EN = ["hoodie", "earbuds", "lipstick", "sneakers", "thermos", "keyboard", "perfume",
               "backpack", "blender", "jacket"]
COLORS = ["黑色", "白色", "红色", "蓝色", "灰色", "粉色", "black", "white", "navy"]
SIZES = ["S", "M", "L", "XL", "XXL", "36码", "38码", "42码"]
ZH = ["这个{p}有{c}的吗", "{p}什么时候发货", "我的订单{o}还没到", "{p}收到了但是有划痕",
      "可以退款吗，{p}不合适", "主播刚才说的优惠券怎么领", "{p}是正品吗", "{s}还有货吗",
      "物流三天没更新了", "能开发票吗", "{p}和直播间的不一样", "想换成{c}", "运费谁出",
      "赠品没收到", "尺码偏大还是偏小", "已经下单了，订单号{o}", "客服在吗", "谢谢，已解决",
      "退货地址发我一下", "{p}怎么清洗", "能便宜点吗", "什么时候再上架", "质量太差了要投诉",
      "快递员态度不好", "包装破了，{p}坏了"]
EN = ["is the {q} in stock in {c}?", "where is my order {o}", "the {q} arrived broken",
      "can I get a refund for the {q}", "what size should I take, I'm usually {s}",
      "does the coupon work on the {q}", "thanks, all good now", "how long is shipping",
      "wrong colour delivered, I ordered {c}", "is this the same {q} as in the stream"]
AGENT_ZH = ["您好，我来帮您查一下", "已为您登记，稍后会有专人联系您", "非常抱歉给您带来不便",
            "订单{o}已经发出，请注意查收", "可以的，我们支持七天无理由退货", "已为您申请补发赠品",
            "Sure, let me check order {o} for you", "Sorry about that, a refund is on its way"]
BOT = ["您好，我是直播间小助手，有什么可以帮您？", "这款{p}目前有货哦", "已为您转接人工客服"]


class Generator:
    def __init__(self, conversations: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.n = conversations
        self.viewers = max(10, conversations // 3)
        self.agents = [f"agent-{i:02}" for i in range(40)]
        self.rooms = [f"room-{i:02}" for i in range(30)]
        self.orders: list[str] = []  # placed (in the orders table)
        self.mentioned: list[str] = []  # every conversation's order id (in its text)
        self.pools = {"zh": self._pool(ZH), "en": self._pool(EN), "agent": self._pool(AGENT_ZH),
                      "bot": self._pool(BOT[1:]), "greet": [BOT[0]]}

    def _pool(self, templates: list[str], n: int = 4000) -> list[str]:
        """Filled-in texts (the order id left as ``{o}``): drawing from a pool is ~10x
        faster than formatting every message, and 4,000 variants per kind are plenty."""
        r = self.rng
        return [r.choice(templates).format(p=r.choice(PRODUCTS_ZH), q=r.choice(PRODUCTS_EN),
                                           c=r.choice(COLORS), s=r.choice(SIZES), o="{o}")
                for _ in range(n)]

    def _fill(self, kind: str, order: str) -> str:
        pool = self.pools[kind]
        t = pool[int(self.rng.random() * len(pool))]
        return t.replace("{o}", order) if "{o}" in t else t

    def conversation(self, i: int) -> list[Write]:
        r = self.rng
        cid = f"c_{i:07}"
        viewer = f"viewer-{r.randrange(self.viewers):06}"
        room = r.choice(self.rooms)
        t = YEAR_START + (i / self.n) * 365 * 86400 + r.random() * 600
        order = f"LD{20250000 + i * 7 + int(r.random() * 7):09}"
        if i % 97 == 0:
            self.mentioned.append(order)
        out: list[Write] = [ConversationOpened(cid, room, viewer, f"观众{viewer[-4:]}", t)]
        n_msgs = max(3, int(r.gauss(15, 5)))
        agent = r.choice(self.agents) if r.random() < 0.6 else None
        zh = r.random() < 0.75
        out.append(_msg(cid, 1, "bot", "bot", "小助手", self._fill("greet", order), "",
                                "system", {}, t))
        n = 1
        while n < n_msgs:
            n += 1
            ts = t + n * 20
            if agent and n > 4 and n % 2:
                text = self._fill("agent", order)
                out.append(_msg(cid, n, "agent", agent, agent, text, "", "", {}, ts))
            elif not agent and n % 3 == 0:
                text = self._fill("bot", order)
                out.append(_msg(cid, n, "bot", "bot", "小助手", text, "", "",
                                        {"intent": "faq"}, ts))
            else:
                text = self._fill("zh" if zh else "en", order)
                out.append(_msg(cid, n, "viewer", viewer, viewer, text, f"m{n}", "",
                                        {}, ts))
        if agent:
            out += [Attached(cid, agent, t + 80),
                    FieldsSet(cid, {"state": "assigned", "agent": agent,
                                    "escalated_at": t + 60, "assigned_at": t + 80})]
        if r.random() < 0.95:
            out.append(FieldsSet(cid, {"state": "resolved",
                                       "resolved_at": t + n * 20 + 60,
                                       "resolved_by": "agent" if agent else "viewer"}))
        if r.random() < 0.3:
            out.append(OrderRecorded(room, order, viewer, "sku-1", 1, {"gift": False}, t + 30))
            self.orders.append(order)
        return out


async def load(store: Store, gen: Generator, batch_conversations: int = 500) -> dict:
    t0 = time.perf_counter()
    messages = 0
    pending: list[asyncio.Future] = []
    batch: list[Write] = []
    for i in range(gen.n):
        ws = gen.conversation(i)
        messages += sum(isinstance(w, MessageAppended) for w in ws)
        batch += ws
        if (i + 1) % batch_conversations == 0:
            pending.append(store.submit(batch))
            batch = []
            if len(pending) >= 4:
                await pending.pop(0)
    if batch:
        pending.append(store.submit(batch))
    for f in pending:
        await f
    # what autovacuum (PostgreSQL) would have done after a bulk load: statistics for the
    # planner and the visibility map; SQLite: statistics
    if store.backend == "postgresql":
        async with store.db.pool.acquire() as c:  # type: ignore[attr-defined]
            await c.execute("VACUUM ANALYZE")
    else:
        await store.db.fetch("ANALYZE")
    dt = time.perf_counter() - t0
    return {"load_s": round(dt, 1), "messages": messages,
            "messages_per_s": round(messages / dt)}


def queries(gen: Generator, n: int) -> list[tuple[str, SearchQuery]]:
    r = random.Random(11)
    out: list[tuple[str, SearchQuery]] = []
    kinds = ["zh_common", "zh_rare", "en_word", "order_text", "order", "user", "agent",
             "room_dates", "zh_with_room", "zh_and_en"]
    for i in range(n):
        k = kinds[i % len(kinds)]
        if k == "zh_common":
            q = SearchQuery(q=r.choice(["退款", "物流", "发货", "优惠券", "尺码"]))
        elif k == "zh_rare":
            q = SearchQuery(q=r.choice(PRODUCTS_ZH)[:2] + r.choice(["坏", "划痕", "清洗"]))
        elif k == "en_word":
            q = SearchQuery(q=r.choice(PRODUCTS_EN + ["refund", "shipping", "coupon"]))
        elif k == "order_text":
            q = SearchQuery(q=r.choice(gen.mentioned))
        elif k == "order":
            q = SearchQuery(order=r.choice(gen.orders) if gen.orders else "none")
        elif k == "user":
            q = SearchQuery(user=f"viewer-{r.randrange(gen.viewers):06}")
        elif k == "agent":
            q = SearchQuery(agent=r.choice(gen.agents))
        elif k == "room_dates":
            start = YEAR_START + r.random() * 300 * 86400
            q = SearchQuery(room=r.choice(gen.rooms), since=start, until=start + 7 * 86400)
        elif k == "zh_with_room":
            q = SearchQuery(q=r.choice(["退款", "赠品", "发票"]), room=r.choice(gen.rooms))
        else:
            q = SearchQuery(q=r.choice(["订单", "退款"]) + " " + r.choice(["LD", "refund"]))
        out.append((k, q))
    return out


async def time_searches(store: Store, qs: list[tuple[str, SearchQuery]]) -> dict:
    for _, q in qs[:20]:  # warm the caches
        await store.search(q)
    lat: dict[str, list[float]] = {}
    hits: dict[str, int] = {}
    slowest: list[tuple[float, str, str]] = []
    for k, q in qs:
        t0 = time.perf_counter()
        res = await store.search(q)
        ms = (time.perf_counter() - t0) * 1000
        lat.setdefault(k, []).append(ms)
        hits[k] = hits.get(k, 0) + len(res)
        slowest = sorted([*slowest, (ms, k, repr({f: v for f, v in q.__dict__.items()
                                                  if v not in (None, "", 50)}))])[-3:]
    every = [x for v in lat.values() for x in v]
    return {"search_p50_ms": round(pct(every, 50), 2), "search_p99_ms": round(pct(every, 99), 2),
            "search_max_ms": round(max(every), 2),
            "per_kind_p99_ms": {k: round(pct(v, 99), 2) for k, v in lat.items()},
            "per_kind_hits_avg": {k: round(hits[k] / len(lat[k]), 1) for k in lat},
            "slowest": [[round(ms, 1), k, q] for ms, k, q in reversed(slowest)]}


async def write_overhead(store: Store | None, messages: int, writers: int) -> float:
    """Seconds to append ``messages`` messages through MemoryBackend steps from ``writers``
    concurrent conversations; with ``store``, each step also waits for its changes to be
    committed (what "durable before acknowledged" will cost)."""
    from gateway.store.ingest import StoreFeed
    from gateway.support.backend import MemoryBackend
    from gateway.support.conversation import Author, ConversationStore
    from gateway.support.routing import Router

    # with a store: the node's real path, each step returns once committed
    b = MemoryBackend(ConversationStore(), Router(5),
                      durability=StoreFeed(store) if store is not None else None)
    run = secrets.token_hex(3)
    convs = []
    for w in range(writers):
        conv, _ = await b.open(f"bench-{run}", f"bench-{run}-{w}", "Bench", None)
        convs.append(conv)
    per = messages // writers

    async def writer(conv) -> None:
        a = Author("viewer", conv.viewer, "Bench")
        for i in range(per):
            await b.append(conv, a, f"第{i}条消息：我的蓝牙耳机什么时候发货 order LD{i}", f"m{i}")

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(c) for c in convs))
    return time.perf_counter() - t0


async def bench_backend(kind: str, args, gen_n: int) -> dict:
    tmp = None
    admin_url = args.pg_url.rstrip("/")
    dbname = f"livedesk_bench_{secrets.token_hex(4)}"
    if kind == "sqlite":
        tmp = Path(args.data_dir or tempfile.mkdtemp(prefix="livedesk-bench-"))
        db: SQLiteDatabase | PostgresDatabase = SQLiteDatabase(tmp / "livedesk.db")
    else:
        import asyncpg

        c = await asyncpg.connect(f"{admin_url}/postgres")
        await c.execute(f'CREATE DATABASE "{dbname}"')
        await c.close()
        db = PostgresDatabase(f"{admin_url}/{dbname}")
    store = await Store(db).start()
    try:
        gen = Generator(gen_n)
        out: dict = {"backend": kind}
        out.update(await load(store, gen))
        print(f"[{kind}] loaded {gen_n} conversations, {out['messages']} messages in "
              f"{out['load_s']} s", file=sys.stderr, flush=True)
        out.update(await time_searches(store, queries(gen, args.queries)))
        print(f"[{kind}] search p50 {out['search_p50_ms']} ms p99 {out['search_p99_ms']} ms",
              file=sys.stderr, flush=True)
        base = await write_overhead(None, args.write_messages, args.writers)
        with_store = await write_overhead(store, args.write_messages, args.writers)
        out["write_baseline_us_per_message"] = round(base / args.write_messages * 1e6, 1)
        out["write_with_store_us_per_message"] = round(with_store / args.write_messages * 1e6,
                                                       1)
        out["write_overhead_us_per_message"] = round(
            (with_store - base) / args.write_messages * 1e6, 1)
        out["ratio"] = round(with_store / base, 1)
        out["group_commit_batches_per_commit"] = round(store.batches / max(1, store.commits), 1)
        t0 = time.perf_counter()
        rep = await store.erase_viewer("viewer-000001", by_role="bench")
        out["erase_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        out["erased_messages"] = rep.messages
        return out
    finally:
        await store.close()
        if tmp is not None and not args.data_dir:
            shutil.rmtree(tmp, ignore_errors=True)
        if kind == "postgresql":
            import asyncpg

            c = await asyncpg.connect(f"{admin_url}/postgres")
            await c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await c.close()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conversations", type=int, default=100_000)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--queries", type=int, default=400)
    p.add_argument("--writers", type=int, default=50)
    p.add_argument("--write-messages", type=int, default=5000)
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--data-dir", default=None, help="SQLite here (kept) instead of a temp dir")
    args = p.parse_args()
    result: dict = {"benchmark": "history", "conversations": args.conversations,
                    "cpu": cpu_model(), "backends": {}}
    for kind in args.backends.split(","):
        result["backends"][kind] = await bench_backend(kind.strip(), args, args.conversations)
    b = result["backends"]
    for key in ("search_p50_ms", "search_p99_ms", "write_overhead_us_per_message", "ratio"):
        result[key] = {k: v[key] for k, v in b.items()}
    result["messages"] = next(iter(b.values()))["messages"] if b else 0
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
