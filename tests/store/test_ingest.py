"""The feed records what the support plane's real steps decided (MemoryBackend: open,
append, escalate, assign, transfer, resolve, records, expiry; a real room's orders), and
the store's live state then equals the replica's state."""

from __future__ import annotations

import time

from gateway.store import SearchQuery
from gateway.store.ingest import StoreFeed
from gateway.support.backend import MemoryBackend
from gateway.support.changes import record_about
from gateway.support.conversation import Author, ConversationStore
from gateway.support.events import ChangesApplied
from gateway.support.routing import Router
from signaling.events import Events

BOT = Author("bot", "bot", "小助手")


def backend_with(store) -> tuple[MemoryBackend, StoreFeed]:
    """A backend whose node events feed the store, wired as ``gateway/durable.py`` does;
    ``feed.seen`` holds every ``ChangesApplied`` (another subscriber keeps working)."""
    events = Events()
    b = MemoryBackend(ConversationStore(), Router(5), events=events)
    feed = StoreFeed(store)
    seen: list = []
    events.subscribe(ChangesApplied, seen.append)
    events.subscribe(ChangesApplied, lambda e: feed.on_changes(list(e.changes)))
    feed.seen = seen  # type: ignore[attr-defined]
    return b, feed


async def test_real_steps_are_recorded_and_the_live_state_matches_the_replica(store):
    b, feed = backend_with(store)
    await b.set_status("a1", "available", "Ann", capacity=3)
    await b.set_status("a2", "available", "Bob")
    conv, _ = await b.open("r1", "v1", "Vee", (BOT, "您好，有什么可以帮您？"))
    v = Author("viewer", "v1", "Vee")
    await b.append(conv, v, "我的蓝牙耳机坏了", "cm-1")
    await b.append(conv, v, "我的蓝牙耳机坏了", "cm-1")  # a repeat: stored once
    await b.escalate(conv, "asked for a human")
    assigned = await b.assign_next()
    assert assigned is not None
    agent = assigned[1].user
    await b.append(conv, Author("agent", agent, agent), "马上帮您处理", None)
    await b.set_fields(conv, mood="negative", pinned=[{"sku": "s1"}])
    await b.put("csat_req", conv.id, {"agent": agent})
    await b.put("browse", "v1", {"events": [{"sku": "s1"}]}, ttl_s=0.5)
    other, _ = await b.open("r1", "v2", "Wu", None)
    await b.append(other, Author("viewer", "v2", "Wu"), "还有货吗", None)
    await b.escalate(other, "asked")
    await feed.drain()
    assert feed.seen and feed.failures == 0

    live = await store.load_live_state()
    by_id = {c.conversation: (c, ms) for c, ms in live.conversations}
    for c in b.store.all():
        row, msgs = by_id[c.id]
        assert (row.state, row.agent, row.room, row.viewer) == (c.state, c.agent, c.room,
                                                                c.viewer)
        assert [(m.n, m.role, m.user, m.text, m.cmid or None) for m in msgs] == [
            (m.n, m.author.role, m.author.user, m.text, m.client_msg_id) for m in c.messages]
    assert [q.conversation for q in live.queue] == [e.conversation for e in b.router.queue]
    assert live.assignments == {conv.id: agent}
    assert {a.user: a.capacity for a in live.agents} == {"a1": 3, "a2": 5}
    assert by_id[conv.id][0].mood == "negative"
    assert by_id[conv.id][0].extra == {"pinned": [{"sku": "s1"}]}
    assert {(r.namespace, r.key) for r in live.records} == {("csat_req", conv.id),
                                                            ("browse", "v1")}

    # the browsing record expires in memory: history keeps it, the live state does not
    time.sleep(0.55)
    assert await b.expire_records() == 1
    await b.transfer(conv, None, "back to the queue")
    await b.resolve(other, by="viewer")
    await feed.drain()
    live = await store.load_live_state()
    assert {(r.namespace, r.key) for r in live.records} == {("csat_req", conv.id)}
    assert live.assignments == {}
    assert [q.conversation for q in live.queue] == [conv.id]
    assert other.id not in {c.conversation for c, _ in live.conversations}
    t = await store.transcript(other.id)
    assert t.conversation.state == "resolved" and t.conversation.resolved_by == "viewer"
    assert [h.conversation for h in await store.search(SearchQuery(q="耳机"))] == [conv.id]
    assert (await store.transcript(conv.id)).agents == [agent]


async def test_orders_from_a_real_room_are_recorded_with_its_counters(store):
    from gateway.support.knowledge import Knowledge, demo_room_path
    from gateway.support.room import MemoryOrderLedger, Order, Room

    room = Room(Knowledge.load(demo_room_path()))
    sku = room.knowledge.products[0].sku
    feed = StoreFeed(store)
    ledger = MemoryOrderLedger()
    o = Order("ord-1", "v1", sku, 1)
    out = await ledger.place(room, o)
    feed.on_order(room, o, out)
    feed.on_order(room, o, await ledger.place(room, o))  # a replay: nothing new
    await feed.drain()
    live = await store.load_live_state()
    assert [(x.order_id, x.viewer, x.qty) for x in live.orders] == [("ord-1", "v1", 1)]
    assert live.orders[0].body == out.body
    assert live.stock[room.id][sku] == room.knowledge.product(sku).stock
    assert live.gifts.get(room.id, {}) == {k: g["claimed"] or 0
                                           for k, g in room.gifts().items()}


def test_records_say_whom_they_are_about():
    assert record_about("browse", "v9", {"events": []}) == ("v9", None)
    assert record_about("authority_day", "v9|2026-12-06", {"cents": 1})[0] == "v9"
    assert record_about("authority", "a1|c7", {"cents": 1})[1] == "c7"
    assert record_about("audit", "au_1", {"viewer": "v9", "conversation": "c7"}) == ("v9", "c7")
    assert record_about("conversion", "r1:o1", {"user": "v9", "conversation": "c7"}) == (
        "v9", "c7")
    assert record_about("csat", "c7", {"score": 5})[1] == "c7"
