"""Support state changes: one atomic step each, applied to every node's replica in one order.

``SupportService`` never mutates conversations or routing itself; it asks a backend for one
*step* (open, append, escalate, assign-next, resolve, transfer, requeue, agent status, set
fields). A step validates and produces a list of primitive *changes* with absolute values;
the :class:`Replica` applies changes to the node's in-memory :class:`ConversationStore` and
:class:`Router`, which is what every read uses.

* :class:`MemoryBackend` (one process): validate in Python, apply at once.
* :class:`~gateway.support.redis_backend.RedisBackend` (many nodes): validate-and-change in
  one Lua script per step (the race-free part), which also appends the changes to the
  Redis Stream ``ld:{ld}:ops``; every node tails that stream and applies it in stream order.
  A step returns once the local replica has applied it (read-your-writes).

Because both apply the same change lists through the same code, one node and many nodes
behave alike; and chat messages are delivered by the applier, so every recipient on every
node sees a conversation in its log order.
"""

from __future__ import annotations

import heapq
import json
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signaling import ErrorCode, ProtocolError
from signaling.events import Events

from .conversation import Author, Conversation, ConversationStore, StoredMessage
from .events import ConversationLost, ConversationTruncated, MessageApplied
from .routing import Agent, Router

log = logging.getLogger(__name__)

Change = list  # ["conv", {...}] | ["set", cid, {...}] | ["msg", {...}, origin] | ...
MessageSink = Callable[[Conversation, StoredMessage, str | None], None]


def message_from_record(rec: dict[str, Any]) -> StoredMessage:
    a = rec["author"]
    return StoredMessage(message_id=rec["message_id"], conversation=rec["cid"],
                         author=Author(role=a["role"], user=a["user"], name=a.get("name") or None),
                         text=rec["text"], client_msg_id=rec.get("cmid") or None,
                         ts=float(rec["ts"]), kind=rec.get("kind") or None,
                         meta=rec.get("meta") or {}, n=int(rec["n"]))


def message_record(conv: Conversation, n: int, author: Author, text: str, cmid: str | None,
                   kind: str | None, meta: dict | None, ts: float) -> dict[str, Any]:
    return {"cid": conv.id, "n": n, "message_id": f"{conv.id}:{n}",
            "author": {"role": author.role, "user": author.user, "name": author.name or ""},
            "text": text, "cmid": cmid or "", "ts": ts, "kind": kind or "", "meta": meta or {}}


@dataclass(frozen=True)
class Hit:
    """What :meth:`SupportBackend.hit` decided: ``allowed``; ``count`` of hits in the window
    (this one included when allowed); ``retry_after_s`` until one more would be allowed."""
    allowed: bool
    count: int
    retry_after_s: float = 0.0


def conversation_full(conv_id: str, what: str) -> ProtocolError:
    return ProtocolError(ErrorCode.TOO_LARGE,
                         f"conversation {conv_id!r} has reached its limit of {what}; "
                         f"close it and open a new one")


def too_many_open(viewer_open: int) -> ProtocolError:
    return ProtocolError(ErrorCode.RATE_LIMITED,
                         f"you have {viewer_open} open conversations, the most allowed; "
                         f"close one first")


