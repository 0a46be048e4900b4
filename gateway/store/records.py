"""What the store is told and what it answers: typed, frozen records.

Writes (:data:`Write`) are the support plane's typed change records
(``gateway/support/changes.py``: a conversation opened, fields set, a message appended, …)
plus an accepted order's rows; the store only records them, so no business rule and no
record class is written here a second time. Each write is idempotent: applying a batch again (a
retry after a lost reply, a start-up overlap) leaves the same rows.

Reads (:class:`SearchHit`, :class:`Transcript`, :class:`LiveState`, …) are plain data the
HTTP layer turns into JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..support.changes import AgentStatus, SupportChange

# --- writes ----------------------------------------------------------------------------------

# The conversation columns a ``FieldsSet`` may change (every other field of one is kept in
# ``extra`` JSON, so a field added to conversations later is not lost).
CONVERSATION_COLUMNS = ("state", "agent", "agent_name", "viewer_name", "viewer_nickname",
                        "escalated_at", "assigned_at", "first_agent_reply_at", "resolved_at",
                        "resolved_by", "escalation_reason", "mood")


@dataclass(frozen=True)
class OrderRecorded:
    room: str
    order_id: str
    viewer: str
    sku: str
    qty: int
    body: dict[str, Any]  # what the shop was answered (a replay gets the same)
    at: float


@dataclass(frozen=True)
class RoomCounters:
    """A room's counters after a change: stock per SKU and claimed first-N gifts; after a
    host's edit also each first-N gift's quota (``quotas``: promotion, limit, active)."""
    room: str
    stock: tuple[tuple[str, int], ...]
    gifts: tuple[tuple[str, int], ...]
    at: float
    quotas: tuple[tuple[str, int, bool], ...] = ()


#: what the store records: the support plane's own change records (one class per kind,
#: defined once in ``gateway/support/changes.py``), plus the two store-only rows an accepted
#: order makes (the rooms' order changes are not published as records)
Write = SupportChange | OrderRecorded | RoomCounters


# --- reads -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConversationRow:
    conversation: str
    room: str
    viewer: str
    viewer_name: str
    state: str
    agent: str | None
    agent_name: str | None
    opened_at: float
    escalated_at: float | None
    assigned_at: float | None
    first_agent_reply_at: float | None
    resolved_at: float | None
    resolved_by: str | None
    escalation_reason: str | None
    mood: str | None
    viewer_nickname: str | None
    extra: dict[str, Any]


@dataclass(frozen=True)
class MessageRow:
    """A stored message as it reads back (``n``: 1-based position in its conversation)."""
    conversation: str
    n: int
    role: str
    user: str
    name: str
    text: str
    cmid: str
    kind: str
    meta: dict[str, Any]
    ts: float


@dataclass(frozen=True)
class RecordRow:
    namespace: str
    key: str
    value: Any
    updated_at: float
    expires_at: float | None = None


@dataclass(frozen=True)
class OrderRow:
    room: str
    order_id: str
    viewer: str
    sku: str
    qty: int
    body: dict[str, Any]
    at: float


@dataclass(frozen=True)
class SearchHit:
    conversation: str
    user: str
    room: str
    state: str
    opened_at: float
    resolved_at: float | None
    snippet: str
    agent: str | None = None


@dataclass(frozen=True)
class Transcript:
    conversation: ConversationRow
    messages: list[MessageRow]
    agents: list[str]  # everyone who was assigned it, in order
    records: list[RecordRow]  # CSAT, outcome, actions (audit, approvals, grants), …
    orders: list[OrderRow]  # the viewer's orders in this room


@dataclass(frozen=True)
class QueueEntry:
    conversation: str
    since: float


@dataclass(frozen=True)
class LiveState:
    """What a single node needs to carry on after a restart."""
    conversations: list[tuple[ConversationRow, list[MessageRow]]]
    queue: list[QueueEntry]  # head first
    assignments: dict[str, str]  # conversation → agent
    agents: list[AgentStatus]  # as last recorded (the restore sets them offline)
    stock: dict[str, dict[str, int]]  # room → sku → stock
    gifts: dict[str, dict[str, int]]  # room → promotion → claimed
    orders: list[OrderRow]  # newer than the order retention asked for
    records: list[RecordRow]  # live (not expired) workspace records
    # room → promotion → (limit, active): first-N gift quotas a host set (schema v7)
    quotas: dict[str, dict[str, tuple[int, bool]]] = field(default_factory=dict)


@dataclass(frozen=True)
class EraseReport:
    tombstone: str
    conversations: int
    messages: int
    records: int
    orders: int


@dataclass(frozen=True)
class SweepReport:
    conversations: int = 0
    messages: int = 0
    records: int = 0
    audit: int = 0


@dataclass(frozen=True)
class Retention:
    """How long the store keeps each kind of record, in seconds; 0 keeps it forever.

    ``messages``: resolved conversations with their messages, counted from resolution;
    ``records``: workspace records (CSAT, outcomes, browsing, …) from their last write;
    ``audit``: the audit trail, approvals, grants and erasure tombstones."""
    messages: float = 365 * 86400.0
    records: float = 365 * 86400.0
    audit: float = 5 * 365 * 86400.0


@dataclass(frozen=True)
class StoreInfo:
    backend: str  # sqlite | postgresql
    location: str  # the database file, or the URL without its password
    schema_version: int
    extra: dict[str, Any] = field(default_factory=dict)
