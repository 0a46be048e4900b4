"""Typed change records: what a support or room step changed, as plain data.

A rule (``rules.py``, ``orders.py``) decides a step and returns these records; the replica
(``backend.Replica``) and the room applier (``orders.apply_room_change``) apply them by
dispatch on their class, and the Redis backend turns them into storage writes and carries
them to every node in the change log ``ld:{ld}:ops``.

Why one class per kind, with absolute values and their timestamps: every consumer (each
node's replica, a node that starts and re-reads the log, a durable store that copies the
log) must reach the same state by applying the records in log order, applying one twice
must do no harm, and none may need to know the rule that produced it.

On the wire (``to_wire``/``from_wire``) each record is a JSON array whose first element names
the kind, e.g. ``["msg", {...}, origin]``. These are the arrays the log has always carried,
so a log written before the records were typed reads back unchanged. ``from_wire`` refuses
an unknown kind or a malformed array with :class:`ChangeFormatError` (never a partial
record).

Kinds (tag: class):

* ``conv``: :class:`ConversationOpened`, a viewer's conversation came to be (state ``bot``).
* ``set``: :class:`FieldsSet`, conversation fields set to absolute values (``None``: unset).
* ``msg``: :class:`MessageAppended`, message number ``n`` of a conversation.
* ``q_add`` / ``q_del``: :class:`Queued` / :class:`Dequeued`, the queue of escalations.
* ``attach`` / ``release``: :class:`Attached` / :class:`Released`, an agent's load.
* ``agent``: :class:`AgentStatus`, an agent's whole routing record.
* ``rec`` / ``rec_del``: :class:`RecordPut` / :class:`RecordDeleted`, replicated workspace
  records (browsing, approvals, CSAT, audit, …).
* ``erase``: :class:`ViewerErased`, everything of a viewer leaves the live state (erasure:
  docs/storage.md#erasure).
* room kinds (not in the support log; the Redis room store keeps counters instead):
  ``stock``: :class:`StockSet`, ``gift``: :class:`GiftClaimed`, ``order``:
  :class:`OrderPlaced`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .conversation import Author, StoredMessage


class ChangeFormatError(ValueError):
    """A wire array that is not a change record (unknown kind, missing or mistyped parts)."""


def _num(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ChangeFormatError(f"{what}: expected a number, got {type(v).__name__}")
    try:
        return float(v)
    except ValueError:
        raise ChangeFormatError(f"{what}: expected a number, got {v!r}") from None


def _int(v: Any, what: str) -> int:
    f = _num(v, what)
    if f != int(f):
        raise ChangeFormatError(f"{what}: expected a whole number, got {v!r}")
    return int(f)


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise ChangeFormatError(f"{what}: expected a string, got {type(v).__name__}")
    return v


def _opt_str(v: Any, what: str) -> str | None:
    """``None`` and ``""`` both mean "none" on the wire (the Lua-era log wrote ``""``)."""
    if v is None or v == "":
        return None
    return _str(v, what)


def _dict(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ChangeFormatError(f"{what}: expected an object, got {type(v).__name__}")
    return v


def _parts(wire: Any, tag: str, least: int) -> list[Any]:
    if not isinstance(wire, list | tuple) or len(wire) < least or wire[0] != tag:
        raise ChangeFormatError(f"not a {tag!r} change: {str(wire)[:120]}")
    return list(wire)


@dataclass(frozen=True)
class ConversationOpened:
    TAG: ClassVar[str] = "conv"
    cid: str
    room: str
    viewer: str
    viewer_name: str
    created_at: float

    def to_wire(self) -> list[Any]:
        return [self.TAG, {"cid": self.cid, "room": self.room, "viewer": self.viewer,
                           "viewer_name": self.viewer_name, "created_at": self.created_at}]

    @classmethod
    def from_wire(cls, wire: Any) -> ConversationOpened:
        d = _dict(_parts(wire, cls.TAG, 2)[1], "conv")
        return cls(_str(d.get("cid"), "conv.cid"), _str(d.get("room"), "conv.room"),
                   _str(d.get("viewer"), "conv.viewer"),
                   _str(d.get("viewer_name", d.get("viewer")), "conv.viewer_name"),
                   _num(d.get("created_at", 0), "conv.created_at"))


#: the conversation fields a :class:`FieldsSet` may carry (others are dropped on decode)
CONVERSATION_FIELDS = ("state", "agent", "agent_name", "escalated_at", "assigned_at",
                       "resolved_at", "first_agent_reply_at", "escalation_reason", "mood",
                       "pinned", "viewer_name", "viewer_nickname", "resolved_by")
#: ``read:<user>``: a member's latest read mark, ``{n, message_id, role, ts}`` (``n``: the
#: message's position in the log). One field per member, so that two members marking at the
#: same time on two nodes never overwrite each other; applied last-writer-wins on ``n``: a
#: mark with a lower or equal ``n`` never replaces the one held (docs/protocol.md "Typing and
#: read marks").
READ_FIELD = "read:"


def is_conversation_field(name: str) -> bool:
    """Whether ``name`` is a field a :class:`FieldsSet` may carry (one source for the
    replica, the restore from the store and the Redis bootstrap)."""
    return name in CONVERSATION_FIELDS or (name.startswith(READ_FIELD) and len(name) > 5)


def read_mark_n(v: Any) -> int:
    """The log position a stored read mark is at (-1 for anything that is not a mark)."""
    n = v.get("n") if isinstance(v, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) else -1


@dataclass(frozen=True)
class FieldsSet:
    """Conversation fields set to absolute values; ``None`` (``""`` on the wire from older
    writers) unsets a field. A ``state`` of ``resolved`` closes the conversation."""
    TAG: ClassVar[str] = "set"
    cid: str
    fields: dict[str, Any]

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.cid, dict(self.fields)]

    @classmethod
    def from_wire(cls, wire: Any) -> FieldsSet:
        p = _parts(wire, cls.TAG, 3)
        return cls(_str(p[1], "set.cid"), dict(_dict(p[2], "set.fields")))


@dataclass(frozen=True)
class MessageAppended:
    """Message ``n`` (1-based, the conversation's log order) of ``cid``. ``origin`` names the
    socket the message came from (its sender gets it as the reply to its request), if any."""
    TAG: ClassVar[str] = "msg"
    cid: str
    n: int
    author: Author
    text: str
    ts: float
    client_msg_id: str | None = None
    kind: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    origin: str | None = None

    @property
    def message_id(self) -> str:
        return f"{self.cid}:{self.n}"

    def record(self) -> dict[str, Any]:
        """The message as the log stores it (``ld:{ld}:log:<cid>`` and the wire)."""
        a = self.author
        return {"cid": self.cid, "n": self.n, "message_id": self.message_id,
                "author": {"role": a.role, "user": a.user, "name": a.name or ""},
                "text": self.text, "cmid": self.client_msg_id or "", "ts": self.ts,
                "kind": self.kind or "", "meta": dict(self.meta)}

    def message(self) -> StoredMessage:
        return StoredMessage(message_id=self.message_id, conversation=self.cid,
                             author=Author(self.author.role, self.author.user,
                                           self.author.name or None),
                             text=self.text, client_msg_id=self.client_msg_id, ts=self.ts,
                             kind=self.kind, meta=dict(self.meta), n=self.n)

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.record(), self.origin]

    @classmethod
    def from_record(cls, rec: Any, origin: str | None = None) -> MessageAppended:
        d = _dict(rec, "msg")
        a = _dict(d.get("author"), "msg.author")
        meta = d.get("meta") or {}
        return cls(cid=_str(d.get("cid"), "msg.cid"), n=_int(d.get("n"), "msg.n"),
                   author=Author(_str(a.get("role"), "msg.author.role"),
                                 _str(a.get("user"), "msg.author.user"),
                                 _opt_str(a.get("name"), "msg.author.name")),
                   text=_str(d.get("text"), "msg.text"), ts=_num(d.get("ts"), "msg.ts"),
                   client_msg_id=_opt_str(d.get("cmid"), "msg.cmid"),
                   kind=_opt_str(d.get("kind"), "msg.kind"),
                   meta=dict(_dict(meta, "msg.meta")), origin=origin)

    @classmethod
    def from_wire(cls, wire: Any) -> MessageAppended:
        p = _parts(wire, cls.TAG, 2)
        return cls.from_record(p[1], _opt_str(p[2] if len(p) > 2 else None, "msg.origin"))


@dataclass(frozen=True)
class Queued:
    """``cid`` joins the queue at its tail, or at its head (``front``: handed back by an
    agent); ``since`` is when its wait began."""
    TAG: ClassVar[str] = "q_add"
    cid: str
    since: float
    front: bool = False

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.cid, self.since, self.front]

    @classmethod
    def from_wire(cls, wire: Any) -> Queued:
        p = _parts(wire, cls.TAG, 4)
        return cls(_str(p[1], "q_add.cid"), _num(p[2], "q_add.since"), bool(p[3]))


@dataclass(frozen=True)
class Dequeued:
    TAG: ClassVar[str] = "q_del"
    cid: str

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.cid]

    @classmethod
    def from_wire(cls, wire: Any) -> Dequeued:
        return cls(_str(_parts(wire, cls.TAG, 2)[1], "q_del.cid"))


@dataclass(frozen=True)
class Attached:
    """``agent`` now holds ``cid`` (its load grows by one; ``at`` is its last assignment)."""
    TAG: ClassVar[str] = "attach"
    cid: str
    agent: str
    at: float

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.cid, self.agent, self.at]

    @classmethod
    def from_wire(cls, wire: Any) -> Attached:
        p = _parts(wire, cls.TAG, 4)
        return cls(_str(p[1], "attach.cid"), _str(p[2], "attach.agent"),
                   _num(p[3], "attach.at"))


@dataclass(frozen=True)
class Released:
    """``agent`` no longer holds ``cid`` (``None``: the conversation had no agent)."""
    TAG: ClassVar[str] = "release"
    cid: str
    agent: str | None

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.cid, self.agent or ""]

    @classmethod
    def from_wire(cls, wire: Any) -> Released:
        p = _parts(wire, cls.TAG, 3)
        return cls(_str(p[1], "release.cid"), _opt_str(p[2], "release.agent"))


@dataclass(frozen=True)
class AgentStatus:
    """An agent's whole routing record (not its load: that is the attached conversations)."""
    TAG: ClassVar[str] = "agent"
    user: str
    name: str
    status: str
    since: float
    capacity: int
    paused: bool = False
    last_assigned: float = 0.0

    def to_wire(self) -> list[Any]:
        return [self.TAG, {"user": self.user, "name": self.name, "status": self.status,
                           "since": self.since, "capacity": self.capacity,
                           "paused": self.paused, "last_assigned": self.last_assigned}]

    @classmethod
    def from_wire(cls, wire: Any) -> AgentStatus:
        d = _dict(_parts(wire, cls.TAG, 2)[1], "agent")
        user = _str(d.get("user"), "agent.user")
        return cls(user=user, name=_opt_str(d.get("name"), "agent.name") or user,
                   status=_str(d.get("status"), "agent.status"),
                   since=_num(d.get("since", 0), "agent.since"),
                   capacity=_int(d.get("capacity"), "agent.capacity"),
                   paused=bool(d.get("paused")),
                   last_assigned=_num(d.get("last_assigned") or 0, "agent.last_assigned"))


@dataclass(frozen=True)
class RecordPut:
    """Record ``key`` of ``namespace`` is now ``value`` (any JSON value). ``expires_at``:
    when it is forgotten (``None``: kept). On the wire the value travels as its JSON text."""
    TAG: ClassVar[str] = "rec"
    namespace: str
    key: str
    value: Any
    expires_at: float | None = None

    def value_json(self) -> str:
        return json.dumps(self.value, ensure_ascii=False)

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.namespace, self.key, self.value_json(), self.expires_at]

    @classmethod
    def from_wire(cls, wire: Any) -> RecordPut:
        p = _parts(wire, cls.TAG, 4)
        value = p[3]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ChangeFormatError(f"rec.value is not JSON: {value[:60]!r}") from None
        at = p[4] if len(p) > 4 else None
        return cls(_str(p[1], "rec.namespace"), _str(p[2], "rec.key"), value,
                   None if at is None else _num(at, "rec.expires_at"))


