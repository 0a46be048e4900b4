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

Outcomes and conversions are replicated records (namespaces ``outcome`` and ``conversion``
of the support backend): the node that decides one writes it, every node's listener keeps
it. Why: the dashboard is computed on whichever node the supervisor is connected to, and
must show the same figures there as anywhere else (a node that only counted what it decided
itself showed a different dashboard per node).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from typing import Any

from signaling import ErrorCode, Hub, ProtocolError, Request, Session
from signaling.events import SessionExpired
from signaling.protocol import Message, message

from .conversation import Conversation
from .events import ConversationResolved, Conversion, ConversionCounted, OrderPlaced
from .messages import ConversationStateEvent

log = logging.getLogger(__name__)


@message("conversation.close", roles=("viewer",))
class ConversationClose(Message):
    conversation: str


def last_activity(conv: Conversation) -> float:
    return max([conv.created_at] + [m.ts for m in conv.messages])


def had_contact(conv: Conversation) -> bool:
    return any(m.author.role == "viewer" for m in conv.messages)


class Outcomes:
    def __init__(self, hub: Hub, support, metrics: Any = None, idle_close_s: float = 1800.0,
                 conversion_window_s: float = 3600.0):
        self.hub = hub
        self.support = support
        self.metrics = metrics
        self.idle_close_s = idle_close_s
        self.conversion_window_s = conversion_window_s
        # conversation → {outcome, room, agent, ts, frt}: the replicated ``outcome`` records
        self.records: dict[str, dict[str, Any]] = {}
        self._conversions: dict[str, Conversion] = {}  # "room:order" → conversion (replicated)
        self._next: dict[str, str] = {}
        hub.handle(ConversationClose, self.on_close)
        support.events.subscribe(SessionExpired, lambda e: self._on_expired(e.session))
        support.events.subscribe(ConversationResolved, lambda e: self._on_resolved(e.conversation))
        support.events.subscribe(OrderPlaced, lambda e: self.on_order(e.room, e.order, e.outcome))
        support.backend.listen("outcome", self._on_outcome_record, forget=self._forget_outcome)
        support.backend.listen("conversion", self._on_conversion_record,
                               forget=self._forget_conversion)

    @property
    def conversions(self) -> list[Conversion]:
        return list(self._conversions.values())

    def outcome_of(self, cid: str) -> str | None:
        rec = self.records.get(cid)
        return rec["outcome"] if rec else None

    def _on_outcome_record(self, cid: str, rec: dict[str, Any]) -> None:
        self.records[cid] = rec

    def _on_conversion_record(self, key: str, rec: dict[str, Any]) -> None:
        self._conversions.setdefault(key, Conversion(**rec))

    def _forget_outcome(self, cid: str) -> None:
        self.records.pop(cid, None)

    def _forget_conversion(self, key: str) -> None:
        self._conversions.pop(key, None)

    def forget_before(self, cutoff: float) -> None:
        """Retention for this node's copies that no TTL covers: records learnt at start-up
        that were written without one, and ones whose write never reached the state store.
        (Records written with a TTL leave through ``_forget_outcome`` / ``_forget_conversion``.)"""
        for cid in [c for c, r in self.records.items() if r.get("ts", 0) < cutoff]:
            del self.records[cid]
        for key in [k for k, c in self._conversions.items() if c.ts < cutoff]:
            del self._conversions[key]

    # --- endings -----------------------------------------------------------------------------
    @staticmethod
    def outcome_for(conv: Conversation) -> str:
        return {"bot": "resolved_by_bot", "queued": "abandoned"}.get(conv.state, "resolved_by_agent")

    def _on_resolved(self, conv: Conversation) -> None:
        outcome = self._next.pop(conv.id, "resolved_by_agent")
        frt = (conv.first_agent_reply_at - conv.escalated_at
               if conv.first_agent_reply_at is not None and conv.escalated_at is not None
               else None)
        rec = {"outcome": outcome, "room": conv.room, "agent": conv.agent, "ts": time.time(),
               "frt": frt}
        self._on_outcome_record(conv.id, rec)  # here at once; everywhere once written
        self.support._spawn(self._share("outcome", conv.id, rec))

    SHARE_RETRY_S = 600.0  # how long an outcome keeps trying to reach the state store

    async def _share(self, namespace: str, key: str, rec: dict[str, Any]) -> bool:
        """Write the record every node counts. This node counts it at once; while the state
        store is away (``unavailable``), keep trying with backoff for ``SHARE_RETRY_S``, so
        the other nodes' dashboards do not miss it for good after a Redis blip. The write is
        *if absent*, so a retry after a lost reply changes nothing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.SHARE_RETRY_S
        delay = 0.5
        while True:
            try:
                written, _ = await self.support.backend.put(namespace, key, rec, if_absent=True,
                                                            ttl_s=self.support.record_ttl_s)
                return written
            except ProtocolError as e:
                if e.code != ErrorCode.UNAVAILABLE or loop.time() + delay > deadline:
                    log.warning("recording %s %s failed for good: %s (counted on this node "
                                "only)", namespace, key, e)
                    return False
                log.warning("recording %s %s failed: %s; retrying in %.1f s", namespace, key,
                            e, delay)
            except Exception:
                log.exception("recording %s %s failed (counted on this node only)",
                              namespace, key)
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def end(self, conv: Conversation, reason: str) -> str | None:
        """End ``conv`` with the outcome its state implies; None if it was closed quietly.
        ``reason`` ``closed`` is the viewer's own close (kept as ``resolved_by: viewer``)."""
        if conv.state == "resolved":
            return None
        by = "viewer" if reason == "closed" else "system"
        if not had_contact(conv):
            await self.support.backend.resolve(conv, by=by)
            await self.support.tell_members(conv, ConversationStateEvent(conv.id, "resolved",
                                                                         reason=reason))
            return None
        outcome = self.outcome_for(conv)
        self._next[conv.id] = outcome
        await self.support.resolve(conv, outcome, by=by)
        return outcome

    async def on_close(self, req: Request[ConversationClose]):
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
            keep = self.support.record_ttl_s
            if keep is not None:
                self.forget_before(time.time() - keep)

    # --- conversions -------------------------------------------------------------------------
    def on_order(self, room, order, outcome) -> Conversion | None:
        """On :class:`~.events.OrderPlaced`: an accepted order by a viewer who talked to
        support in the window counts as a conversion of that conversation."""
        key = f"{room.id}:{order.order_id}"
        if outcome.status != 200 or outcome.repeated or key in self._conversions:
            return None
        now = time.time()
        recent = [c for c in self.support.store.for_viewer(order.user)
                  if c.room == room.id and had_contact(c)
                  and 0 <= now - last_activity(c) <= self.conversion_window_s]
        if not recent:
            return None
        conv = max(recent, key=last_activity)
        conv_ = Conversion(order.order_id, room.id, order.user, order.sku, order.qty, conv.id,
                           conv.agent, now)
        self._conversions[key] = conv_
        # (a repeated order is ``outcome.repeated`` on every node: the room's order log is
        # shared, so only one node gets here per order)
        self.support._spawn(self._share("conversion", key, asdict(conv_)))
        if self.metrics:
            self.metrics.conversions.labels(room=room.id).inc()
        self.support.events.publish(ConversionCounted(conv_))
        return conv_