class Replica:
    """Applies change lists to this node's copy of conversations and routing.

    With ``events``, every chat message it applies is published as
    :class:`~.events.MessageApplied` (in log order); ``on_message`` is that publisher, or
    ``None`` (no delivery: tests of the replica alone, the Redis start-up load)."""

    FIELDS = ("state", "agent", "agent_name", "escalated_at", "assigned_at", "resolved_at",
              "first_agent_reply_at", "escalation_reason", "mood", "pinned", "viewer_name",
              "viewer_nickname", "resolved_by")

    def __init__(self, store: ConversationStore, router: Router,
                 events: Events | None = None) -> None:
        self.store = store
        self.router = router
        self.on_message: MessageSink | None = None
        if events is not None:
            self.on_message = lambda conv, m, origin: events.publish(
                MessageApplied(conv, m, origin))
        self.on_change: Callable[[list], None] | None = None
        # replicated records of the workspace (browsing, approvals, CSAT, audit, …)
        self.records: dict[str, dict[str, Any]] = {}
        self._record_listeners: dict[str, list[Callable[[str, Any], None]]] = {}
        self._forget_listeners: dict[str, list[Callable[[str], None]]] = {}

    def listen(self, namespace: str, cb: Callable[[str, Any], None],
               forget: Callable[[str], None] | None = None) -> None:
        """``cb(key, value)`` whenever a record of ``namespace`` is written, on every node;
        ``forget(key)`` when one expires (written with a TTL: see ``SupportBackend.put``)."""
        self._record_listeners.setdefault(namespace, []).append(cb)
        if forget is not None:
            self._forget_listeners.setdefault(namespace, []).append(forget)

    def apply(self, changes: list[Change]) -> None:
        for ch in changes:
            kind = ch[0]
            if kind == "conv":
                d = ch[1]
                self.store.create(d["cid"], d["room"], d["viewer"], d["viewer_name"],
                                  float(d["created_at"]))
            elif kind == "set":
                conv = self.store.get(ch[1])
                if conv is None:
                    continue
                for k, v in ch[2].items():
                    if k in self.FIELDS:
                        setattr(conv, k, None if v in ("", None) and k not in ("mood",) else v)
                if conv.state == "resolved":
                    self.store.closed(conv)
            elif kind == "msg":
                rec, origin = ch[1], (ch[2] if len(ch) > 2 else None)
                conv = self.store.get(rec["cid"])
                if conv is None or int(rec["n"]) <= len(conv.messages):
                    continue  # unknown, or already applied (bootstrap overlap)
                m = message_from_record(rec)
                self.store.add(conv, m)
                if self.on_message is not None:
                    self.on_message(conv, m, origin)
            elif kind == "q_add":
                conv = self.store.get(ch[1])
                if conv is not None:
                    self.router.enqueue(conv.id, conv.room, conv.viewer, front=bool(ch[3]),
                                        since=float(ch[2]))
            elif kind == "q_del":
                self.router.remove(ch[1])
            elif kind == "attach":
                a = self.router.agent(ch[2])
                self.router.attach(ch[1], a, float(ch[3]))
            elif kind == "release":
                if ch[2]:
                    self.router.release(ch[1], ch[2])
            elif kind == "rec":
                ns, key, value = ch[1], ch[2], ch[3]
                if isinstance(value, str):
                    value = json.loads(value)
                recs = self.records.setdefault(ns, {})
                if key in recs and recs[key] == value:
                    continue  # applied again (start-up overlap, a resync): listeners saw it
                recs[key] = value
                for cb in self._record_listeners.get(ns, ()):
                    try:
                        cb(key, value)
                    except Exception:
                        log.exception("record listener %s failed", ns)
            elif kind == "rec_del":
                ns, key = ch[1], ch[2]
                recs = self.records.get(ns)
                if recs is None or key not in recs:
                    continue
                del recs[key]
                for forget in self._forget_listeners.get(ns, ()):
                    try:
                        forget(key)
                    except Exception:
                        log.exception("record forget listener %s failed", ns)
            elif kind == "agent":
                d = ch[1]
                a = self.router.agent(d["user"], d.get("name") or None)
                a.status = d["status"]
                a.since = float(d["since"])
                a.capacity = int(d["capacity"])
                a.paused = bool(d.get("paused"))
                a.last_assigned = float(d.get("last_assigned") or 0)
        if self.on_change is not None:
            self.on_change(changes)


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

    def get(self, namespace: str, key: str) -> Any:
        return self.replica.records.get(namespace, {}).get(key)

    def listen(self, namespace: str, cb, forget=None) -> None:
        self.replica.listen(namespace, cb, forget)


