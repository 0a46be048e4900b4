"""Wire messages of the support domain (conversations, agents, queue), protocol v1.

Names and fields here are contracts documented in ``docs/protocol.md``: extend, never rename.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from signaling.limits import MaxChars, MaxItems
from signaling.protocol import Event, Message, message

AgentStatusName = Literal["available", "away", "break", "offline"]


# --- client → server ------------------------------------------------------------------------

@message("conversation.open", roles=("viewer",), settle=True)
class ConversationOpen(Message):
    room: str
    # the viewer's nickname, shown as such (the display name is the token's); the support
    # plane bounds it to nickname_max_chars, the edge to 64 characters
    name: Annotated[str, MaxChars(64)] | None = None


@message("message.send", roles=("viewer", "agent", "admin"))
class MessageSend(Message):
    conversation: str
    text: Annotated[str, MaxChars(4000)]
    client_msg_id: Annotated[str, MaxChars(128)]
    template: bool = False  # extension: fill {promo.X.left}-style placeholders at send time
    # extension: ids of attachments of this conversation (POST .../attachments), at most 5
    attachments: Annotated[list[str], MaxItems(5), MaxChars(64)] | None = None


@message("conversation.escalate", roles=("viewer",))
class ConversationEscalate(Message):
    conversation: str
    reason: Annotated[str, MaxChars(500)] | None = None


@message("conversation.resolve", roles=("agent", "admin"))
class ConversationResolve(Message):
    conversation: str


@message("conversation.transfer", roles=("agent", "admin"))
class ConversationTransfer(Message):
    conversation: str
    agent: str | None = None


@message("conversation.list", roles=("viewer", "agent", "admin"))
class ConversationList(Message):
    """Extension: the caller's open conversations (agents: assigned to them)."""


@message("conversation.get", roles=("viewer", "agent", "admin"))
class ConversationGet(Message):
    """Extension: one conversation with its full history and context."""
    conversation: str


@message("agent.status", roles=("agent", "admin"), settle=True)
class AgentStatus(Message):
    status: AgentStatusName


@message("queue.get", roles=("agent", "admin"))
class QueueGet(Message):
    """Extension: the current queue (agents also get ``queue.update`` pushes)."""


# --- server → client ------------------------------------------------------------------------

@dataclass
class ChatMessage(Event):
    TYPE: ClassVar[str] = "message"
    conversation: str
    message_id: str
    # ``from`` is a Python keyword: the wire name is produced in to_wire().
    from_: dict
    text: str
    client_msg_id: str | None
    ts: float
    kind: str | None = None  # extension: "announcement" | "notice" | "system"
    # extension: [{attachment, content_type, width, height}] (docs/protocol.md#attachments)
    attachments: list | None = None
    # extension (issue 18): a server-worded text as a key and its parameters, for the page to
    # word in its language; ``text`` keeps the Chinese wording for older clients
    text_key: str | None = None
    params: dict | None = None

    def to_wire(self) -> dict[str, Any]:
        # written out rather than Event.to_wire's reflection: every chat message passes
        # here once per node (the flash-sale burst's hottest event); same keys, same order
        d: dict[str, Any] = {"type": self.TYPE, "conversation": self.conversation,
                             "message_id": self.message_id,
             "text": self.text, "client_msg_id": self.client_msg_id, "ts": self.ts}
        if self.kind is not None:
            d["kind"] = self.kind
        if self.attachments:
            d["attachments"] = [dict(a) for a in self.attachments]
        if self.text_key is not None:
            d["text_key"] = self.text_key
            d["params"] = dict(self.params or {})
        d["from"] = dict(self.from_)
        return d


@dataclass
class ConversationSnapshot(Event):
    TYPE: ClassVar[str] = "conversation"
    conversation: str
    room: str
    state: str
    messages: list
    agent: dict | None = None
    viewer: dict | None = None
    pinned: list | None = None
    omitted: int | None = None  # earlier messages left out (limit conversation_history)
    # extension: each member's latest read mark, as the ``read`` event words it (without
    # ``type``): a page that reloads shows the other side's read mark again
    read_marks: list | None = None


@dataclass
class ConversationStateEvent(Event):
    TYPE: ClassVar[str] = "conversation.state"
    conversation: str
    state: str
    agent: dict | None = None
    reason: str | None = None


