"""Outcomes: how conversations end, and the sales that follow them.

Owns the endings the support service does not decide itself, and so the
``livedesk_conversations_total{outcome}`` values other than ``resolved_by_agent``:

* ``conversation.close {conversation}`` (viewer, own conversation): a conversation still
  with the bot ends ``resolved_by_bot``; one waiting in the queue ends ``abandoned``; one
  with an agent ends ``resolved_by_agent`` (the agent handled it; CSAT is asked).
* idle expiry (``idle_close_s`` without a message): with the bot → ``resolved_by_bot``;
  queued and the viewer offline → ``abandoned``.
* the viewer leaving while queued (their last session expires) → ``abandoned``.

A conversation in which the viewer never wrote is closed quietly (no outcome: it was a
widget opened, not a support contact). It also owns conversions: an order placed (via
``POST /api/rooms/{room}/orders``) by a viewer within ``conversion_window_s`` after the last
activity of one of their support conversations in that room counts once in
``livedesk_conversions_total{room}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from signaling import ErrorCode, Hub, ProtocolError, Request, Session
from signaling.protocol import Message, message

from .conversation import Conversation
from .messages import ConversationStateEvent

log = logging.getLogger(__name__)


@message("conversation.close", roles=("viewer",))
class ConversationClose(Message):
    conversation: str


@dataclass
class Conversion:
    order_id: str
    room: str
    user: str
    sku: str
    qty: int
    conversation: str
    agent: str | None
    ts: float


def last_activity(conv: Conversation) -> float:
    return max([conv.created_at] + [m.ts for m in conv.messages])


def had_contact(conv: Conversation) -> bool:
    return any(m.author.role == "viewer" for m in conv.messages)


class Outcomes:
    def __init__(self, hub: Hub, support, metrics: Any = None, idle_close_s: float = 1800.0,
                 conversion_window_s: float = 3600.0, on_change=None):
        self.hub = hub
        self.support = support
        self.metrics = metrics
        self.idle_close_s = idle_close_s
        self.conversion_window_s = conversion_window_s
        self.on_change = on_change
        self.outcomes: dict[str, str] = {}  # conversation → outcome, for the dashboard
        self.conversions: list[Conversion] = []
        self._counted_orders: set[tuple[str, str]] = set()
        self._next: dict[str, str] = {}
        hub.handle(ConversationClose, self.on_close)
        hub.on("expired", self._on_expired)
        support.on("resolved", self._on_resolved)
        support.on("pruned", lambda conv: self.outcomes.pop(conv.id, None))

    # --- endings -----------------------------------------------------------------------------
    @staticmethod
    def outcome_for(conv: Conversation) -> str:
        return {"bot": "resolved_by_bot", "queued": "abandoned"}.get(conv.state, "resolved_by_agent")

    def _on_resolved(self, conv: Conversation) -> None:
        self.outcomes[conv.id] = self._next.pop(conv.id, "resolved_by_agent")
        if self.on_change:
            self.on_change(conv)

    async def end(self, conv: Conversation, reason: str) -> str | None:
        """End ``conv`` with the outcome its state implies; None if it was closed quietly."""
        if conv.state == "resolved":
            return None
        if not had_contact(conv):
            await self.support.backend.resolve(conv)
            await self.support.tell_members(conv, ConversationStateEvent(conv.id, "resolved",
                                                                         reason=reason))
            return None
        outcome = self.outcome_for(conv)
        self._next[conv.id] = outcome
        await self.support.resolve(conv, outcome)
        return outcome

    async def on_close(self, req: Request):
        conv = self.support.store.get(req.msg.conversation)
        if conv is None or conv.viewer != req.user:
            raise ProtocolError(ErrorCode.NOT_MEMBER,
                                f"you are not a member of conversation {req.msg.conversation!r}")
        if conv.state == "resolved":
            raise ProtocolError(ErrorCode.BAD_STATE, "conversation is already resolved")
        req.reply({"type": "ack"})
        await self.end(conv, "closed")
        return None

    def _on_expired(self, session: Session) -> None:
        if session.role != "viewer" or self.hub.user_sessions(session.user):
            return
        for conv in self.support.store.for_viewer(session.user):
            if conv.state == "queued":
                self.support._spawn(self.end(conv, "left"))

    async def sweep(self, now: float | None = None) -> int:
        """End idle conversations; returns how many ended."""
        now = time.time() if now is None else now
        n = 0
        for conv in self.support.store.all():
            if conv.state not in ("bot", "queued") or now - last_activity(conv) < self.idle_close_s:
                continue
            if conv.state == "queued" and (self.hub.online(conv.viewer)
                                           or await self.hub.presence_of(conv.viewer)):
                continue  # the viewer is still connected (on this node or another)
            await self.end(conv, "idle")
            n += 1
        return n

    async def run_sweeper(self) -> None:
        interval = max(0.05, min(30.0, self.idle_close_s / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("idle sweep failed")

    # --- conversions -------------------------------------------------------------------------
    def on_order(self, room, order, outcome) -> Conversion | None:
        """``RoomService.order_listeners`` callback."""
        if outcome.status != 200 or outcome.repeated or (room.id, order.order_id) in self._counted_orders:
            return None
        now = time.time()
        recent = [c for c in self.support.store.for_viewer(order.user)
                  if c.room == room.id and had_contact(c)
                  and 0 <= now - last_activity(c) <= self.conversion_window_s]
        if not recent:
            return None
        conv = max(recent, key=last_activity)
        self._counted_orders.add((room.id, order.order_id))
        conv_ = Conversion(order.order_id, room.id, order.user, order.sku, order.qty, conv.id,
                           conv.agent, now)
        self.conversions.append(conv_)
        del self.conversions[:-10000]
        if self.metrics:
            self.metrics.conversions.labels(room=room.id).inc()
        if self.on_change:
            self.on_change(conv_)
        return conv_
