"""A node's live state back from the durable store, as change records.

Why records: the replica already knows how to reach a state from change records (it does
nothing else), so a restart replays what the store holds through ``Replica.apply`` like any
other change, and no second way of building conversations, queues or agents exists.
:func:`changes_from_live_state` is backend-neutral (it only turns a
:class:`~gateway.store.records.LiveState` into records); :func:`restore_node` loads a single
node (memory backend and order ledger) before it serves.

What comes back, and how (docs/storage.md#restart):

* open conversations with every message, their fields, the queue (head first) and each
  assignment;
* agents' settings (name, capacity, paused, last assignment), with status ``offline``: an
  agent is available again when its console reconnects and says so; its assignments stay;
* live workspace records (CSAT requests, browsing, approvals, …) with their TTL;
* per room: stock and first-N gift counts, and order ids placed within the order retention
  with the answer each got (a shop replaying one after the restart gets a repeat).

With Redis, :class:`RedisRepopulation` puts the same records back into a Redis that
restarted empty (docs/operations.md#redis-restarted-empty): one unit (an agent, a
conversation with everything of it, a record) per commit of the generic commit script, so
every node's replica and the archiver see them as ordinary changes.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .store import Store
from .store.records import LiveState
from .support.backend import MemoryBackend
from .support.changes import (
    AgentStatus,
    Attached,
    ConversationOpened,
    Dequeued,
    FieldsSet,
    MessageAppended,
    Queued,
    RecordPut,
    SupportChange,
    is_conversation_field,
)
from .support.conversation import Author
from .support.room import MemoryOrderLedger, Order, RoomRegistry

log = logging.getLogger(__name__)

_ROW_FIELDS = ("state", "agent", "agent_name", "viewer_nickname", "escalated_at",
               "assigned_at", "first_agent_reply_at", "resolved_at", "resolved_by",
               "escalation_reason", "mood")


def changes_from_live_state(live: LiveState) -> list[SupportChange]:
    """The change records that rebuild ``live`` in an empty replica, in an order the replica
    can apply: agents, then each conversation (opened, its fields, its messages), then the
    queue head first, then assignments, then records."""
    out: list[SupportChange] = []
    for a in live.agents:
        out.append(AgentStatus(user=a.user, name=a.name, status="offline", since=a.since,
                               capacity=a.capacity, paused=a.paused,
                               last_assigned=a.last_assigned))
    for row, messages in live.conversations:
        cid = row.conversation
        out.append(ConversationOpened(cid, row.room, row.viewer, row.viewer_name or row.viewer,
                                      row.opened_at))
        fields: dict[str, Any] = {k: v for k, v in row.extra.items()
                                  if is_conversation_field(k) and v is not None}
        fields.update({k: getattr(row, k) for k in _ROW_FIELDS
                       if getattr(row, k) is not None})
        out.append(FieldsSet(cid, fields))
        for m in messages:
            out.append(MessageAppended(cid, m.n, Author(m.role, m.user, m.name or None),
                                       m.text, m.ts, m.cmid or None, m.kind or None,
                                       dict(m.meta)))
    open_ids = {row.conversation: row for row, _ in live.conversations}
    for q in live.queue:
        if q.conversation in open_ids:
            out.append(Queued(q.conversation, q.since))
    for cid, agent in live.assignments.items():
        held = open_ids.get(cid)
        if held is not None:
            out.append(Attached(cid, agent, held.assigned_at or held.opened_at))
    for r in live.records:
        out.append(RecordPut(r.namespace, r.key, r.value, r.expires_at))
    return out


def apply_quotas(room: Any, quotas: dict[str, tuple[int, bool]]) -> None:
    """A host's last edit of each first-N gift's quota (limit, running or stopped), as the
    store recorded it, onto the room's knowledge (promotions the room no longer has are
    left out)."""
    for pid, (limit, active) in quotas.items():
        promo = room.knowledge.promotion(pid)
        if promo is not None and promo.kind == "first_n_gift":
            promo.limit = limit
            promo.active = active


@dataclass(frozen=True)
class RestoreReport:
    conversations: int
    messages: int
    queued: int
    agents: int
    records: int
    rooms: int
    orders: int


async def restore_node(store: Store, backend: MemoryBackend, ledger: MemoryOrderLedger,
                       rooms: RoomRegistry, order_retention_s: float,
                       metrics: Any = None) -> RestoreReport:
    """Load the store's live state into this node (before it serves): the support state
    through the backend's replica (no delivery, no echo to the store), each configured
    room's counters and order ids through its ledger. Rooms no longer configured are
    left in the store."""
    since = time.time() - order_retention_s if order_retention_s > 0 else 0.0
    live = await store.load_live_state(orders_since=since)
    backend.restore(changes_from_live_state(live))
    orders: dict[str, list[tuple[Order, dict[str, Any], float]]] = {}
    for o in live.orders:
        orders.setdefault(o.room, []).append((Order(o.order_id, o.viewer, o.sku, o.qty),
                                              o.body, o.at))
    restored_rooms = n_orders = 0
    for room in rooms:
        stock, gifts = live.stock.get(room.id, {}), live.gifts.get(room.id, {})
        placed = orders.get(room.id, [])
        quotas = live.quotas.get(room.id, {})
        if stock or gifts or placed or quotas:
            apply_quotas(room, quotas)
            ledger.restore(room, stock, gifts, placed)
            restored_rooms += 1
            n_orders += len(placed)
    report = RestoreReport(
        conversations=len(live.conversations),
        messages=sum(len(ms) for _, ms in live.conversations), queued=len(live.queue),
        agents=len(live.agents), records=len(live.records), rooms=restored_rooms,
        orders=n_orders)
    if metrics is not None:
        metrics.restored_conversations.set(report.conversations)
    log.info("restored from the store: %s", report)
    return report


def restore_units(changes: Sequence[SupportChange]) -> list[list[SupportChange]]:
    """``changes_from_live_state``'s records grouped into units Redis can take one commit
    at a time: each agent; each conversation with its fields, messages, queue place and
    assignment (queued ones first, head first, so the queue is rebuilt in its order); each
    record. A unit starts with the record that names its subject."""
    agents: list[list[SupportChange]] = []
    convs: dict[str, list[SupportChange]] = {}
    queued: list[str] = []
    records: list[list[SupportChange]] = []
    for ch in changes:
        if isinstance(ch, AgentStatus):
            agents.append([ch])
        elif isinstance(ch, RecordPut):
            records.append([ch])
        elif isinstance(ch, ConversationOpened):
            convs[ch.cid] = [ch]
        elif isinstance(ch, FieldsSet | MessageAppended | Queued | Dequeued | Attached):
            if ch.cid in convs:
                convs[ch.cid].append(ch)
                if isinstance(ch, Queued):
                    queued.append(ch.cid)
    first = [convs[c] for c in queued]
    rest = [u for c, u in convs.items() if c not in set(queued)]
    return [*agents, *first, *rest, *records]


class RoomRepopulator(Protocol):
    """The room's owner in Redis (``RedisRoomStore``): puts a room's counters back."""

    async def repopulate(self, room: Any, stock: dict[str, int], gifts: dict[str, int],
                         orders: list[tuple[Order, dict[str, Any], float]],
                         edit: Callable[[Any], None] | None = None) -> bool: ...


@dataclass
class RepopulationReport:
    conversations: int = 0
    messages: int = 0
    agents: int = 0
    records: int = 0
    rooms: int = 0
    orders: int = 0
    unrestored: dict[str, int] = field(default_factory=dict)  # reason → units


class RedisRepopulation:
    """Loads the archive (``Store.load_live_state``) and writes it back into Redis: the
    support state through the backend's guarded commit (the writer it is called with),
    each configured room's counters and order ids through the room's owner. Called by the
    one node holding the repopulation lock (``RedisBackend.ensure_populated``)."""

    def __init__(self, store: Store, rooms: RoomRegistry, room_store: RoomRepopulator,
                 order_retention_s: float, metrics: Any = None) -> None:
        self.store = store
        self.rooms = rooms
        self.room_store = room_store
        self.order_retention_s = order_retention_s
        self.metrics = metrics
        self.last: RepopulationReport | None = None

    async def __call__(self, write: Callable[[Sequence[SupportChange]], Awaitable[str]]
                       ) -> RepopulationReport:
        since = time.time() - self.order_retention_s if self.order_retention_s > 0 else 0.0
        live = await self.store.load_live_state(orders_since=since)
        rep = RepopulationReport()
        for unit in restore_units(changes_from_live_state(live)):
            outcome = await write(unit)
            if outcome != "restored":
                rep.unrestored[outcome] = rep.unrestored.get(outcome, 0) + 1
                continue
            match unit[0]:
                case AgentStatus():
                    rep.agents += 1
                case RecordPut():
                    rep.records += 1
                case _:
                    rep.conversations += 1
                    rep.messages += sum(isinstance(c, MessageAppended) for c in unit)
        orders: dict[str, list[tuple[Order, dict[str, Any], float]]] = {}
        for o in live.orders:
            orders.setdefault(o.room, []).append((Order(o.order_id, o.viewer, o.sku, o.qty),
                                                  o.body, o.at))
        configured = set(self.rooms.ids())
        for rid in set(live.stock) | set(live.gifts) | set(orders) | set(live.quotas):
            if rid not in configured:
                rep.unrestored["room_not_configured"] = \
                    rep.unrestored.get("room_not_configured", 0) + 1
        for room in self.rooms:
            stock, gifts = live.stock.get(room.id, {}), live.gifts.get(room.id, {})
            placed = orders.get(room.id, [])
            quotas = live.quotas.get(room.id, {})
            if not (stock or gifts or placed or quotas):
                continue
            if await self.room_store.repopulate(room, stock, gifts, placed,
                                                functools.partial(apply_quotas,
                                                                  quotas=quotas)):
                rep.rooms += 1
                rep.orders += len(placed)
            else:
                rep.unrestored["present"] = rep.unrestored.get("present", 0) + 1
        self._count(rep)
        self.last = rep
        log.warning("Redis repopulated from the archive: %s", rep)
        return rep

    def _count(self, rep: RepopulationReport) -> None:
        m = self.metrics
        if m is None:
            return
        m.redis_repopulations.inc()
        for kind in ("conversations", "messages", "agents", "records", "rooms", "orders"):
            m.redis_repopulated.labels(kind=kind).inc(getattr(rep, kind))
        for reason, n in rep.unrestored.items():
            m.redis_unrestored.labels(reason=reason).inc(n)
