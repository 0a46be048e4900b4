"""Handoff context: what an agent sees about the viewer the moment the bot hands over.

Owns the commerce part of ``conversation.assigned.context`` (the chat, mood and reason come
from the support service, the browsing timeline from :mod:`.browsing`): the viewer's
``orders`` with their logistics state, the ``promotions`` they qualify for (or nearly do)
given the room's live promotions and their cart/browsing, and their ``earlier_conversations``.

Context providers are synchronous, so orders come from the :class:`ViewerOrders` cache. It
is warmed as soon as the viewer talks (first message, ``support_opened``, escalation); if
the data lands only after assignment the agent gets a ``context`` event with the full view.
``context.get {conversation}`` (agent member or admin) fetches afresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from signaling import Hub, Request
from signaling.protocol import Event, Message, message

from .browsing import BrowsingStore
from .commerce import ViewerOrders
from .conversation import Conversation
from .events import AgentAssigned, ConversationEscalated, MessagePosted
from .room import Room, RoomRegistry

log = logging.getLogger(__name__)

MAX_EARLIER = 10


@message("context.get", roles=("agent", "admin"))
class ContextGet(Message):
    conversation: str


@dataclass
class ContextEvent(Event):
    """The handoff context of one conversation (reply to ``context.get``, or a late push).
    On the wire the context's fields sit next to ``conversation``."""

    TYPE: ClassVar[str] = "context"
    conversation: str
    context: dict

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, **self.context, "conversation": self.conversation}


def qualifying_promotions(room: Room, interest: list[str], cart: list[str]) -> list[dict[str, Any]]:
    """Active promotions the viewer qualifies for (``qualifies``) or is near (``close``)."""
    kb = room.knowledge
    out: list[dict[str, Any]] = []
    cart_total = sum(p.price for p in map(kb.product, cart) if p is not None)
    for p in kb.promotions:
        if not p.active:
            continue
        item: dict[str, Any] = {"id": p.id, "kind": p.kind, "text": p.text}
        skus = p.skus
        if p.kind == "first_n_gift":
            prod = kb.product(p.sku) if p.sku else None
            left = p.gifts_left(prod.stock if prod else None)
            if not left or (skus and not set(skus) & set(interest)):
                continue
            item["left"] = left
            item["status"] = "qualifies" if not skus or set(skus) & set(cart) else "close"
            if item["status"] == "close":
                item["missing"] = f"add {','.join(skus)} to cart"  # old consoles
                # the console words it in its language (docs/protocol.md "Server texts")
                item["missing_key"] = "promo.missing.add"
                item["missing_params"] = {"skus": list(skus)}
        elif p.kind == "coupon":
            if not interest:
                continue
            threshold = float(p.threshold or 0)
            item["code"] = p.code
            if cart_total >= threshold:
                item["status"] = "qualifies"
            else:
                item["status"] = "close"
                item["missing"] = f"{round(threshold - cart_total, 2)} more in cart"  # old consoles
                item["missing_key"] = "promo.missing.more"
                item["missing_params"] = {"amount": round(threshold - cart_total, 2)}
        elif p.kind in ("bundle", "discount"):
            if not set(skus) & set(interest):
                continue
            in_cart = [s for s in skus if s in cart]
            need = len(skus) if p.kind == "bundle" else int(p.threshold or len(skus))
            if len(in_cart) >= need:
                item["status"] = "qualifies"
            else:
                item["status"] = "close"
                absent = [s for s in skus if s not in cart]
                item["missing"] = ("add " + ",".join(absent)  # old consoles
                                   if p.kind == "bundle" else f"{need - len(in_cart)} more of {'/'.join(skus)}")
                item["missing_key"] = "promo.missing.add" if p.kind == "bundle" else "promo.missing.items"
                item["missing_params"] = ({"skus": absent} if p.kind == "bundle"
                                          else {"n": need - len(in_cart), "skus": list(skus)})
        else:
            continue
        out.append(item)
    return out


