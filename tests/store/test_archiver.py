"""The multi-node archiver (gateway/archiver.py) against a real redis-server and the machine's
real PostgreSQL (a schema of this run's database per test): one leader at a time, takeover
when the leader dies with nothing lost or written twice, the fence refusing a stale leader,
trimming that never drops what is not archived, and the lag under a load of appends."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from gateway.archiver import (
    SUPPORT_STREAM,
    ArchiveLedger,
    Archiver,
    ArchiverConfig,
    Cursor,
    FenceRefused,
    room_stream,
)
from gateway.lease import RedisLease
from gateway.metrics import Metrics
from gateway.store.database import Stmt
from gateway.support.changes import MessageAppended
from gateway.support.conversation import Author
from tests.redis_server import RedisServer
from tests.store.archive_helpers import Appender, message, opened, order, room_prefix
from tests.store.conftest import Backends

ROOM = "flash"
STREAMS = [SUPPORT_STREAM, room_stream(ROOM)]


@pytest.fixture(scope="module")
def redis_srv():
    if not __import__("shutil").which("redis-server"):
        pytest.fail("the archiver tests need redis-server on PATH", pytrace=False)
    srv = RedisServer(durable=False).start()
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture
async def redis(redis_srv):
    r = aioredis.Redis.from_url(redis_srv.url)
    await r.flushall()
    try:
        yield r
    finally:
        await r.aclose()


@pytest.fixture
async def pg(tmp_path, pg_database):
    b = Backends("postgresql", tmp_path, pg_database)
    try:
        yield b
    finally:
        await b.close()


def make(redis, store, node: str, **cfg) -> Archiver:
    cfg.setdefault("lease_ttl_s", 1.0)
    cfg.setdefault("poll_s", 0.02)
    cfg.setdefault("measure_every_s", 0.05)
    return Archiver(redis, store, lambda: STREAMS, node, ArchiverConfig(**cfg),
                    metrics=Metrics())


async def wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout}s: {what}")


async def count(store, sql: str, args=()) -> int:
    return int((await store.db.fetch(sql, list(args)))[0][0])


def record_ranges(store) -> None:
    """Make every archive transaction of ``store`` also record the range it moved the cursor
    over, in the same transaction (so the table holds exactly what was committed)."""
    real = store.db.transact

    async def transact(stmts, finish=None):
        stmts = list(stmts)
        if len(stmts) > 1 and stmts[1].sql.startswith("UPDATE archive_cursor"):
            last_id, _s, _fence, _at, stream, prev = stmts[1].args
            if stream == SUPPORT_STREAM:
                stmts.append(Stmt("INSERT INTO test_ranges (prev, last) VALUES (?, ?)",
                                  (prev, last_id)))
        return await real(stmts, finish)

    store.db.transact = transact


async def caught_up(arch: Archiver) -> bool:
    lag = await arch.measure()
    return lag.entries == 0


async def test_the_log_reaches_postgresql_in_order_once(redis, pg):
    store = await pg.open("once")
    app = Appender(redis)
    await app.append([opened("c1"), message("c1", 1, "我的耳机坏了 ORD-7781")])
    await app.append([message("c1", 2)])
    await app.append(order(ROOM, "o-1", 99, rank=1), room_prefix(ROOM))
    last = await app.append(order(ROOM, "o-2", 98), room_prefix(ROOM))
    arch = make(redis, store, "n1")
    await arch.start()
    try:
        await wait_for(lambda: arch.leading, 5, "a leader")
        await wait_for(lambda: caught_up(arch), 5, "archive caught up")
        # the stored cursor can be read before the leader's commit call has returned (and
        # bumped its counter): closing then would cancel it right there
        await wait_for(lambda: arch.archived >= 4, 5, "the leader's count")
    finally:
        await arch.close()
    assert [r[0] for r in await store.db.fetch(
        "SELECT text FROM messages WHERE conversation = 'c1' ORDER BY n")] == [
        "我的耳机坏了 ORD-7781", "c1 message 2"]
    assert await store.db.fetch("SELECT order_id, viewer, qty FROM orders ORDER BY order_id") == [
        ("o-1", "buyer-o-1", 1), ("o-2", "buyer-o-2", 1)]
    assert await store.db.fetch("SELECT room, sku, stock FROM room_stock") == [(ROOM, "S1", 98)]
    assert await store.db.fetch("SELECT promotion, claimed FROM room_gifts") == [("G1", 1)]
    cursors = await ArchiveLedger(store).cursors(STREAMS)
    assert cursors[room_stream(ROOM)].last_id == last and cursors[room_stream(ROOM)].s == 2
    assert cursors[SUPPORT_STREAM].s == 2
    assert arch.archived == 4  # each entry once
    # what a restore reads back (Store.load_live_state) holds the conversation and counters
    live = await store.load_live_state()
    assert [c.conversation for c, _ in live.conversations] == ["c1"]
    assert live.stock == {ROOM: {"S1": 98}}


async def test_one_leader_at_a_time_among_three(redis, pg):
    nodes = [make(redis, await pg.open("three"), f"n{i}") for i in range(3)]
    for a in nodes:
        await a.start()
    try:
        await wait_for(lambda: any(a.leading for a in nodes), 5, "a leader")
        seen: set[str] = set()
        end = time.monotonic() + 2.5  # a few lease lifetimes (TTL 1 s)
        while time.monotonic() < end:
            leaders = [a.node_id for a in nodes if a.leading]
            assert len(leaders) <= 1, leaders
            seen.update(leaders)
            await asyncio.sleep(0.01)
        assert len(seen) == 1, seen  # the leader kept its lease by renewing it
        gauges = [a.metrics.archiver_leader._value.get() for a in nodes]
        assert sorted(gauges) == [0, 0, 1]
    finally:
        for a in nodes:
            await a.close()


async def test_a_killed_leader_is_replaced_within_the_ttl_and_nothing_is_lost_or_doubled(
        redis, pg):
    ttl = 1.0
    nodes = [make(redis, await pg.open("takeover"), f"n{i}", lease_ttl_s=ttl, keep_s=3600)
             for i in range(3)]
    await nodes[0].store.db.transact([Stmt("CREATE TABLE test_ranges (prev TEXT, last TEXT)")])
    for a in nodes:
        record_ranges(a.store)
    app = Appender(redis)
    store = nodes[0].store
    stop = asyncio.Event()
    sent = 0

    async def load():  # a steady stream of messages in 20 conversations
        nonlocal sent
        i = 0
        while not stop.is_set():
            cid = f"c{i % 20}"
            n = i // 20 + 1
            await app.append(([opened(cid)] if n == 1 else []) + [message(cid, n)])
            sent += 1
            i += 1
            await asyncio.sleep(0.004)

    for a in nodes:
        await a.start()
    loader = asyncio.create_task(load())
    try:
        first = await wait_for(lambda: next((a for a in nodes if a.leading), None), 5,
                               "a leader")
        await wait_for(lambda: first.archived > 50, 5, "the leader archiving")
        # the leader dies: its task ends without releasing the lease (a crash; the process
        # test in tests/cluster kills a node with -9). The flag ends the loop even if
        # redis-py swallows the cancellation (signaling/tasks.py).
        assert first._task is not None

        async def no_release(held):
            return False

        first.lease.release = no_release  # type: ignore[method-assign]
        first._closing = True
        first._task.cancel()
        died = time.monotonic()
        await wait_for(lambda: first._task is not None and first._task.done(), 3,
                       "the leader's task ended")
        others = [a for a in nodes if a is not first]
        second = await wait_for(lambda: next((a for a in others if a.leading), None),
                                ttl + 3, "another leader")
        took = time.monotonic() - died
        # the lease lapses after the TTL; candidates try every TTL/5
        assert took <= ttl + ttl / 5 + 1.0, took
        await wait_for(lambda: second.archived > 50, 5, "the new leader archiving")
    finally:
        stop.set()
        await loader
    try:
        await wait_for(lambda: caught_up(second), 10, "caught up after the load")
    finally:
        for a in nodes:
            await a.close()
    # every entry written exactly once: the committed ranges (recorded inside the archive's
    # own transactions) chain from the start to the last entry, none starting twice
    ranges = await store.db.fetch("SELECT prev, last FROM test_ranges")
    prevs = [p for p, _ in ranges]
    assert len(prevs) == len(set(prevs)), "a range was archived twice"
    nxt = dict(ranges)
    at, covered = "0-0", 0
    ids = [e[0].decode() for e in await redis.xrange(SUPPORT_STREAM)]
    while at in nxt:
        at = nxt.pop(at)
        covered += 1
    assert not nxt, f"ranges off the chain: {nxt}"
    assert at == ids[-1] and covered == len(ranges)
    # (a leader cancelled between its commit and its count may not have counted a batch)
    assert sum(a.archived for a in nodes) <= sent
    assert await count(store, "SELECT COUNT(*) FROM messages") == sent
    assert await count(store, "SELECT COUNT(*) FROM conversations") == 20
    # no hole: conversation i has messages 1..k with none missing
    for cid, k, top in await store.db.fetch(
            "SELECT conversation, COUNT(*), MAX(n) FROM messages GROUP BY conversation"):
        assert k == top, cid


async def test_a_stale_leader_is_refused_by_the_fence(redis, pg):
    store_a = await pg.open("fence")
    store_b = await pg.open("fence")
    app = Appender(redis)
    await app.append([opened("c1"), message("c1", 1)])
    # A leads with fence f1 and archives; then it is paused past its lease
    a = make(redis, store_a, "A")
    b = make(redis, store_b, "B")
    held_a = await a.lease.acquire(await a.ledger.fence())
    assert held_a is not None
    assert await a.archive_once(held_a.fence)
    await redis.delete(a.lease.key)  # A's lease lapsed while it was paused
    held_b = await b.lease.acquire(await b.ledger.fence())
    assert held_b is not None and held_b.fence > held_a.fence
    await app.append([message("c1", 2)])
    assert await b.archive_once(held_b.fence)
    # A wakes up with its old fencing number and the position it last wrote: refused
    await app.append([message("c1", 3, "written by the stale leader?")])
    with pytest.raises(FenceRefused):
        await a.archive_once(held_a.fence)
    assert await count(store_a, "SELECT COUNT(*) FROM messages") == 2
    # even with a position that is current, an older fence writes nothing
    ledger = ArchiveLedger(store_a)
    cur = (await ledger.cursors([SUPPORT_STREAM]))[SUPPORT_STREAM]
    with pytest.raises(FenceRefused):
        await ledger.commit(cur, "9999999999999-0", cur.s + 1, held_a.fence, "A",
                            [MessageAppended("c1", 9, Author("viewer", "v", ""), "stale", 1.0)])
    assert await count(store_a, "SELECT COUNT(*) FROM messages WHERE n = 9") == 0
    assert (await ledger.cursors([SUPPORT_STREAM]))[SUPPORT_STREAM] == cur
    # the current leader goes on
    assert await b.archive_once(held_b.fence)
    assert await count(store_b, "SELECT COUNT(*) FROM messages") == 3


async def test_the_refusal_is_counted_and_the_stale_node_stops_leading(redis, pg):
    store = await pg.open("counted")
    a = make(redis, store, "A")
    held = await a.lease.acquire(0)
    assert held is not None
    ledger = ArchiveLedger(store)
    cur = (await ledger.cursors([SUPPORT_STREAM]))[SUPPORT_STREAM]
    await ledger.commit(cur, "0-1", 0, held.fence + 5, "newer", [])  # a newer leader wrote
    await Appender(redis).append([opened("c1")])
    a.held = held
    with pytest.raises(FenceRefused):
        await a._lead(held)
    a._refused(FenceRefused("x"))
    assert a.metrics.archiver_fence_refusals._value.get() == 1
    # the next acquisition starts above the archive's fence (after Redis lost its counter)
    await redis.flushall()
    again = await a.lease.acquire(await a.ledger.fence())
    assert again is not None and again.fence == held.fence + 6


async def test_trimming_keeps_every_entry_not_archived(redis, pg):
    store = await pg.open("trim")
    app = Appender(redis)
    ids = [await app.append([opened("c1")] if i == 0 else [message("c1", i)])
           for i in range(50)]
    a = make(redis, store, "A", keep_s=0.0, batch=20)
    held = await a.lease.acquire(0)
    assert held is not None
    assert await a.archive_once(held.fence)  # 20 archived, then trimmed up to the 20th
    assert await redis.xlen(SUPPORT_STREAM) == 50 - 19
    first = (await redis.xrange(SUPPORT_STREAM, count=1))[0][0].decode()
    assert first == ids[19]  # the last archived entry stays; nothing after it is gone
    a._trimmed_at.clear()
    while await a.archive_once(held.fence):
        a._trimmed_at.clear()
    assert await redis.xlen(SUPPORT_STREAM) == 1
    assert await count(store, "SELECT COUNT(*) FROM messages") == 49
    # with keep_s, archived entries younger than it stay for lagging tails
    b = make(redis, store, "B", keep_s=3600.0)
    await app.append([message("c1", 50)])
    assert await b.archive_once(held.fence)
    assert await redis.xlen(SUPPORT_STREAM) == 2


async def test_entries_trimmed_before_they_were_archived_are_counted(redis, pg):
    store = await pg.open("lost")
    app = Appender(redis)
    a = make(redis, store, "A")
    held = await a.lease.acquire(0)
    assert held is not None
    await app.append([opened("c1"), message("c1", 1)])
    assert await a.archive_once(held.fence)
    for n in range(2, 12):
        await app.append([message("c1", n)])
    # the safety cap (MAXLEN) dropped the oldest while the archiver was away
    await redis.xtrim(SUPPORT_STREAM, maxlen=3, approximate=False)
    assert await a.archive_once(held.fence)
    assert a.lost == 7
    assert a.metrics.archiver_lost_entries.labels(reason="trimmed")._value.get() == 7
    assert [r[0] for r in await store.db.fetch(
        "SELECT n FROM messages ORDER BY n")] == [1, 9, 10, 11]


async def test_a_redis_that_restarted_empty_is_archived_from_its_start(redis, pg):
    store = await pg.open("empty")
    app = Appender(redis)
    a = make(redis, store, "A")
    held = await a.lease.acquire(0)
    assert held is not None
    for n in range(1, 6):
        await app.append(([opened("c1")] if n == 1 else []) + [message("c1", n)])
    assert await a.archive_once(held.fence)
    await redis.flushall()
    # the new Redis's entries: ids that may sort below the old cursor
    await redis.xadd(SUPPORT_STREAM, {"c": "[]", "s": "1"}, id="1-1")
    await redis.set("ld:{ld}:opseq", 1)
    await a.archive_once(held.fence)  # sees fewer changes than archived: starts over
    cur = (await a.ledger.cursors([SUPPORT_STREAM]))[SUPPORT_STREAM]
    assert cur.last_id == "0-0"
    assert await a.archive_once(held.fence)
    cur = (await a.ledger.cursors([SUPPORT_STREAM]))[SUPPORT_STREAM]
    assert (cur.last_id, cur.s) == ("1-1", 1)


async def test_lag_stays_small_under_a_load_of_appends(redis, pg):
    """The figure itself comes from ``benchmarks/archiver.py``; this bound is generous."""
    nodes = [make(redis, await pg.open("lag"), f"n{i}") for i in range(2)]
    app = Appender(redis)
    for a in nodes:
        await a.start()
    await wait_for(lambda: any(a.leading for a in nodes), 5, "a leader")
    worst = 0.0
    stop = asyncio.Event()

    async def load():
        i = 0
        while not stop.is_set():
            cid = f"c{i % 50}"
            n = i // 50 + 1
            await app.append(([opened(cid)] if n == 1 else []) + [message(cid, n)])
            i += 1
            if i % 10 == 0:
                await asyncio.sleep(0.005)

    loader = asyncio.create_task(load())
    try:
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            await asyncio.sleep(0.1)
            worst = max(worst, (await nodes[0].measure()).seconds)
    finally:
        stop.set()
        await loader
    try:
        await wait_for(lambda: caught_up(nodes[0]), 10, "caught up")
    finally:
        for a in nodes:
            await a.close()
    print(f"worst archiver lag under load: {worst:.3f} s")
    assert worst < 3.0, worst
    assert sum(a.archived for a in nodes) > 100


async def test_a_lease_is_renewed_and_released_only_by_its_holder(redis):
    lease = RedisLease(redis, "ld:{ld}:test-lease", 0.5)
    held = await lease.acquire()
    assert held is not None
    assert await lease.acquire() is None  # held
    await asyncio.sleep(0.3)
    assert await lease.renew(held)
    await asyncio.sleep(0.3)
    assert await lease.acquire() is None  # still held: the renewal extended it
    await asyncio.sleep(0.6)
    other = await lease.acquire()  # lapsed: another takes it, with a higher fence
    assert other is not None and other.fence > held.fence
    assert not await lease.renew(held) and not await lease.release(held)
    assert await lease.holder_token() == other.token
    assert await lease.release(other)
    assert await lease.holder_token() is None


def test_cursor_fresh():
    assert Cursor("x").fresh and not Cursor("x", "1-0", 1).fresh



async def test_two_gateways_archive_chat_and_orders_through_one_leader(redis, redis_srv, pg):
    """The wiring: with Redis and PostgreSQL, every node has a candidate and no node feeds
    the store itself; what the nodes do reaches PostgreSQL through the leader, orders too."""
    from gateway.config import Config
    from tests.conftest import free_port, start_gateway, stop_gateway

    url = await pg.url("gateways")
    gws = [await start_gateway(Config(dev=True, port=free_port(), redis_url=redis_srv.url,
                                      database_url=url, node_id=f"g{i}",
                                      archiver_lease_ttl_s=1.0)) for i in range(2)]
    stopped: list = []
    try:
        assert all(g.gw.archiver is not None for g in gws)
        leader = await wait_for(lambda: next((g for g in gws if g.gw.archiver.leading), None),
                                5, "a leader")
        other = gws[1 - gws.index(leader)]
        store = other.gw.durable.store
        v = await other.client("viewer", "v1", room=other.room_id, name="Ann")
        cid = (await v.request("conversation.open", room=other.room_id))["conversation"]
        await v.request("message.send", conversation=cid, text="耳机没有声音 ORD-1",
                        client_msg_id="m1")
        sku = leader.gw.rooms.get(leader.room_id).knowledge.products[0].sku
        async with leader.http.post(f"{leader.url}/api/rooms/{leader.room_id}/orders",
                                    json={"order_id": "ORD-1", "user": "v1", "sku": sku,
                                          "qty": 1},
                                    headers={"Authorization": "Bearer "
                                             + leader.token("service", "shop")}) as r:
            assert r.status == 200, await r.text()
            stock_left = (await r.json())["stock_left"]
        await wait_for(lambda: count(store, "SELECT COUNT(*) FROM orders WHERE order_id = "
                                            "'ORD-1'"), 5, "the order archived")
        assert await store.db.fetch("SELECT stock FROM room_stock WHERE room = ? AND sku = ?",
                                    [leader.room_id, sku]) == [(stock_left,)]
        async with leader.http.get(leader.url + "/metrics") as r:
            text = await r.text()
        assert "livedesk_archiver_leader 1.0" in text
        # the leader's node stops: the other takes over and goes on
        await stop_gateway(leader)
        stopped.append(leader)
        await wait_for(lambda: other.gw.archiver.leading, 3, "the other node leads")
        await v.request("message.send", conversation=cid, text="还在吗", client_msg_id="m2")
        conv = other.gw.support.backend.store.get(cid)

        async def archived():
            return [r[0] for r in await store.db.fetch(
                "SELECT text FROM messages WHERE conversation = ? ORDER BY n", [cid])]

        async def same() -> bool:  # what the node holds (bot replies keep coming) is archived
            want = [m.text for m in conv.messages]
            return "还在吗" in want and await archived() == want
        await wait_for(same, 5, "every message archived")
    finally:
        for g in gws:
            if g not in stopped:
                await stop_gateway(g)



async def test_a_leader_that_cannot_renew_stops_leading_and_comes_back(redis, pg):
    """Redis errors while renewing end the leadership, not the archiver."""
    a = make(redis, await pg.open("renew"), "A", lease_ttl_s=0.6)
    real = a.lease.renew
    fails = 0

    async def flaky(held):
        nonlocal fails
        if fails < 2:
            fails += 1
            raise aioredis.ConnectionError("Redis went away")
        return await real(held)

    a.lease.renew = flaky  # type: ignore[method-assign]
    await a.start()
    try:
        await wait_for(lambda: fails == 2, 5, "two failed renewals")
        assert a._task is not None and not a._task.done()
        await wait_for(lambda: a.leading, 5, "leading again")
        await Appender(redis).append([opened("c1"), message("c1", 1)])
        await wait_for(lambda: caught_up(a), 5, "archiving again")
    finally:
        await a.close()
    assert await count(a.store, "SELECT COUNT(*) FROM messages") == 1
