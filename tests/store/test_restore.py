"""Restart restores the live state: what one node's steps committed, loaded into a fresh
node as change records through its replica, gives back the same conversations, messages,
queue, assignments, agents (offline, same capacity), records, room counters and order ids."""

from __future__ import annotations

import asyncio

from gateway.restore import changes_from_live_state, restore_node
from gateway.store.ingest import StoreFeed
from gateway.support.backend import MemoryBackend
from gateway.support.conversation import Author, ConversationStore
from gateway.support.events import ChangesApplied, MessageApplied
from gateway.support.knowledge import Knowledge, demo_room_path
from gateway.support.room import MemoryOrderLedger, Order, RoomRegistry
from gateway.support.routing import Router
from signaling.events import Events

BOT = Author("bot", "bot", "小助手")


def fresh_node(store=None):
    events = Events()
    feed = StoreFeed(store) if store is not None else None
    b = MemoryBackend(ConversationStore(), Router(5, reachable=lambda u: True), events=events,
                      durability=feed)
    rooms = RoomRegistry()
    rooms.add(Knowledge.load(demo_room_path()))
    return b, MemoryOrderLedger(journal=feed), rooms, events


def state_of(b: MemoryBackend) -> dict:
    return {
        "convs": sorted((c.id, c.room, c.viewer, c.viewer_name, c.state, c.agent, c.agent_name,
                         c.escalation_reason, c.mood, str(c.pinned), c.viewer_nickname,
                         str(sorted((u, sorted(m.items())) for u, m in c.read_marks.items())),
                         tuple((m.n, m.author.role, m.author.user, m.text, m.client_msg_id,
                                m.kind) for m in c.messages))
                        for c in b.store.all() if c.state != "resolved"),
        "queue": [e.conversation for e in b.router.queue],
        "load": {u: sorted(a.conversations) for u, a in b.router.agents.items()},
        "capacity": {u: a.capacity for u, a in b.router.agents.items()},
        "records": {ns: dict(v) for ns, v in b.replica.records.items() if v},
    }


