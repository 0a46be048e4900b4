"""Order ids are remembered for ``order_retention_s`` (a replayed order event within it is a
repeat, answered as the first time) and forgotten after it, so the idempotency records of
every order ever placed no longer grow without bound. Through a gateway on both backends, and
each ledger on its own (its clock or its keys); Redis is real."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.support.knowledge import Knowledge, demo_room_path
from gateway.support.redis_room import RedisRoomStore, k
from gateway.support.room import MemoryOrderLedger, Order, Room
from tests.conftest import start_gateway, stop_gateway
from tests.integration.test_room import post_order

pytestmark = pytest.mark.parity


def _room() -> tuple[Room, str]:
    room = Room(Knowledge.load(demo_room_path()))
    sku = next(p.sku for p in room.knowledge.products if p.stock >= 10)
    return room, sku


async def test_a_gateway_forgets_order_ids_after_the_retention(backend):
    r = await start_gateway(backend.config(order_retention_s=0.3))
    try:
        room = r.gw.rooms.get(r.room_id)
        sku = next(p.sku for p in room.knowledge.products if p.stock >= 10)
        o1 = {"order_id": "o-1", "user": "u1", "sku": sku, "qty": 1}
        st, first = await post_order(r, o1)
        assert st == 200, first
        st, again = await post_order(r, o1)  # within the retention: a repeat, same answer
        assert st == 200 and again == first
        st, clash = await post_order(r, dict(o1, qty=2))  # same id, other content
        assert st == 409 and clash["error"] == "conflict"
        await asyncio.sleep(0.4)
        st, o2 = await post_order(r, {"order_id": "o-2", "user": "u2", "sku": sku, "qty": 1})
        assert st == 200 and o2["stock_left"] == first["stock_left"] - 1
        # o-1 is forgotten: the same id with other content is a new order now
        st, late = await post_order(r, dict(o1, qty=2))
        assert st == 200 and late["stock_left"] == first["stock_left"] - 3, late
    finally:
        await stop_gateway(r)


@pytest.mark.one_backend("memory", why="drives MemoryOrderLedger with explicit clock values")
def test_memory_ledger_forgets_order_ids_after_the_retention():
    room, sku = _room()
    ledger = MemoryOrderLedger(retention_s=60)
    stock0 = room.knowledge.product(sku).stock
    o1 = Order("o-1", "u1", sku, 1)
    assert ledger.place_now(room, o1, now=1000.0).status == 200
    again = ledger.place_now(room, o1, now=1050.0)  # within the retention: a repeat
    assert again.repeated and room.knowledge.product(sku).stock == stock0 - 1
    ledger.place_now(room, Order("o-2", "u2", sku, 1), now=1061.0)  # o-1 is now forgotten
    assert ("demo", "o-1") not in ledger._orders and len(ledger._orders) == 1
    late = ledger.place_now(room, o1, now=1062.0)
    assert late.status == 200 and not late.repeated  # a new order to the ledger
    assert room.knowledge.product(sku).stock == stock0 - 3


@pytest.mark.one_backend("memory", why="drives MemoryOrderLedger with explicit clock values")
def test_memory_ledger_with_retention_zero_keeps_everything():
    room, sku = _room()
    ledger = MemoryOrderLedger(retention_s=0)
    ledger.place_now(room, Order("o-1", "u1", sku, 1), now=0.0)
    ledger.place_now(room, Order("o-2", "u1", sku, 1), now=10 ** 9)
    assert ledger.place_now(room, Order("o-1", "u1", sku, 1), now=10 ** 9).repeated


@pytest.mark.one_backend("redis", why="reads the ledger's Redis hash and sorted set")
async def test_redis_ledger_forgets_order_ids_after_the_retention(backend):
    room, sku = _room()
    red = aioredis.Redis.from_url(backend.redis_url)
    try:
        store = RedisRoomStore(red, order_retention_s=0.3)
        await store.seed_or_load(room)
        o1 = Order("o-1", "u1", sku, 1)
        first = await store.place(room, o1)
        assert first.status == 200 and not first.repeated
        assert (await store.place(room, o1)).repeated  # within the retention
        await asyncio.sleep(0.4)
        await store.place(room, Order("o-2", "u2", sku, 1))  # sweeps o-1
        assert not await red.hexists(k(room.id, "orders"), "o-1")
        assert await red.zscore(k(room.id, "orders_ts"), "o-1") is None
        assert await red.hexists(k(room.id, "orders"), "o-2")
        late = await store.place(room, o1)
        assert late.status == 200 and not late.repeated
        kept = RedisRoomStore(red)  # retention 0: nothing is swept
        await asyncio.sleep(0.4)
        await kept.place(room, Order("o-3", "u3", sku, 1))
        assert await red.hexists(k(room.id, "orders"), "o-2")
    finally:
        await red.aclose()