class Handoff:
    def __init__(self, hub: Hub, support, rooms: RoomRegistry, orders: ViewerOrders,
                 browsing: BrowsingStore, extra_for: Callable[[Conversation], dict] | None = None,
                 fetch_timeout_s: float = 2.0):
        self.hub = hub
        self.support = support
        self.rooms = rooms
        self.orders = orders
        self.browsing = browsing
        self.extra_for = extra_for  # per earlier conversation: outcome, csat (workspace)
        self.fetch_timeout_s = fetch_timeout_s
        hub.handle(ContextGet, self.on_get)
        support.events.subscribe(MessagePosted, lambda e: self._on_message(e.conversation, e.message))
        support.events.subscribe(ConversationEscalated, lambda e: self._on_escalated(e.conversation))
        support.events.subscribe(AgentAssigned, lambda e: self._on_assigned(e.conversation))

    # --- the provider ------------------------------------------------------------------------
    def context(self, conv: Conversation) -> dict[str, Any]:
        cached = self.orders.get(conv.viewer)
        orders = [o for o in (cached or []) if o.get("user", conv.viewer) == conv.viewer]
        room = self.rooms.get(conv.room)
        tl = self.browsing.timeline(conv.viewer, conv.room)
        interest = [e["sku"] for e in tl if e.get("sku")]
        interest += [o["sku"] for o in orders if o.get("sku") and o.get("room", conv.room) == conv.room]
        cart = self.browsing.skus(conv.viewer, conv.room, ("add_to_cart",))
        earlier = []
        for c in sorted(self.support.store.for_viewer(conv.viewer), key=lambda c: -c.created_at):
            if c.id == conv.id or c.viewer != conv.viewer:
                continue
            viewer_texts = c.viewer_messages()
            item = {"conversation": c.id, "room": c.room, "state": c.state,
                    "created_at": c.created_at, "resolved_at": c.resolved_at,
                    "agent": c.agent_ref(), "mood": c.mood,
                    "first_message": viewer_texts[0][:200] if viewer_texts else None}
            if self.extra_for is not None:
                item.update(self.extra_for(c))
            earlier.append(item)
            if len(earlier) >= MAX_EARLIER:
                break
        return {"orders": orders, "orders_loaded": cached is not None,
                "promotions": qualifying_promotions(room, interest, cart) if room else [],
                "earlier_conversations": earlier}

    # --- prefetch ----------------------------------------------------------------------------
    async def prefetch(self, user: str) -> bool:
        """Warm the cache for ``user``; True if it was cold and is now loaded."""
        if self.orders.get(user) is not None:
            return False
        return await self.orders.fetch_quietly(user, self.fetch_timeout_s) is not None

    async def _on_message(self, conv: Conversation, m) -> None:
        if m.author.role == "viewer":
            await self.prefetch(conv.viewer)

    async def _on_escalated(self, conv: Conversation) -> None:
        await self._warm_then_push(conv)

    async def _on_assigned(self, conv: Conversation) -> None:
        await self._warm_then_push(conv)

    async def _warm_then_push(self, conv: Conversation) -> None:
        if await self.prefetch(conv.viewer) and conv.state == "assigned" and conv.agent:
            # the assignment went out before the shop answered: send the agent the full view
            await self.hub.send_to_user(conv.agent, ContextEvent(conv.id, self.support.context(conv)))

    # --- context.get -------------------------------------------------------------------------
    async def on_get(self, req: Request[ContextGet]):
        conv = await self.support.conversation_for(req, req.msg.conversation)
        try:
            await asyncio.wait_for(self.orders.fetch(conv.viewer, force=True), self.fetch_timeout_s)
        except Exception as e:  # stale data beats no answer; the context says what it has
            log.warning("orders of %s: %s", conv.viewer, e)
        return ContextEvent(conv.id, self.support.context(conv))