async def test_a_restarted_node_has_what_the_old_one_acknowledged(store):
    b, ledger, rooms, _ = fresh_node(store)
    room = next(iter(rooms))
    await b.set_status("a1", "available", "Ann", capacity=3)
    await b.set_status("a2", "available", "Bob", capacity=7)
    c1, _ = await b.open(room.id, "v1", "Vee", (BOT, "您好"))
    await b.append(c1, Author("viewer", "v1", "Vee"), "耳机坏了", "cm-1")
    await b.escalate(c1, "asked for a human")
    assigned = await b.assign_next()
    assert assigned is not None
    await b.append(c1, Author("agent", assigned[1].user, "A"), "我来处理", None)
    await b.set_fields(c1, mood="negative", pinned=[{"text": "today only"}],
                       viewer_nickname="小V")
    # the members' latest read marks (last writer wins on the log position)
    assert await b.mark_read(c1, "v1", {"n": 3, "message_id": c1.messages[2].message_id,
                                        "role": "viewer", "ts": 5.0})
    assert not await b.mark_read(c1, "v1", {"n": 1, "message_id": c1.messages[0].message_id,
                                            "role": "viewer", "ts": 6.0})
    assert await b.mark_read(c1, "a1", {"n": 2, "message_id": c1.messages[1].message_id,
                                        "role": "agent", "ts": 4.0})
    assert set(c1.read_marks) == {"v1", "a1"} and c1.read_marks["v1"]["n"] == 3
    c2, _ = await b.open(room.id, "v2", "Wu", (BOT, "您好"))
    await b.escalate(c2, "asked")
    c3, _ = await b.open(room.id, "v3", "Li", (BOT, "您好"))
    await b.escalate(c3, "asked")
    gone, _ = await b.open(room.id, "v4", "Zed", None)
    await b.resolve(gone, by="viewer")
    await b.put("csat_req", c1.id, {"agent": assigned[1].user})
    await b.put("browse", "v1", {"events": [{"sku": "D001"}]}, ttl_s=3600)
    await b.put("browse", "v3", {"events": []}, ttl_s=0.01)  # expires while "down"
    # orders: one with a first-N gift
    gift = next(p for p in room.knowledge.promotions
                if p.kind == "first_n_gift" and (p.claimed or 0) < (p.limit or 0))
    placed = await ledger.place(room, Order("ord-1", "v1", gift.sku, 1))
    assert placed.body["gift"] is True
    await ledger.place(room, Order("ord-2", "v2", room.knowledge.products[-1].sku, 1))
    stock = {p.sku: p.stock for p in room.knowledge.products}
    claimed = {p.id: p.claimed for p in room.knowledge.promotions}
    await asyncio.sleep(0.02)
    before = state_of(b)
    del before["records"]["browse"]["v3"]  # its TTL ran out: not restored

    # a new process on the same store
    b2, ledger2, rooms2, events2 = fresh_node()
    heard: list = []
    events2.subscribe(MessageApplied, heard.append)
    events2.subscribe(ChangesApplied, heard.append)
    report = await restore_node(store, b2, ledger2, rooms2, order_retention_s=3600)
    assert heard == [], "a restore delivers nothing and publishes nothing (no store echo)"
    assert report.conversations == 3
    after = state_of(b2)
    assert after == before
    # a record comes back with its TTL
    assert abs(b2._expiry[("browse", "v1")] - b._expiry[("browse", "v1")]) < 1e-6
    # agents are back offline (their consoles say when they are available again)
    assert {a.status for a in b2.router.agents.values()} == {"offline"}
    room2 = next(iter(rooms2))
    assert {p.sku: p.stock for p in room2.knowledge.products} == stock
    assert {p.id: p.claimed for p in room2.knowledge.promotions} == claimed
    # a replayed order is a repeat with the first answer: not placed twice
    again = await ledger2.place(room2, Order("ord-1", "v1", gift.sku, 1))
    assert again.repeated and again.body == placed.body
    assert {p.id: p.claimed for p in room2.knowledge.promotions} == claimed
    # the restored node carries on: the next message of c1 is number 4
    c1b = b2.store.get(c1.id)
    m, _ = await b2.append(c1b, Author("viewer", "v1", "Vee"), "还在吗", "cm-2")
    assert m.n == 4


def test_changes_from_live_state_rebuild_an_empty_replica_in_order():
    from gateway.store.records import ConversationRow, LiveState, MessageRow, QueueEntry
    from gateway.support.changes import AgentStatus

    row = ConversationRow("c1", "r1", "v1", "Vee", "assigned", "a1", "Ann", 10.0, 11.0, 12.0,
                          None, None, None, "asked", None, None, {"pinned": [{"x": 1}]})
    q = ConversationRow("c2", "r1", "v2", "Wu", "queued", None, None, 20.0, 21.0, None, None,
                        None, None, "asked", None, None, {})
    live = LiveState(
        conversations=[(row, [MessageRow("c1", 1, "viewer", "v1", "Vee", "hi", "m1", "", {},
                                         10.5)]), (q, [])],
        queue=[QueueEntry("c2", 21.0), QueueEntry("gone", 1.0)],
        assignments={"c1": "a1", "gone": "a1"},
        agents=[AgentStatus("a1", "Ann", "available", 1.0, 4)],
        stock={}, gifts={}, orders=[], records=[])
    b, _, _, _ = fresh_node()
    b.restore(changes_from_live_state(live))
    c = b.store.get("c1")
    assert (c.state, c.agent, c.pinned, [m.text for m in c.messages]) == (
        "assigned", "a1", [{"x": 1}], ["hi"])
    assert [e.conversation for e in b.router.queue] == ["c2"]  # what the store lost: not kept
    a = b.router.agents["a1"]
    assert (a.status, a.capacity, sorted(a.conversations)) == ("offline", 4, ["c1"])