@dataclass(frozen=True)
class RecordDeleted:
    TAG: ClassVar[str] = "rec_del"
    namespace: str
    key: str

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.namespace, self.key]

    @classmethod
    def from_wire(cls, wire: Any) -> RecordDeleted:
        p = _parts(wire, cls.TAG, 3)
        return cls(_str(p[1], "rec_del.namespace"), _str(p[2], "rec_del.key"))


@dataclass(frozen=True)
class ViewerErased:
    """Viewer ``viewer`` was erased: every node drops its conversations (open or resolved,
    with their messages, queue places and agents' load) and every record about the viewer
    or those conversations (:func:`record_about`). The durable store's own erasure (its
    rows, the tombstone) is a separate transaction run with it."""
    TAG: ClassVar[str] = "erase"
    viewer: str

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.viewer]

    @classmethod
    def from_wire(cls, wire: Any) -> ViewerErased:
        return cls(_str(_parts(wire, cls.TAG, 2)[1], "erase.viewer"))


# namespaces whose key is, or starts with, the viewer it is about ("<viewer>|<day>")
_VIEWER_KEYED = {"browse": False, "authority_day": True}
# namespaces whose key is the conversation it belongs to
_CONVERSATION_KEYED = frozenset({"csat", "csat_req", "outcome"})
# "<agent>|<conversation>": an agent's authority used on one conversation
_AGENT_CONVERSATION_KEYED = frozenset({"authority"})


