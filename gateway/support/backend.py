"""Support state changes: one atomic step each, applied to every node's replica in one order.

``SupportService`` never mutates conversations or routing itself; it asks a backend for one
*step* (open, append, escalate, assign-next, resolve, transfer, agent status, set fields,
write a record). The rule of each step is a function in ``rules.py`` that reads state and
returns typed change records (``changes.py``) with absolute values, or refuses; the
:class:`Replica` applies records to the node's in-memory :class:`ConversationStore` and
:class:`Router`, which is what every read uses.

* :class:`MemoryBackend` (one process): evaluate the rule against the replica and apply its
  changes at once (no ``await`` in between).
* :class:`~gateway.support.redis_backend.RedisBackend` (many nodes): evaluate the same rule
  against the replica, then commit its changes with one generic script that checks Redis
  still holds what the rule read, writes them and appends them to the Redis Stream
  ``ld:{ld}:ops``; every node tails that stream and applies it in stream order. A step
  returns once the local replica has applied it (read-your-writes).

Because both run the same rules and apply the same records through the same code, one node
and many nodes behave alike; and chat messages are delivered by the applier, so every
recipient on every node sees a conversation in its log order.
"""

from __future__ import annotations

import heapq
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from signaling import ErrorCode, ProtocolError, tracing
from signaling.events import Events

from . import rules
from .changes import (
    CONVERSATION_FIELDS,
    READ_FIELD,
    AgentStatus,
    Attached,
    ConversationOpened,
    Dequeued,
    FieldsSet,
    MessageAppended,
    Queued,
    RecordDeleted,
    RecordPut,
    Released,
    SupportChange,
    ViewerErased,
    read_mark_n,
    record_about,
)
from .conversation import Author, Conversation, ConversationStore, StoredMessage
from .events import (
    ChangesApplied,
    ConversationLost,
    ConversationTruncated,
    MessageApplied,
)
from .routing import Agent, Router
from .rules import conversation_full, too_many_open

__all__ = ["Durability", "Hit", "MemoryBackend", "NotSaved", "Replica", "ReplicaView",
           "SupportBackend", "conversation_full", "too_many_open"]

log = logging.getLogger(__name__)

MessageSink = Callable[[Conversation, StoredMessage, str | None], None]
Delivery = tuple[Conversation, StoredMessage, str | None]


class Durability(Protocol):
    """Where a single node's steps become durable (the composition root passes the store's
    feed; the support plane knows nothing of the store).

    Why a port: a step must not be acknowledged before its changes are committed (a crash
    right after an ack must lose nothing), yet the rules stay synchronous and the replica
    stays the one thing every read uses."""

    def refusing(self) -> str | None:
        """Why no step may change state now (an earlier write is not committed yet), or
        ``None``. Checked before a step's changes are applied, so a refused step changes
        nothing."""

    async def commit(self, changes: Sequence[SupportChange]) -> None:
        """Returns once ``changes`` are committed; raises when they could not be. Must queue
        them before its first ``await`` (steps are committed in the order they applied)."""


class NotSaved(ProtocolError):
    """A step that the durable store did not (or could not yet) commit: the client is told
    ``unavailable`` and may retry; nothing it was acknowledged for is lost."""

    def __init__(self, why: str) -> None:
        super().__init__(ErrorCode.UNAVAILABLE,
                         f"not saved: {why}; try again in a moment"[:300])


def new_conversation_id() -> str:
    return "c_" + secrets.token_urlsafe(9)


@dataclass(frozen=True)
class Hit:
    """What :meth:`SupportBackend.hit` decided: ``allowed``; ``count`` of hits in the window
    (this one included when allowed); ``retry_after_s`` until one more would be allowed."""
    allowed: bool
    count: int
    retry_after_s: float = 0.0


