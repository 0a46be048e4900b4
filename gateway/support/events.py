"""The support plane's domain events, published on the node's one :class:`~signaling.events.Events`.

Each is a frozen dataclass naming what happened; ``events.subscribe(ConversationResolved,
handler)`` is how another part (room counters, CSAT, outcomes, a call) reacts, so every
reaction can be found from the event's name. The event object is frozen; the conversation
it carries is the replica's live object (read it, never change it: changes go through the
backend).

Who publishes what:

* :class:`ChangesApplied`, :class:`MessageApplied`, :class:`ConversationLost`,
  :class:`ConversationTruncated`: the backend (``backend.py``), on every node, in change-log
  order.
* :class:`ConversationOpened`, :class:`MessagePosted`, :class:`ConversationEscalated`,
  :class:`AgentAssigned`, :class:`ConversationResolved`: ``SupportService``, on the
  node that made the change.
* :class:`AgentContextWanted`: ``SupportService``, when it builds what an agent sees.
* :class:`OrderPlaced`: ``RoomService``; :class:`BrowseRecorded`: ``Browsing``;
  :class:`ActionRecorded`: ``Actions``; :class:`CsatGiven`: ``Csat`` (on the node that
  accepted the rating); :class:`ConversionCounted`: ``Outcomes`` (on the node that counted it).
* :class:`QuestionClassified`: the radar's responder wrapper (``responder.ObservedResponder``),
  on the node that answered, once per viewer message the bot answered.
* :class:`AnomalyRaised`, :class:`AnomalyCleared`: ``AnomalyService`` (``anomaly.py``).
* :class:`SurgeWarned`, :class:`SurgeChanged`: ``SurgeService`` (``surge.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .changes import SupportChange
    from .conversation import Conversation, StoredMessage
    from .room import Order, OrderOutcome, Room


# --- published by the replica on every node ---------------------------------------------

@dataclass(frozen=True)
class ChangesApplied:
    """One step's change records, as this node's replica applied them (in log order): what
    the durable store records (``gateway/durable.py``), so it copies the rules' decisions and
    decides nothing itself."""
    changes: tuple[SupportChange, ...]


@dataclass(frozen=True)
class MessageApplied:
    """A chat message reached this node's replica (in log order). ``origin`` is
    ``"<session>|<request id>"`` of the request that wrote it, if any."""
    conversation: Conversation
    message: StoredMessage
    origin: str | None


@dataclass(frozen=True)
class ConversationLost:
    """The state store lost ``conversation`` and this node closed it (Redis only)."""
    conversation: Conversation


@dataclass(frozen=True)
class ConversationTruncated:
    """The state store lost the messages after ``kept``; this node dropped them too."""
    conversation: Conversation
    kept: int


# --- published by SupportService on the node that made the change -------------------------

@dataclass(frozen=True)
class ConversationOpened:
    conversation: Conversation


@dataclass(frozen=True)
class MessagePosted:
    """A message was appended by this node (a client's, the bot's, a notice, a system line)."""
    conversation: Conversation
    message: StoredMessage


@dataclass(frozen=True)
class ConversationEscalated:
    conversation: Conversation


@dataclass(frozen=True)
class AgentAssigned:
    """An agent was given ``conversation`` (by assignment or transfer)."""
    conversation: Conversation


@dataclass(frozen=True)
class ConversationResolved:
    conversation: Conversation


@dataclass(frozen=True)
class AgentContextWanted:
    """``SupportService`` is building what an agent sees of ``conversation``; subscribers
    add their part to ``context`` (the one event whose payload handlers may change: the
    dict, never the conversation)."""
    conversation: Conversation
    context: dict[str, Any]


# --- published by other support parts ------------------------------------------------------

@dataclass(frozen=True)
class OrderPlaced:
    """The shop reported ``order`` in ``room``; ``outcome`` is what the shop was answered."""
    room: Room
    order: Order
    outcome: OrderOutcome


@dataclass(frozen=True)
class BrowseRecorded:
    """A viewer's browsing event was recorded (``event`` as stored in the timeline)."""
    user: str
    event: dict[str, Any]


@dataclass(frozen=True)
class ActionRecorded:
    """An agent's action (compensation, return) was recorded in the audit trail."""
    entry: dict[str, Any]


@dataclass(frozen=True)
class CsatGiven:
    """The viewer rated ``conversation`` (resolved, with an agent): ``rating`` 1–5. Published
    once, by the node that wrote the rating, so the shop hears of it once (webhooks)."""
    conversation: Conversation
    rating: int
    comment: str | None
    ts: float


@dataclass(frozen=True)
class Conversion:
    """An accepted order counted as a support-assisted sale (a conversion) of
    ``conversation``: the buyer talked to support in that room within the window. The record
    ``Outcomes`` keeps and replicates, and what :class:`ConversionCounted` carries."""
    order_id: str
    room: str
    user: str
    sku: str
    qty: int
    conversation: str
    agent: str | None
    ts: float


@dataclass(frozen=True)
class ConversionCounted:
    """A conversion was counted. Published by the node that counted it (one per order: the
    room's order log is shared)."""
    conversion: Conversion


# --- question radar, anomaly flags, surge (docs/webhooks.md, docs/protocol.md) ---------------

@dataclass(frozen=True)
class QuestionClassified:
    """The bot classified one viewer message: its intent, the product it named (``sku``,
    ``None`` if none; several named products joined by ``+``), the one slot that tells
    questions about that product apart (the size, ``None`` if none) and the escalation
    reasons the bot found (``health`` marks a health or safety report). Published by the
    responder wrapper, so the radar, the anomaly flags and surge reuse the bot's one decision
    instead of classifying again."""
    room: str
    conversation: str | None
    viewer: str | None
    text: str
    intent: str
    sku: str | None
    slot: str | None
    reasons: tuple[str, ...]
    ts: float


@dataclass(frozen=True)
class AnomalyRaised:
    """A product's rate of ``kind`` (complaint, return_refund, safety) is unusually high in
    ``room``: ``observed`` in the window against ``expected`` (see ``anomaly.py``)."""
    room: str
    sku: str
    kind: str
    observed: int
    expected: float
    since: float
    basis: str
    p: float


@dataclass(frozen=True)
class AnomalyCleared:
    """A flag raised at ``since`` cleared by itself: the rate is back to what is expected."""
    room: str
    sku: str
    kind: str
    observed: int
    expected: float
    since: float
    cleared_at: float


@dataclass(frozen=True)
class SurgeWarned:
    """A promotion with ``starts_at`` begins within the warning time: agents are told."""
    room: str
    promotion: str
    starts_at: float


@dataclass(frozen=True)
class SurgeChanged:
    """``room`` entered (``on``) or left surge mode at ``at``; ``reason`` says why
    (``promotion:<id>``, ``message_rate``, ``queue``, ``calm``). ``episode`` names the surge
    episode (the same on every node for a promotion's start: ``<promotion>@<starts_at>``), so
    one node, not each, announces it."""
    room: str
    on: bool
    since: float | None
    reason: str
    at: float
    episode: str = ""