def record_about(namespace: str, key: str, value: Any) -> tuple[str | None, str | None]:
    """``(viewer, conversation)`` a workspace record is about, found from its namespace,
    key and fields (``viewer`` / ``user``; ``conversation`` / ``cid``). One rule for every
    consumer: the replica's erasure and the durable store's rows (for its erasure and a
    transcript's context)."""
    viewer = conversation = None
    if namespace in _VIEWER_KEYED:
        viewer = key.split("|", 1)[0] if _VIEWER_KEYED[namespace] else key
    if namespace in _CONVERSATION_KEYED:
        conversation = key
    if namespace in _AGENT_CONVERSATION_KEYED and "|" in key:
        conversation = key.split("|", 1)[1]
    if isinstance(value, dict):
        v = value.get("viewer")
        if viewer is None and isinstance(v, str):
            viewer = v
        if viewer is None and namespace == "conversion" and isinstance(value.get("user"), str):
            viewer = value["user"]
        c = value.get("conversation") or value.get("cid")
        if conversation is None and isinstance(c, str):
            conversation = c
    return viewer, conversation


# --- room -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StockSet:
    """``sku`` in ``room`` has ``stock`` left."""
    TAG: ClassVar[str] = "stock"
    room: str
    sku: str
    stock: int

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.room, self.sku, self.stock]

    @classmethod
    def from_wire(cls, wire: Any) -> StockSet:
        p = _parts(wire, cls.TAG, 4)
        return cls(_str(p[1], "stock.room"), _str(p[2], "stock.sku"), _int(p[3], "stock.stock"))