class Replica:
    """Applies change records to this node's copy of conversations, routing and records.

    With ``events``, every chat message it applies is published as
    :class:`~.events.MessageApplied` (in log order); ``on_message`` is that publisher, or
    ``None`` (no delivery: tests of the replica alone, the Redis start-up load).

    Every record is applied by dispatch on its class; applying one again (a start-up
    overlap, a resync) does no harm. ``versions`` holds, for the Redis backend, the number
    of the last log entry that touched each agent (``a:<user>``) and record
    (``r:<ns>\\n<key>``): what a guarded commit expects Redis to still hold."""

    FIELDS = CONVERSATION_FIELDS  # plus the read marks (changes.READ_FIELD)

    def __init__(self, store: ConversationStore, router: Router,
                 events: Events | None = None) -> None:
        self.store = store
        self.router = router
        self.events = events
        self.on_message: MessageSink | None = None
        if events is not None:
            self.on_message = lambda conv, m, origin: events.publish(
                MessageApplied(conv, m, origin))
        # replicated records of the workspace (browsing, approvals, CSAT, audit, …)
        self.records: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self._record_listeners: dict[str, list[Callable[[str, Any], None]]] = {}
        self._forget_listeners: dict[str, list[Callable[[str], None]]] = {}

    def listen(self, namespace: str, cb: Callable[[str, Any], None],
               forget: Callable[[str], None] | None = None) -> None:
        """``cb(key, value)`` whenever a record of ``namespace`` is written, on every node;
        ``forget(key)`` when one expires (written with a TTL: see ``SupportBackend.put``)."""
        self._record_listeners.setdefault(namespace, []).append(cb)
        if forget is not None:
            self._forget_listeners.setdefault(namespace, []).append(forget)

    def apply(self, changes: Sequence[SupportChange], seq: int = 0) -> None:
        """Apply ``changes`` in order; ``seq`` > 0: they are log entry number ``seq``."""
        for ch in changes:
            self._apply(ch, seq)
        if self.events is not None and changes:
            self.events.publish(ChangesApplied(tuple(changes)))

    def apply_held(self, changes: Sequence[SupportChange]) -> list[Delivery]:
        """Apply ``changes`` but hold their chat messages back: returns what
        :meth:`deliver` hands out later (once the step is durable, so nobody is shown a
        message a crash could still lose)."""
        sink, held = self.on_message, []
        self.on_message = lambda conv, m, origin: held.append((conv, m, origin))
        try:
            self.apply(changes)
        finally:
            self.on_message = sink
        return held

    def deliver(self, held: Sequence[Delivery], origin: bool = True) -> None:
        """Hand out messages :meth:`apply_held` held (``origin`` False: to every member as
        a plain event, none as the reply to its sender's request)."""
        if self.on_message is None:
            return
        for conv, m, o in held:
            self.on_message(conv, m, o if origin else None)

    def restore(self, changes: Sequence[SupportChange]) -> None:
        """Apply ``changes`` loaded from a durable copy (a restart): no message is
        delivered and nothing is published, so no consumer records them again."""
        sink, events = self.on_message, self.events
        self.on_message, self.events = None, None
        try:
            self.apply(changes)
        finally:
            self.on_message, self.events = sink, events

    def _stamp(self, key: str, seq: int) -> None:
        if seq > 0 and seq > self.versions.get(key, 0):
            self.versions[key] = seq

    def _apply(self, ch: SupportChange, seq: int) -> None:
        match ch:
            case ConversationOpened():
                self.store.create(ch.cid, ch.room, ch.viewer, ch.viewer_name, ch.created_at)
            case FieldsSet():
                conv = self.store.get(ch.cid)
                if conv is None:
                    return
                for k, v in ch.fields.items():
                    if k in self.FIELDS:
                        setattr(conv, k, None if v in ("", None) and k != "mood" else v)
                    elif k.startswith(READ_FIELD):
                        self._read_mark(conv, k[len(READ_FIELD):], v)
                if conv.state == "resolved":
                    self.store.closed(conv)
            case MessageAppended():
                conv = self.store.get(ch.cid)
                if conv is None or ch.n <= len(conv.messages):
                    return  # unknown, or already applied (bootstrap overlap)
                m = ch.message()
                self.store.add(conv, m)
                if self.on_message is not None:
                    self.on_message(conv, m, ch.origin)
            case Queued():
                conv = self.store.get(ch.cid)
                if conv is not None:
                    self.router.enqueue(conv.id, conv.room, conv.viewer, front=ch.front,
                                        since=ch.since)
            case Dequeued():
                self.router.remove(ch.cid)
            case Attached():
                self.router.attach(ch.cid, self.router.agent(ch.agent), ch.at)
                self._stamp("a:" + ch.agent, seq)
            case Released():
                if ch.agent:
                    self.router.release(ch.cid, ch.agent)
                    self._stamp("a:" + ch.agent, seq)
            case AgentStatus():
                a = self.router.agent(ch.user, ch.name or None)
                a.status = ch.status
                a.since = ch.since
                a.capacity = ch.capacity
                a.paused = ch.paused
                a.last_assigned = ch.last_assigned
                self._stamp("a:" + ch.user, seq)
            case RecordPut():
                self._stamp(f"r:{ch.namespace}\n{ch.key}", seq)
                recs = self.records.setdefault(ch.namespace, {})
                if ch.key in recs and recs[ch.key] == ch.value:
                    return  # applied again (start-up overlap, a resync): listeners saw it
                recs[ch.key] = ch.value
                for cb in self._record_listeners.get(ch.namespace, ()):
                    try:
                        cb(ch.key, ch.value)
                    except Exception:
                        log.exception("record listener %s failed", ch.namespace)
            case RecordDeleted():
                self.versions.pop(f"r:{ch.namespace}\n{ch.key}", None)
                held = self.records.get(ch.namespace)
                if held is None or ch.key not in held:
                    return
                del held[ch.key]
                for forget in self._forget_listeners.get(ch.namespace, ()):
                    try:
                        forget(ch.key)
                    except Exception:
                        log.exception("record forget listener %s failed", ch.namespace)
            case ViewerErased():
                self._erase(ch.viewer)
            case _:
                raise TypeError(f"not a support change record: {ch!r}"[:200])

    @staticmethod
    def _read_mark(conv: Conversation, user: str, v: Any) -> None:
        """Last writer wins on the log position: an older mark (a node that applies the log
        late, a resync) never moves a member's mark back."""
        if not user:
            return
        if v in ("", None):
            conv.read_marks.pop(user, None)
            return
        n = read_mark_n(v)
        if n >= 0 and n > read_mark_n(conv.read_marks.get(user)):
            conv.read_marks[user] = dict(v)

    def _erase(self, viewer: str) -> None:
        """Everything of ``viewer`` leaves this replica: its conversations (open or not,
        with their messages), their queue places and agents' load, and every record about
        the viewer or those conversations (listeners told, as for an expiry)."""
        gone = {c.id for c in self.store.for_viewer(viewer)}
        for conv in self.store.for_viewer(viewer):
            self.router.remove(conv.id)
            for a in self.router.agents.values():
                a.conversations.discard(conv.id)
            self.store.forget(conv)
        for ns, held in self.records.items():
            for key in [k for k, v in held.items()
                        if (about := record_about(ns, k, v))[0] == viewer or about[1] in gone]:
                del held[key]
                self.versions.pop(f"r:{ns}\n{key}", None)
                for forget in self._forget_listeners.get(ns, ()):
                    try:
                        forget(key)
                    except Exception:
                        log.exception("record forget listener %s failed", ns)