@dataclass
class QueuePosition(Event):
    TYPE: ClassVar[str] = "queue"
    conversation: str
    position: int
    estimated_wait_s: float


@dataclass
class ConversationAssigned(Event):
    TYPE: ClassVar[str] = "conversation.assigned"
    conversation: str
    agent: dict
    context: dict
    room: str | None = None


@dataclass
class ConversationListReply(Event):
    TYPE: ClassVar[str] = "conversations"
    conversations: list = field(default_factory=list)


@dataclass
class QueueUpdate(Event):
    TYPE: ClassVar[str] = "queue.update"
    queue: list = field(default_factory=list)
    agents: list | None = None


@dataclass
class AgentState(Event):
    TYPE: ClassVar[str] = "agent.state"
    user: str
    status: str
    since: float
    load: int
    capacity: int
    max_compensation: float | None = None  # the agent's authority (workspace)


# --- rooms ----------------------------------------------------------------------------------

@message("room.watch", roles=("viewer", "agent", "host", "admin"), settle=True)
class RoomWatch(Message):
    room: str


@message("room.unwatch", roles=("viewer", "agent", "host", "admin"))
class RoomUnwatch(Message):
    room: str


@message("room.on_screen", roles=("host", "admin"))
class RoomOnScreen(Message):
    room: str
    sku: str | None = None


@message("room.stock", roles=("host", "admin"))
class RoomStock(Message):
    room: str
    sku: str
    stock: int


@message("room.promo.upsert", roles=("host", "admin"))
class RoomPromoUpsert(Message):
    room: str
    promotion: Annotated[dict, MaxChars(1000), MaxItems(32)]


@message("room.promo.stop", roles=("host", "admin"))
class RoomPromoStop(Message):
    room: str
    promotion: str


@message("room.promo.start", roles=("host", "admin"))
class RoomPromoStart(Message):
    room: str
    promotion: str


@message("room.announce", roles=("host", "admin"))
class RoomAnnounce(Message):
    room: str
    text: Annotated[str, MaxChars(1000)]


@message("replies.list", roles=("agent", "admin"))
class RepliesList(Message):
    room: str
    q: Annotated[str, MaxChars(200)] | None = None


@dataclass
class RoomStateEvent(Event):
    TYPE: ClassVar[str] = "room.state"
    room: str
    version: int
    title: str
    host: str
    currency: str
    products: list
    promotions: list
    policies: dict
    on_screen: str | None
    counters: dict
    announcements: list
    hosts_online: list | None = None


@dataclass
class RoomUpdate(Event):
    TYPE: ClassVar[str] = "room.update"
    room: str
    version: int
    change: dict
    counters: dict
    products: list | None = None
    promotions: list | None = None
    hosts_online: list | None = None


@dataclass
class RoomAnnouncement(Event):
    TYPE: ClassVar[str] = "room.announcement"
    room: str
    text: str
    ts: float
    by: str


@dataclass
class RepliesReply(Event):
    TYPE: ClassVar[str] = "replies"
    replies: list = field(default_factory=list)


# --- typing and read state (issue 18; docs/protocol.md "Typing and read marks") -----------

ReadState = Literal["delivered", "read"]


@message("conversation.typing", roles=("viewer", "agent", "admin"))
class ConversationTyping(Message):
    """Extension: the sender is typing (``typing`` true) or stopped (false). Throttled by the
    client to one start per ``TYPING_INTERVAL_S``; the gateway refuses faster starts."""
    conversation: str
    typing: bool = True


@message("conversation.read", roles=("viewer", "agent", "admin"))
class ConversationRead(Message):
    """Extension: the sender's client has every message up to ``message_id`` (``delivered``)
    or has shown it in a visible, focused conversation (``read``)."""
    conversation: str
    message_id: Annotated[str, MaxChars(128)]
    state: ReadState = "read"


@dataclass
class TypingEvent(Event):
    TYPE: ClassVar[str] = "typing"
    conversation: str
    by: dict  # {role, user, name}
    typing: bool
    expires_in: float  # seconds: a start not renewed within it is over (a closed tab)


@dataclass
class ReadEvent(Event):
    TYPE: ClassVar[str] = "read"
    conversation: str
    message_id: str
    state: str
    by: dict  # {role, user}
    ts: float