@dataclass(frozen=True)
class GiftClaimed:
    """Promotion ``promotion`` (a first-N gift) in ``room`` has ``claimed`` gifts given."""
    TAG: ClassVar[str] = "gift"
    room: str
    promotion: str
    claimed: int

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.room, self.promotion, self.claimed]

    @classmethod
    def from_wire(cls, wire: Any) -> GiftClaimed:
        p = _parts(wire, cls.TAG, 4)
        return cls(_str(p[1], "gift.room"), _str(p[2], "gift.promotion"),
                   _int(p[3], "gift.claimed"))


@dataclass(frozen=True)
class GiftQuotaSet:
    """A host set promotion ``promotion`` (a first-N gift) in ``room`` to give at most
    ``limit`` gifts, ``active`` or stopped (a host edit; orders never change it)."""
    TAG: ClassVar[str] = "gift_quota"
    room: str
    promotion: str
    limit: int
    active: bool

    def to_wire(self) -> list[Any]:
        return [self.TAG, self.room, self.promotion, self.limit, self.active]

    @classmethod
    def from_wire(cls, wire: Any) -> GiftQuotaSet:
        p = _parts(wire, cls.TAG, 5)
        if not isinstance(p[4], bool):
            raise ChangeFormatError("gift_quota.active must be true or false")
        return cls(_str(p[1], "gift_quota.room"), _str(p[2], "gift_quota.promotion"),
                   _int(p[3], "gift_quota.limit"), p[4])


