"""The Redis backends decide on a node's own copy and commit only if Redis still holds what
was read. Two backends on one real Redis, one of them behind (its tail is not running, so
its replica never learns of the other's changes by itself): every decision it takes on the
stale copy is refused by the guard and taken again on current state."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from gateway.support.conversation import Author, ConversationStore
from gateway.support.knowledge import Knowledge, demo_room_path
from gateway.support.redis_backend import P, RedisBackend
from gateway.support.redis_room import RedisRoomStore, k
from gateway.support.room import Order, Room
from gateway.support.routing import Router

pytestmark = pytest.mark.redis

V = Author("viewer", "v1", "Vee")


async def _backend(url: str, agents=()) -> RedisBackend:
    b = RedisBackend(aioredis.Redis.from_url(url), ConversationStore(), Router(), url=url,
                     local_agents=lambda: list(agents))
    await b.start()
    return b


async def test_a_stale_replica_is_refused_and_decides_again(redis_server):
    a = await _backend(redis_server.url)
    b = await _backend(redis_server.url)
    try:
        conv_a, _ = await a.open("r1", "v1", "Vee", None)
        await b.sync()
        conv_b = b.store.get(conv_a.id)
        assert conv_b is not None
        # b stops following the log: from here on its replica is behind
        await b.close()
        await a.append(conv_a, V, "one", "k1")
        await a.append(conv_a, V, "two", "k2")
        assert len(conv_b.messages) == 0
        # b's rule numbers the message 1 and does not know "k1": the guard on the message
        # count refuses it, b catches up with the log (sync), and decides again
        b._tail = None  # its steps wait for its replica: applied by hand below
        b.applied = _apply_by_hand(b)  # type: ignore[method-assign]
        b.sync = _sync_by_hand(b)  # type: ignore[method-assign]
        m, repeated = await b.append(conv_b, V, "three", "k3")
        assert (m.n, m.text, repeated) == (3, "three", False)
        again, repeated = await b.append(conv_b, V, "one, sent again", "k1")
        assert (again.n, again.text, repeated) == (1, "one", True)
        assert b.conflicts >= 1
        log = await a.redis.xrange(P + f"log:{conv_a.id}")
        assert [json.loads(f[b"j"])["text"] for _, f in log] == ["one", "two", "three"]
    finally:
        await a.close()
        await b.close()


def _apply_by_hand(b: RedisBackend):
    """``applied`` for a backend whose tail is stopped: read and apply the log up to ``eid``."""
    from gateway.support.changes import list_from_wire

    async def applied(eid: str, timeout: float = 5.0) -> None:
        entries = await b.redis.xrange(P + "ops", min="(" + b._last_id, max=eid)
        for got, fields in entries:
            b.replica.apply(list_from_wire(json.loads(fields[b"c"])), int(fields[b"s"]))
            b._last_id = got.decode()
    return applied


def _sync_by_hand(b: RedisBackend):
    async def sync() -> None:
        last = await b.redis.xrevrange(P + "ops", count=1)
        if last:
            await b.applied(last[0][0].decode())
    return sync


async def test_an_assignment_on_a_stale_replica_never_overfills_an_agent(redis_server):
    a = await _backend(redis_server.url, agents=["ag"])
    b = await _backend(redis_server.url, agents=["ag"])
    try:
        await a.set_status("ag", "available", "Ag", capacity=1)
        convs = []
        for i in range(2):
            c, _ = await a.open("r1", f"v{i}", "V", None)
            assert await a.escalate(c, "asked")
            convs.append(c)
        await b.sync()
        await b.close()  # b is behind from here on
        b._tail = None
        b.applied = _apply_by_hand(b)  # type: ignore[method-assign]
        b.sync = _sync_by_hand(b)  # type: ignore[method-assign]
        got = await a.assign_next()
        assert got is not None and got[0].id == convs[0].id
        # b still sees the agent free and convs[0] at the queue's head: refused, caught up,
        # and then there is nobody left to assign to
        assert b.router.agents["ag"].load == 0
        assert await b.assign_next() is None
        assert b.conflicts >= 1 and b.router.agents["ag"].load == 1
        assert await a.redis.scard(P + "load:ag") == 1
        assert [c.decode() for c in await a.redis.lrange(P + "queue", 0, -1)] == [convs[1].id]
    finally:
        await a.close()
        await b.close()


async def test_an_order_on_a_stale_room_copy_takes_redis_values_and_decides_again(redis_server):
    red = aioredis.Redis.from_url(redis_server.url)
    try:
        kb = Knowledge.load(demo_room_path())
        gift = next(p for p in kb.promotions if p.kind == "first_n_gift" and p.active)
        sku = gift.sku or next(p.sku for p in kb.products if p.stock >= 10)
        room_a, room_b = Room(Knowledge.load(demo_room_path())), Room(Knowledge.load(demo_room_path()))
        store_a, store_b = RedisRoomStore(red), RedisRoomStore(red)
        await store_a.seed_or_load(room_a)
        await store_b.seed_or_load(room_b)
        stock0 = room_b.knowledge.product(sku).stock
        claimed0 = room_b.knowledge.promotion(gift.id).claimed or 0
        first = await store_a.place(room_a, Order("o-a", "ua", sku, 2))
        assert first.status == 200 and first.body["stock_left"] == stock0 - 2
        # room_b's copy still has the old stock and gift count (no sync running)
        assert room_b.knowledge.product(sku).stock == stock0
        second = await store_b.place(room_b, Order("o-b", "ub", sku, 1))
        assert second.status == 200
        assert second.body["stock_left"] == stock0 - 3
        if first.body["gift"]:
            assert second.body["rank"] in (None, claimed0 + 2)
        assert store_b.conflicts == 1
        assert int(await red.hget(k(room_a.id, "stock"), sku)) == stock0 - 3
        # and the order placed on A, posted again on B, is a repeat (B did not know it)
        again = await store_b.place(room_b, Order("o-a", "ua", sku, 2))
        assert again.repeated and again.body == first.body
    finally:
        await red.aclose()
