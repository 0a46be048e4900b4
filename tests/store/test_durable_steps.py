"""Durable before acknowledged (one node, memory backend + store): a step and an accepted
order return only once the store has committed them; a store that fails a write fails the
step with a typed error, the node refuses further steps (changing nothing) until the held
write is committed, and then carries on with the store complete."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.database import Stmt
from gateway.store.ingest import StoreFeed
from gateway.support.backend import MemoryBackend, NotSaved
from gateway.support.conversation import Author, ConversationStore
from gateway.support.events import MessageApplied
from gateway.support.knowledge import Knowledge, demo_room_path
from gateway.support.room import MemoryOrderLedger, Order, Room
from gateway.support.routing import Router
from signaling import ErrorCode, ProtocolError
from signaling.events import Events

BOT = Author("bot", "bot", "小助手")


def node(store, retry_s: float = 0.05) -> tuple[MemoryBackend, MemoryOrderLedger, StoreFeed,
                                                Events]:
    events = Events()
    feed = StoreFeed(store, retry_s=retry_s)
    b = MemoryBackend(ConversationStore(), Router(5, reachable=lambda u: True),
                      events=events, durability=feed)
    return b, MemoryOrderLedger(journal=feed), feed, events


async def test_every_step_is_committed_when_it_returns(store):
    b, ledger, feed, _ = node(store)
    await b.set_status("a1", "available", "Ann", capacity=3)
    assert [(a.user, a.capacity) for a in (await store.load_live_state()).agents] == [("a1", 3)]
    conv, _ = await b.open("r1", "v1", "Vee", (BOT, "您好"))
    assert (await store.conversation(conv.id)) is not None
    v = Author("viewer", "v1", "Vee")
    await b.append(conv, v, "我的耳机坏了", "cm-1")
    assert [m.text for m in await store.messages(conv.id)] == ["您好", "我的耳机坏了"]
    await b.escalate(conv, "asked")
    assert [q.conversation for q in (await store.load_live_state()).queue] == [conv.id]
    await b.assign_next()
    live = await store.load_live_state()
    assert live.assignments == {conv.id: "a1"} and live.queue == []
    await b.set_fields(conv, mood="negative")
    assert (await store.conversation(conv.id)).mood == "negative"
    await b.put("csat_req", conv.id, {"agent": "a1"})
    assert [r.key for r in (await store.load_live_state()).records] == [conv.id]
    await b.transfer(conv, None, "back")
    assert [q.conversation for q in (await store.load_live_state()).queue] == [conv.id]
    await b.resolve(conv, by="viewer")
    assert (await store.conversation(conv.id)).state == "resolved"
    # an accepted order: its id and the room's counters, committed before the answer
    room = Room(Knowledge.load(demo_room_path()))
    sku = room.knowledge.products[0].sku
    out = await ledger.place(room, Order("ord-1", "v1", sku, 2))
    assert out.status == 200
    live = await store.load_live_state()
    assert [o.order_id for o in live.orders] == ["ord-1"]
    assert live.stock[room.id][sku] == room.knowledge.product(sku).stock
    assert feed.failures == 0 and not feed.pending


async def test_messages_are_delivered_only_once_committed(store):
    b, _, _, events = node(store)
    seen: list[int] = []
    conv, _ = await b.open("r1", "v1", "Vee", None)
    opened = store.batches
    # at the moment a message is handed out, how many batches the store has committed
    events.subscribe(MessageApplied, lambda e: seen.append(store.batches - opened))
    for i in range(5):
        await b.append(conv, Author("viewer", "v1"), f"m{i}", f"c{i}")
    # each delivery came after its own append was committed
    assert seen == [1, 2, 3, 4, 5]


async def _break_messages(store) -> None:
    if store.backend == "sqlite":
        await store.db.transact([Stmt("CREATE TRIGGER ld_test_fail BEFORE INSERT ON messages "
                                      "BEGIN SELECT RAISE(ABORT, 'disk is full'); END")])
    else:
        await store.db.transact([
            Stmt("CREATE OR REPLACE FUNCTION ld_test_fail() RETURNS trigger AS $$ BEGIN "
                 "RAISE EXCEPTION 'disk is full'; END $$ LANGUAGE plpgsql"),
            Stmt("CREATE TRIGGER ld_test_fail BEFORE INSERT ON messages FOR EACH ROW "
                 "EXECUTE FUNCTION ld_test_fail()")])


async def _mend_messages(store) -> None:
    sql = ("DROP TRIGGER ld_test_fail" if store.backend == "sqlite"
           else "DROP TRIGGER ld_test_fail ON messages")
    await store.db.transact([Stmt(sql)])


async def test_a_failed_write_fails_the_step_and_the_node_refuses_until_it_is_written(store):
    b, ledger, feed, _ = node(store)
    conv, _ = await b.open("r1", "v1", "Vee", None)
    await _break_messages(store)
    v = Author("viewer", "v1")
    with pytest.raises(NotSaved) as err:
        await b.append(conv, v, "第一条", "cm-1")
    assert err.value.code == ErrorCode.UNAVAILABLE and "not saved" in err.value.message
    assert feed.failures >= 1 and feed.refusing() is not None
    # refused before anything changes: no agent appears, no order is placed
    with pytest.raises(NotSaved):
        await b.set_status("a1", "available", "Ann")
    assert "a1" not in b.router.agents
    room = Room(Knowledge.load(demo_room_path()))
    sku = room.knowledge.products[0].sku
    before = room.knowledge.product(sku).stock
    with pytest.raises(ProtocolError) as oerr:
        await ledger.place(room, Order("ord-1", "v1", sku, 1))
    assert oerr.value.code == ErrorCode.UNAVAILABLE
    assert room.knowledge.product(sku).stock == before
    await _mend_messages(store)
    for _ in range(200):
        if feed.refusing() is None:
            break
        await asyncio.sleep(0.02)
    assert feed.refusing() is None
    # the held write made it: the message the client was refused is there once, and new
    # steps are accepted and committed again
    assert [m.text for m in await store.messages(conv.id)] == ["第一条"]
    await b.append(conv, v, "第二条", "cm-2")
    assert [m.text for m in await store.messages(conv.id)] == ["第一条", "第二条"]
    await feed.close()
