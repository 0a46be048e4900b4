"""Typing indicators and delivered/read marks: relayed to the other members; the latest
``read`` mark of each member is also kept in the conversation's state.

Why typing and ``delivered`` are not stored: both are a view of the moment (an indicator
older than ``TYPING_TTL_S`` is wrong; ``delivered`` is followed by ``read`` once the reader
looks). Why the latest ``read`` mark is: the reader's page sends a mark only when it
advances, so the *writer* who reloads their page would otherwise see no read mark on
messages read long ago. It is one conversation field per member (``read:<user>``,
changes.READ_FIELD), last-writer-wins on the message's log position, never a message of the
log; the snapshot (``conversation.get``, the resume) carries it as ``read_marks``.

Limits (docs/protocol.md "Typing and read marks"): one typing *start* per sender and
conversation every ``TYPING_INTERVAL_S`` (a faster one is refused with ``rate_limited``; a
client that keeps to the interval never sees it); a start expires after ``TYPING_TTL_S``
unless renewed; a stop is relayed only after a relayed start. Read marks are relayed only
when they advance for that reader and state (``delivered`` < ``read``), so a client may send
one per rendered message without flooding the others, and a ``read`` mark is stored only
when it advances past the stored one (so at most one write per message read). The
bookkeeping is bounded by ``MAX_TRACKED`` entries (oldest dropped first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from signaling.errors import ErrorCode, ProtocolError
from signaling.hub import Hub, Request

from .conversation import Conversation
from .messages import ConversationRead, ConversationTyping, ReadEvent, TypingEvent

TYPING_INTERVAL_S = 2.0
TYPING_TTL_S = 5.0
MAX_TRACKED = 20_000

ConversationFor = Callable[..., Awaitable[Conversation]]
# backend.mark_read: keep a member's latest read mark in the conversation's state
MarkRead = Callable[[Conversation, str, dict[str, Any]], Awaitable[bool]]


class ChatSignals:
    """Owner of the typing throttle and of the last relayed read mark per reader."""

    def __init__(self, hub: Hub, conversation_for: ConversationFor,
                 mark_read: MarkRead | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.conversation_for = conversation_for
        self.mark_read = mark_read
        self.clock = clock
        self._typing: OrderedDict[tuple[str, str], float] = OrderedDict()  # (conv, user) → last start
        self._read: OrderedDict[tuple[str, str, str], int] = OrderedDict()  # (conv, user, state) → n
        hub.handle(ConversationTyping, self.on_typing)
        hub.handle(ConversationRead, self.on_read)

    async def on_typing(self, req: Request[ConversationTyping]) -> dict[str, Any]:
        msg = req.msg
        conv = await self.conversation_for(req, msg.conversation, allow_admin=False)
        if conv.state == "resolved":
            return {"type": "ack", "relayed": False}
        key = (conv.id, req.user)
        now = self.clock()
        last = self._typing.get(key)
        if msg.typing:
            if last is not None and now - last < TYPING_INTERVAL_S:
                raise ProtocolError(ErrorCode.RATE_LIMITED,
                                    f"conversation.typing: at most one start every "
                                    f"{TYPING_INTERVAL_S:g} s per conversation")
            self._remember(self._typing, key, now)
        else:
            if last is None or now - last > TYPING_TTL_S:
                return {"type": "ack", "relayed": False}  # nothing shown to stop
            self._typing.pop(key, None)
        ev = TypingEvent(conversation=conv.id,
                         by={"role": req.role, "user": req.user, "name": req.claims.name},
                         typing=msg.typing, expires_in=TYPING_TTL_S)
        await self._tell_others(conv, req.user, ev)
        return {"type": "ack", "relayed": True}

    async def on_read(self, req: Request[ConversationRead]) -> dict[str, Any]:
        msg = req.msg
        conv = await self.conversation_for(req, msg.conversation, allow_admin=False)
        n = next((m.n for m in reversed(conv.messages) if m.message_id == msg.message_id), None)
        if n is None:
            raise ProtocolError(ErrorCode.NOT_FOUND,
                                f"conversation.read: no message {msg.message_id!r} in "
                                f"conversation {conv.id!r}")
        key = (conv.id, req.user, msg.state)
        stored = False
        now = time.time()
        held = conv.read_marks.get(req.user, {}).get("n", -1)
        if msg.state == "read" and self.mark_read is not None and held < n:
            # before the relay: the ack says whether it is kept; a store that refuses
            # (durability: unavailable) is the typed error, and nothing is relayed half-way
            stored = await self.mark_read(conv, req.user, {"n": n, "message_id": msg.message_id,
                                                            "role": req.role, "ts": now})
        if self._read.get(key, -1) >= n:
            return {"type": "ack", "relayed": False, "stored": stored}
        self._remember(self._read, key, n)
        if msg.state == "read":  # read implies delivered
            dkey = (conv.id, req.user, "delivered")
            if self._read.get(dkey, -1) < n:
                self._remember(self._read, dkey, n)
        ev = ReadEvent(conversation=conv.id, message_id=msg.message_id, state=msg.state,
                       by={"role": req.role, "user": req.user}, ts=now)
        await self._tell_others(conv, req.user, ev)
        return {"type": "ack", "relayed": True, "stored": stored}

    async def _tell_others(self, conv: Conversation, sender: str, ev) -> None:
        for user in conv.members():
            if user != sender:
                await self.hub.send_to_user(user, ev)

    @staticmethod
    def _remember(d: OrderedDict, key, value) -> None:
        d[key] = value
        d.move_to_end(key)
        while len(d) > MAX_TRACKED:
            d.popitem(last=False)