class ReplicaView:
    """The replica as the rules read it (``rules.State``)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def conversation(self, cid: str) -> Conversation | None:
        return self.replica.store.get(cid)

    def known(self, cid: str) -> bool:
        return self.replica.store.get(cid) is not None

    def open_for(self, room: str, viewer: str) -> Conversation | None:
        return self.replica.store.open_for(room, viewer)

    def open_count(self, viewer: str) -> int:
        return self.replica.store.open_count(viewer)

    def queued(self, i: int) -> str | None:
        q = self.replica.router.queue
        return q[i].conversation if i < len(q) else None

    def agent(self, user: str) -> Agent | None:
        return self.replica.router.agents.get(user)

    def agents(self) -> Sequence[Agent]:
        return list(self.replica.router.agents.values())

    def record(self, namespace: str, key: str) -> Any:
        return self.replica.records.get(namespace, {}).get(key)


class SupportBackend(ABC):
    """``events`` (the node's event mechanism) hears what the replica applies and what a
    resync drops: :class:`~.events.MessageApplied`, :class:`~.events.ConversationLost`,
    :class:`~.events.ConversationTruncated`. Without it (tests of a backend alone) nothing
    is published."""

    def __init__(self, store: ConversationStore, router: Router,
                 events: Events | None = None) -> None:
        self.store = store
        self.router = router
        self.replica = Replica(store, router, events)
        # called with a conversation the state store lost and this node closed (Redis only)
        self.on_lost: Callable[[Conversation], None] | None = None
        # called when the state store lost a conversation's last messages and this node
        # dropped them too (Redis only): ``(conversation, messages kept)``
        self.on_truncated: Callable[[Conversation, int], None] | None = None
        if events is not None:
            self.on_lost = lambda conv: events.publish(ConversationLost(conv))
            self.on_truncated = lambda conv, kept: events.publish(
                ConversationTruncated(conv, kept))

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ready(self) -> bool:
        return True

    async def sync(self) -> None:
        """Wait until this node has applied every change made anywhere so far."""
        return None

    @abstractmethod
    async def open(self, room: str, viewer: str, name: str, greeting: tuple[Author, str] | None,
                   origin: str | None = None,
                   max_open: int = 0) -> tuple[Conversation, bool]:
        """The viewer's open conversation in ``room``, or a new one. ``max_open`` (> 0): a
        new one is refused (``rate_limited``) while the viewer has that many open, checked
        in the same atomic step that creates it."""

    @abstractmethod
    async def append(self, conv: Conversation, author: Author, text: str, cmid: str | None,
                     kind: str | None = None, meta: dict | None = None,
                     origin: str | None = None,
                     cap: tuple[int, int] | None = None) -> tuple[StoredMessage, bool]:
        """Append a message. ``cap`` = ``(messages, text bytes)``: a client's message is
        refused (``too_large``) when the conversation already holds that many messages or
        the text would take it over that many bytes (0: no limit), checked atomically with
        the append; server-authored lines pass ``None``."""

    @abstractmethod
    async def forget_hits(self, key: str) -> None:
        """Empty the sliding-window counter ``key`` on every node."""

    @abstractmethod
    async def hit(self, key: str, window_s: float, limit: int) -> Hit:
        """Count one event of ``key`` in a sliding window of ``window_s`` unless ``limit``
        events are already in it; shared by every node (the churn guard's counters). Not in
        the change log: nothing but the count is kept."""

    @abstractmethod
    async def escalate(self, conv: Conversation, reason: str) -> bool: ...

    @abstractmethod
    async def assign_next(self) -> tuple[Conversation, Agent] | None: ...

    @abstractmethod
    async def resolve(self, conv: Conversation, by: str = "") -> bool:
        """Resolve ``conv``; ``by`` (``viewer``, ``agent``, ``system``) is kept as
        ``resolved_by`` (the fatigue guard ignores the viewer's quick closes)."""

    @abstractmethod
    async def transfer(self, conv: Conversation, to_agent: str | None, reason: str) -> str | None:
        """Move an assigned conversation to ``to_agent`` or back to the queue's head.
        Returns the previous agent."""

    @abstractmethod
    async def set_status(self, user: str, status: str, name: str | None,
                         capacity: int | None = None, paused: bool = False) -> Agent: ...

    @abstractmethod
    async def set_fields(self, conv: Conversation, **fields: Any) -> None: ...

    @abstractmethod
    async def mark_read(self, conv: Conversation, user: str, mark: dict[str, Any]) -> bool:
        """Keep ``user``'s read mark of ``conv`` if it is later than the one held
        (``rules.mark_read``); whether it was written."""

    @abstractmethod
    async def put(self, namespace: str, key: str, value: Any, *, if_absent: bool = False,
                  expect: dict | None = None, ttl_s: float | None = None) -> tuple[bool, Any]:
        """Write a replicated record, atomically checked: with ``if_absent`` only when there
        is none; with ``expect`` only when the current value has those fields. Returns
        ``(written, current value)``. Every node's listeners see each write, in order.

        ``ttl_s``: the record is forgotten that long after this write (by
        ``expire_records``, everywhere, listeners told); ``None`` keeps it (a later write
        with a TTL sets one, one without clears it). The workspace gives the records that
        belong to a conversation or to recent activity (CSAT, outcomes, conversions,
        browsing) the retention as TTL; approvals, audit and grants are kept."""

    @abstractmethod
    async def expire_records(self, now: float | None = None) -> int:
        """Forget every record whose TTL has run out; returns how many. Safe to run on every
        node at once (each record is forgotten once, through the change log)."""

    async def erase_viewer(self, viewer: str) -> list[str]:
        """Erase ``viewer`` from the live state on every node (a :class:`ViewerErased`
        change); returns the ids of the conversations it had here. Not built for the Redis
        backend yet (docs/storage.md#erasure)."""
        raise NotImplementedError("erasing a viewer from the live state needs the memory "
                                  "backend (one node) for now")

    def get(self, namespace: str, key: str) -> Any:
        return self.replica.records.get(namespace, {}).get(key)

    def listen(self, namespace: str, cb, forget=None) -> None:
        self.replica.listen(namespace, cb, forget)


class MemoryBackend(SupportBackend):
    """One process: each step's rule runs against the replica and its changes are applied
    synchronously (no await in between, so no other step can interleave).

    With ``durability`` (a store configured), a step returns only once its changes are
    committed there, and its chat messages are delivered only then; while an earlier
    commit has failed and is not yet written, every step is refused (:class:`NotSaved`)
    before it changes anything (docs/storage.md#durable-before-acknowledged)."""

    def __init__(self, store: ConversationStore, router: Router,
                 default_capacity: int = 5, capacities: dict[str, int] | None = None,
                 live: Callable[[str], bool] | None = None,
                 events: Events | None = None,
                 durability: Durability | None = None) -> None:
        super().__init__(store, router, events)
        self.durability = durability
        self.default_capacity = default_capacity
        self.capacities = capacities or {}
        # agent liveness for assignment: by default the router's (the agent has a socket
        # on this node)
        self.live = live or router.reachable
        self.view = ReplicaView(self.replica)
        # records written with a TTL: (namespace, key) → when; a heap of the same, whose
        # entries for since-rewritten records are skipped when they come due
        self._expiry: dict[tuple[str, str], float] = {}
        self._due: list[tuple[float, str, str]] = []
        self._hits: dict[str, tuple[float, deque[float]]] = {}  # key → (window, times)

    async def _commit(self, step: rules.Step[Any]) -> None:
        with tracing.span("support.step", attributes={"livedesk.changes": len(step.changes)}):
            await self._apply(step.changes)

    async def _apply(self, changes: Sequence[SupportChange]) -> None:
        if not changes:
            return
        d = self.durability
        if d is not None:
            why = d.refusing()
            if why is not None:
                raise NotSaved(why)
        for ch in changes:
            if isinstance(ch, RecordPut):
                self._note_expiry(ch)
        if d is None:
            self.replica.apply(changes)
            return
        held = self.replica.apply_held(changes)
        try:
            await d.commit(changes)
        except Exception as e:
            # the changes stay applied here and the store's feed keeps them for a retry
            # (the node refuses steps until they are written); the members still get the
            # messages, the sender as a plain event with this error as its reply
            self.replica.deliver(held, origin=False)
            raise NotSaved(str(e) or e.__class__.__name__) from None
        self.replica.deliver(held)

    async def erase_viewer(self, viewer: str) -> list[str]:
        ids = [c.id for c in self.store.for_viewer(viewer)]
        timed = [(ns, key) for ns, key in self._expiry
                 if (about := record_about(ns, key, self.get(ns, key)))[0] == viewer
                 or about[1] in ids]
        await self._apply([ViewerErased(viewer)])
        for k in timed:  # their TTLs go too (their heap entries are then skipped as stale)
            self._expiry.pop(k, None)
        return ids

    def restore(self, changes: Sequence[SupportChange]) -> None:
        """Load ``changes`` from the durable store at start-up (``gateway/restore.py``):
        applied to the replica without delivery, publication or a commit."""
        for ch in changes:
            if isinstance(ch, RecordPut):
                self._note_expiry(ch)
        self.replica.restore(changes)

    def _note_expiry(self, ch: RecordPut) -> None:
        key = (ch.namespace, ch.key)
        if ch.expires_at is None:
            self._expiry.pop(key, None)
            return
        self._expiry[key] = ch.expires_at
        heapq.heappush(self._due, (ch.expires_at, ch.namespace, ch.key))
        if len(self._due) > 2 * len(self._expiry) + 1024:  # mostly rewritten: compact
            self._due = [(t, ns, k) for (ns, k), t in self._expiry.items()]
            heapq.heapify(self._due)

    async def open(self, room, viewer, name, greeting, origin=None, max_open=0):
        step = rules.open_conversation(self.view, cid=new_conversation_id(), room=room,
                                       viewer=viewer, name=name, greeting=greeting,
                                       origin=origin, max_open=max_open, now=time.time())
        await self._commit(step)
        conv = self.store.get(step.result.cid)
        assert conv is not None
        return conv, step.result.created

    async def append(self, conv, author, text, cmid, kind=None, meta=None, origin=None,
                     cap=None):
        step = rules.append(self.view, conv.id, author=author, text=text, cmid=cmid, kind=kind,
                            meta=meta, origin=origin, cap=cap, now=time.time())
        await self._commit(step)
        return conv.messages[step.result.n - 1], step.result.repeated

    async def escalate(self, conv, reason):
        step = rules.escalate(self.view, conv.id, reason=reason, now=time.time())
        await self._commit(step)
        return step.result

    async def assign_next(self):
        step = rules.assign_next(self.view, live=self.live, now=time.time())
        await self._commit(step)
        if step.result is None:
            return None
        conv = self.store.get(step.result.cid)
        assert conv is not None
        return conv, self.router.agents[step.result.agent]

    async def resolve(self, conv, by=""):
        step = rules.resolve(self.view, conv.id, by=by, now=time.time())
        await self._commit(step)
        return step.result

    async def forget_hits(self, key):
        self._hits.pop(key, None)

    async def hit(self, key, window_s, limit):
        now = time.time()
        q = self._hits.setdefault(key, (window_s, deque()))[1]
        while q and q[0] <= now - window_s:
            q.popleft()
        if len(q) >= limit:
            return Hit(False, len(q), max(0.0, q[0] + window_s - now))
        q.append(now)
        if len(self._hits) > 4096:  # forget keys whose windows have emptied
            for k in [k for k, (w, v) in self._hits.items() if not v or v[-1] <= now - w]:
                del self._hits[k]
        return Hit(True, len(q))

    async def transfer(self, conv, to_agent, reason):
        step = rules.transfer(self.view, conv.id, to_agent=to_agent, now=time.time())
        await self._commit(step)
        return step.result

    async def set_status(self, user, status, name, capacity=None, paused=False):
        await self._commit(rules.set_status(self.view, user, status=status, name=name,
                                      capacity=capacity, paused=paused,
                                      default_capacity=self.default_capacity,
                                      capacities=self.capacities, now=time.time()))
        return self.router.agents[user]

    async def set_fields(self, conv, **fields):
        await self._commit(rules.set_fields(self.view, conv.id, fields))

    async def mark_read(self, conv, user, mark):
        step = rules.mark_read(self.view, conv, user, mark)
        await self._commit(step)
        return step.result

    async def put(self, namespace, key, value, *, if_absent=False, expect=None, ttl_s=None):
        step = rules.put(self.view, namespace, key, value, if_absent=if_absent, expect=expect,
                         expires_at=None if ttl_s is None else time.time() + ttl_s)
        await self._commit(step)
        return step.result.written, step.result.value

    async def expire_records(self, now=None):
        now = time.time() if now is None else now
        if self.durability is not None and self.durability.refusing() is not None:
            return 0  # next time: an expiry is not lost by waiting
        gone: list[SupportChange] = []
        while self._due and self._due[0][0] <= now:
            at, ns, key = heapq.heappop(self._due)
            if self._expiry.get((ns, key)) == at:  # not rewritten since (else a stale entry)
                del self._expiry[(ns, key)]
                gone.append(RecordDeleted(ns, key))
        await self._apply(gone)
        return len(gone)