@dataclass(frozen=True)
class OrderPlaced:
    """Order ``order_id`` was accepted: who, what, how many, and what it got (``rank``:
    its place among the gift's claimants, ``None`` without a gift)."""
    TAG: ClassVar[str] = "order"
    room: str
    order_id: str
    user: str
    sku: str
    qty: int
    stock_left: int
    gift_promotion: str | None
    rank: int | None
    ts: float

    def body(self) -> dict[str, Any]:
        """The answer to the order's POST (and to every repeat of it)."""
        return {"gift": self.gift_promotion is not None, "rank": self.rank,
                "stock_left": self.stock_left}

    def to_wire(self) -> list[Any]:
        return [self.TAG, {"room": self.room, "order_id": self.order_id, "user": self.user,
                           "sku": self.sku, "qty": self.qty, "stock_left": self.stock_left,
                           "gift_promotion": self.gift_promotion, "rank": self.rank,
                           "ts": self.ts}]

    @classmethod
    def from_wire(cls, wire: Any) -> OrderPlaced:
        d = _dict(_parts(wire, cls.TAG, 2)[1], "order")
        rank = d.get("rank")
        return cls(room=_str(d.get("room"), "order.room"),
                   order_id=_str(d.get("order_id"), "order.order_id"),
                   user=_str(d.get("user"), "order.user"), sku=_str(d.get("sku"), "order.sku"),
                   qty=_int(d.get("qty"), "order.qty"),
                   stock_left=_int(d.get("stock_left"), "order.stock_left"),
                   gift_promotion=_opt_str(d.get("gift_promotion"), "order.gift_promotion"),
                   rank=None if rank is None else _int(rank, "order.rank"),
                   ts=_num(d.get("ts"), "order.ts"))


SupportChange = (ConversationOpened | FieldsSet | MessageAppended | Queued | Dequeued
                 | Attached | Released | AgentStatus | RecordPut | RecordDeleted | ViewerErased)
RoomChange = StockSet | GiftClaimed | GiftQuotaSet | OrderPlaced
Change = SupportChange | RoomChange

_KINDS: dict[str, Any] = {c.TAG: c for c in (
    ConversationOpened, FieldsSet, MessageAppended, Queued, Dequeued, Attached, Released,
    AgentStatus, RecordPut, RecordDeleted, ViewerErased, StockSet, GiftClaimed, GiftQuotaSet,
    OrderPlaced)}


def from_wire(wire: Any) -> Change:
    """The record a wire array holds, whatever its kind."""
    if not isinstance(wire, list | tuple) or not wire or not isinstance(wire[0], str):
        raise ChangeFormatError(f"not a change record: {str(wire)[:120]}")
    cls = _KINDS.get(wire[0])
    if cls is None:
        raise ChangeFormatError(f"unknown change kind {wire[0]!r}")
    try:
        rec: Change = cls.from_wire(wire)
    except ChangeFormatError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise ChangeFormatError(f"malformed {wire[0]!r} change: {e}") from None
    return rec


def list_from_wire(wire: Any) -> list[SupportChange]:
    """A support change list (an ``ops`` entry); a room kind in it is refused."""
    if not isinstance(wire, list):
        raise ChangeFormatError("a change list must be a JSON array")
    out: list[SupportChange] = []
    for w in wire:
        rec = from_wire(w)
        if isinstance(rec, StockSet | GiftClaimed | GiftQuotaSet | OrderPlaced):
            raise ChangeFormatError(f"a room change ({rec.TAG!r}) in a support change list")
        out.append(rec)
    return out


def list_to_json(changes: list[Change] | tuple[Change, ...]) -> str:
    return json.dumps([c.to_wire() for c in changes], ensure_ascii=False)
