"""What the store is told and what it answers: typed, frozen records.

Writes (:data:`Write`) are facts the rules already decided (a conversation opened, a field
set, a message appended, an order recorded); the store only records them, so no business
rule is written here a second time. Each write is idempotent: applying a batch again (a
retry after a lost reply, a start-up overlap) leaves the same rows.

Reads (:class:`SearchHit`, :class:`Transcript`, :class:`LiveState`, …) are plain data the
HTTP layer turns into JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# --- writes ----------------------------------------------------------------------------------

# The conversation columns a ``ConversationSet`` may change (everything else of a ``set``
# change is kept in ``extra`` JSON, so a field added to conversations later is not lost).
CONVERSATION_COLUMNS = ("state", "agent", "agent_name", "viewer_name", "viewer_nickname",
                        "escalated_at", "assigned_at", "first_agent_reply_at", "resolved_at",
                        "resolved_by", "escalation_reason", "mood")


@dataclass(frozen=True)
class ConversationOpened:
    conversation: str
    room: str
    viewer: str
    viewer_name: str
    opened_at: float


@dataclass(frozen=True)
class ConversationSet:
    """Absolute values for some fields (``None`` clears one). ``at`` is when it was set."""
    conversation: str
    fields: tuple[tuple[str, Any], ...]
    at: float


@dataclass(frozen=True)
class MessageAdded:
    conversation: str
    n: int  # 1-based position in the conversation's log
    role: str
    user: str
    name: str
    text: str
    cmid: str
    kind: str
    meta: dict[str, Any]
    ts: float


@dataclass(frozen=True)
class Queued:
    conversation: str
    since: float
    front: bool  # to the queue's head (a transfer back), else its tail


@dataclass(frozen=True)
class Dequeued:
    conversation: str


@dataclass(frozen=True)
class Attached:
    conversation: str
    agent: str
    at: float


@dataclass(frozen=True)
class Released:
    conversation: str
    agent: str


@dataclass(frozen=True)
class AgentSettings:
    user: str
    name: str
    status: str
    capacity: int
    paused: bool
    since: float
    last_assigned: float


@dataclass(frozen=True)
class RecordPut:
    """A workspace record. ``viewer`` / ``conversation``: whom it is about (for erasure and
    the transcript's context), as the ingest mapping found them; ``audit``: kept under the
    audit retention rather than the records one."""
    namespace: str
    key: str
    value: Any
    at: float
    viewer: str | None = None
    conversation: str | None = None
    audit: bool = False


@dataclass(frozen=True)
class RecordExpired:
    """The live state forgot a record (its TTL ran out). History keeps it until the
    records retention."""
    namespace: str
    key: str


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
    """A room's counters after a change: stock per SKU and claimed first-N gifts."""
    room: str
    stock: tuple[tuple[str, int], ...]
    gifts: tuple[tuple[str, int], ...]
    at: float


Write = (ConversationOpened | ConversationSet | MessageAdded | Queued | Dequeued | Attached
         | Released | AgentSettings | RecordPut | RecordExpired | OrderRecorded | RoomCounters)


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


# a stored message reads back with exactly the fields its write carried
MessageRow = MessageAdded


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
    agents: list[AgentSettings]
    stock: dict[str, dict[str, int]]  # room → sku → stock
    gifts: dict[str, dict[str, int]]  # room → promotion → claimed
    orders: list[OrderRow]  # newer than the order retention asked for
    records: list[RecordRow]  # live (not expired) workspace records


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