class MemoryBackend(SupportBackend):
    """One process: each step checks and applies synchronously (no await in between)."""

    def __init__(self, store: ConversationStore, router: Router,
                 default_capacity: int = 5, capacities: dict[str, int] | None = None,
                 events: Events | None = None) -> None:
        super().__init__(store, router, events)
        self.default_capacity = default_capacity
        self.capacities = capacities or {}
        # records written with a TTL: (namespace, key) → when; a heap of the same, whose
        # entries for since-rewritten records are skipped when they come due
        self._expiry: dict[tuple[str, str], float] = {}
        self._due: list[tuple[float, str, str]] = []
        self._hits: dict[str, tuple[float, deque[float]]] = {}  # key → (window, times)

    def _new_id(self) -> str:
        import secrets
        return "c_" + secrets.token_urlsafe(9)

    async def open(self, room, viewer, name, greeting, origin=None, max_open=0):
        conv = self.store.open_for(room, viewer)
        if conv is not None:
            return conv, False
        n_open = self.store.open_count(viewer)
        if max_open > 0 and n_open >= max_open:
            raise too_many_open(n_open)
        now = time.time()
        cid = self._new_id()
        changes: list[Change] = [["conv", {"cid": cid, "room": room, "viewer": viewer,
                                           "viewer_name": name, "created_at": now}]]
        self.replica.apply(changes)
        conv = self.store.get(cid)
        if greeting is not None:
            author, text = greeting
            self.replica.apply([["msg", message_record(conv, 1, author, text, None, "system",
                                                       None, now), origin]])
        return conv, True

    async def append(self, conv, author, text, cmid, kind=None, meta=None, origin=None,
                     cap=None):
        if cmid is not None:
            prev = conv.by_client_id.get(f"{author.user}:{cmid}")
            if prev is not None:
                return prev, True
        if conv.state == "resolved" and not kind:
            raise ProtocolError(ErrorCode.BAD_STATE, "conversation is resolved; open a new one")
        if cap is not None:
            max_n, max_bytes = cap
            if max_n > 0 and len(conv.messages) >= max_n:
                raise conversation_full(conv.id, f"{max_n} messages")
            if max_bytes > 0 and conv.text_bytes + len(text.encode("utf-8")) > max_bytes:
                raise conversation_full(conv.id, f"{max_bytes} bytes of text")
        rec = message_record(conv, len(conv.messages) + 1, author, text, cmid, kind, meta,
                             time.time())
        self.replica.apply([["msg", rec, origin]])
        return conv.messages[-1], False

    async def escalate(self, conv, reason):
        if conv.state != "bot":
            return False
        now = time.time()
        self.replica.apply([["set", conv.id, {"state": "queued", "escalated_at": now,
                                              "escalation_reason": reason}],
                            ["q_add", conv.id, now, False]])
        return True

    async def assign_next(self):
        while self.router.queue:
            head = self.router.queue[0]
            conv = self.store.get(head.conversation)
            if conv is None or conv.state != "queued":
                self.replica.apply([["q_del", head.conversation]])
                continue
            a = self.router.pick()
            if a is None:
                return None
            now = time.time()
            self.replica.apply([["q_del", conv.id], ["attach", conv.id, a.user, now],
                                ["set", conv.id, {"state": "assigned", "agent": a.user,
                                                  "agent_name": a.name, "assigned_at": now}]])
            return conv, a
        return None

    async def resolve(self, conv, by=""):
        if conv.state == "resolved":
            return False
        self.replica.apply([["q_del", conv.id], ["release", conv.id, conv.agent],
                            ["set", conv.id, {"state": "resolved", "resolved_at": time.time(),
                                              "resolved_by": by}]])
        return True

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
        if conv.state != "assigned":
            raise ProtocolError(ErrorCode.BAD_STATE,
                                f"only an assigned conversation can be transferred (it is {conv.state})")
        old = conv.agent
        now = time.time()
        if to_agent:
            t = self.router.agents.get(to_agent)
            if t is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown agent {to_agent!r}")
            if t.user == old:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "conversation is already with that agent")
            if t.status != "available" or t.load >= t.capacity:
                raise ProtocolError(ErrorCode.BAD_STATE,
                                    f"agent {to_agent!r} is {t.status} with {t.load}/{t.capacity} conversations")
            self.replica.apply([["release", conv.id, old], ["attach", conv.id, t.user, now],
                                ["set", conv.id, {"state": "assigned", "agent": t.user,
                                                  "agent_name": t.name, "assigned_at": now}]])
        else:
            self.replica.apply([["release", conv.id, old],
                                ["set", conv.id, {"state": "queued", "agent": None,
                                                  "agent_name": None}],
                                ["q_add", conv.id, now, True]])
        return old

    async def set_status(self, user, status, name, capacity=None, paused=False):
        a = self.router.agents.get(user)
        now = time.time()
        cap = capacity or self.capacities.get(user) or (a.capacity if a else self.default_capacity)
        rec = {"user": user, "name": name or (a.name if a else user), "status": status,
               "since": now if (a is None or a.status != status) else a.since,
               "capacity": cap, "paused": paused,
               "last_assigned": a.last_assigned if a else 0}
        self.replica.apply([["agent", rec]])
        return self.router.agents[user]

    async def set_fields(self, conv, **fields):
        self.replica.apply([["set", conv.id, fields]])

    async def put(self, namespace, key, value, *, if_absent=False, expect=None, ttl_s=None):
        cur = self.get(namespace, key)
        if if_absent and cur is not None:
            return False, cur
        if expect is not None and (cur is None or any(cur.get(k) != v for k, v in expect.items())):
            return False, cur
        if ttl_s is None:
            self._expiry.pop((namespace, key), None)
        else:
            at = time.time() + ttl_s
            self._expiry[(namespace, key)] = at
            heapq.heappush(self._due, (at, namespace, key))
            if len(self._due) > 2 * len(self._expiry) + 1024:  # mostly rewritten: compact
                self._due = [(t, ns, k) for (ns, k), t in self._expiry.items()]
                heapq.heapify(self._due)
        self.replica.apply([["rec", namespace, key, value]])
        return True, value

    async def expire_records(self, now=None):
        now = time.time() if now is None else now
        gone: list[Change] = []
        while self._due and self._due[0][0] <= now:
            at, ns, key = heapq.heappop(self._due)
            if self._expiry.get((ns, key)) == at:  # not rewritten since (else a stale entry)
                del self._expiry[(ns, key)]
                gone.append(["rec_del", ns, key])
        self.replica.apply(gone)
        return len(gone)
