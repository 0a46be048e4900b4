"""Rooms: the live state of each live stream (products, stock, promotions, on-screen item).

A :class:`Room` owns one :class:`~gateway.support.knowledge.Knowledge`. Host edits are its
methods: each is one synchronous method that validates, applies, bumps ``version`` and
returns a *change* dict — the caller (``RoomService``) publishes it as a
``room.update`` event on the Bus. The bot reads the same ``Knowledge`` object, so an answer
given after a change always reflects it. Orders change stock and gift counts through an
order ledger (``orders.apply_room_change``), and the Redis room store reloads the copy.

Orders are the one check-then-change step that must be atomic across nodes. Their rule is
``orders.place_order``, run by an :class:`~gateway.support.orders.OrderLedger`: the memory one
here, or the Redis one (``redis_room.py``), which commits the rule's changes only if Redis
still holds the room version it decided on.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from signaling import ErrorCode, ProtocolError

from .changes import GiftClaimed, StockSet
from .knowledge import Knowledge, KnowledgeError, Promotion, check_promotion_size
from .orders import (
    Order,
    OrderJournal,
    OrderLedger,
    OrderOutcome,
    PriorOrder,
    apply_room_change,
    not_saved,
    place_order,
)

__all__ = ["MemoryOrderLedger", "Order", "OrderLedger", "OrderOutcome", "Room", "RoomRegistry"]


@dataclass
class Room:
    knowledge: Knowledge
    version: int = 0
    redis_version: int = 0  # last Redis-side version applied (multi-node only)
    redis_kb_version: int = 0  # Redis-side host-edit count the copy holds (multi-node only)
    announcements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.knowledge.room.id

    # --- views ---------------------------------------------------------------------------
    def gifts(self) -> dict[str, dict[str, Any]]:
        kb = self.knowledge
        out = {}
        for p in kb.promotions:
            if p.kind == "first_n_gift":
                prod = kb.product(p.sku) if p.sku else None
                out[p.id] = {"limit": p.limit, "claimed": p.claimed, "active": p.active,
                             "sku": p.sku, "gift": p.gift,
                             "left": p.gifts_left(prod.stock if prod else None)}
        return out

    def counters(self) -> dict[str, Any]:
        return {"stock": {p.sku: p.stock for p in self.knowledge.products},
                "gifts": self.gifts(), "on_screen": self.knowledge.on_screen}

    def snapshot(self) -> dict[str, Any]:
        kb = self.knowledge
        return {"room": self.id, "version": self.version, "title": kb.room.title,
                "host": kb.room.host, "currency": kb.room.currency,
                "products": [p.to_dict() for p in kb.products],
                "promotions": [p.to_dict() for p in kb.promotions],
                "policies": dict(kb.policies), "on_screen": kb.on_screen,
                "counters": self.counters(), "announcements": list(self.announcements[-20:])}

    # --- mutations (each returns the change to publish) ------------------------------------
    def _product(self, sku: str):
        p = self.knowledge.product(sku)
        if p is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown sku {sku!r} in room {self.id!r}")
        return p

    def _bump(self, change: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        change["ts"] = time.time()
        return change

    def set_on_screen(self, sku: str | None) -> dict[str, Any]:
        if sku is not None:
            self._product(sku)
        self.knowledge.on_screen = sku
        return self._bump({"kind": "on_screen", "sku": sku})

    def set_stock(self, sku: str, stock: int) -> dict[str, Any]:
        if stock < 0:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "stock must be ≥ 0")
        p = self._product(sku)
        before = p.stock
        p.stock = stock
        return self._bump({"kind": "stock", "sku": sku, "stock": stock, "before": before})

    def upsert_promotion(self, data: dict[str, Any], limits: Any = None) -> dict[str, Any]:
        """Create or change a promotion from a host's ``data``. Only the fields of the format
        are accepted (a host's unknown fields are refused, not carried to every viewer), each
        typed; with ``limits`` (:class:`~gateway.support.limits.SupportLimits`) the promotion,
        the number of promotions and the whole knowledge stay within the room limits."""
        unknown = sorted(k for k in data if k not in Promotion._KNOWN)
        if unknown:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"room.promo.upsert: unknown promotion fields {unknown[:5]}"[:300])
        existing = self.knowledge.promotion(str(data.get("id", "")))
        merged = dict(existing.to_dict()) if existing else {}
        merged.update({k: v for k, v in data.items()})
        try:
            promo = Promotion.from_dict(merged)
        except (KnowledgeError, TypeError, ValueError) as e:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"room.promo.upsert: {e}") from None
        if limits is not None:
            try:
                check_promotion_size(promo.to_dict(), limits.promotion_max_bytes)
            except KnowledgeError as e:
                raise ProtocolError(ErrorCode.TOO_LARGE, f"room.promo.upsert: {e}") from None
        for sku in promo.skus:
            self._product(sku)
        if promo.kind == "first_n_gift" and (promo.limit or 0) < (promo.claimed or 0):
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"limit {promo.limit} is below claimed {promo.claimed}")
        promos = self.knowledge.promotions
        before = list(promos)
        if existing:
            promos[promos.index(existing)] = promo
        else:
            promos.append(promo)
        if limits is not None:
            try:
                self.knowledge.check_size(limits.knowledge_max_bytes, 0,
                                          limits.promotions_per_room if not existing else 0)
            except KnowledgeError as e:
                promos[:] = before  # nothing changed
                raise ProtocolError(ErrorCode.TOO_LARGE, f"room.promo.upsert: {e}") from None
        return self._bump({"kind": "promotion", "promotion": promo.to_dict(),
                           "created": existing is None})

    def set_promotion_active(self, promo_id: str, active: bool) -> dict[str, Any]:
        promo = self.knowledge.promotion(promo_id)
        if promo is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown promotion {promo_id!r}")
        promo.active = active
        return self._bump({"kind": "promotion", "promotion": promo.to_dict(), "created": False})

    def announce(self, text: str, by: str) -> dict[str, Any]:
        a = {"text": text, "ts": time.time(), "by": by}
        self.announcements.append(a)
        del self.announcements[:-50]
        return self._bump({"kind": "announcement", "announcement": a})


class RoomRegistry:
    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def for_claims(self, claims, room_id: str) -> Room:
        """The room a caller names, checked against its token: ``not_found`` for an unknown
        room, ``forbidden`` when a room-bound token (viewer, host, service) names another."""
        room = self._rooms.get(room_id)
        if room is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown room {room_id!r}")
        if claims.room and claims.room != room_id:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"your token is for room {claims.room!r}, not {room_id!r}")
        return room

    def add(self, kb: Knowledge) -> Room:
        room = Room(kb)
        self._rooms[room.id] = room
        return room

    def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def ids(self) -> list[str]:
        return list(self._rooms)

    def __iter__(self):
        return iter(self._rooms.values())


# --- orders ---------------------------------------------------------------------------------

class MemoryOrderLedger:
    """One-process ledger: ``orders.place_order`` decides against the room and its changes
    are applied at once (no ``await`` in between).

    Order ids are remembered for ``retention_s`` (0: for ever) so a replayed order event is
    answered as a repeat; older ones are forgotten as new orders arrive (the dict is in
    arrival order, so the oldest are at its front).

    With ``journal`` (a store configured), :meth:`place` answers only once an accepted
    order is committed there, and refuses every order while an earlier write is not."""

    def __init__(self, retention_s: float = 0.0, journal: OrderJournal | None = None) -> None:
        self.retention_s = retention_s
        self.journal = journal
        # an OrderedDict: reaching its front stays O(1) after many deletions there (a dict
        # walks over the deleted slots until it is resized)
        self._orders: OrderedDict[tuple[str, str], tuple[PriorOrder, float]] = OrderedDict()

    async def place(self, room: Room, order: Order) -> OrderOutcome:
        j = self.journal
        if j is not None and (why := j.refusing()) is not None:
            raise not_saved(why)
        outcome = self.place_now(room, order)
        if j is not None and outcome.change is not None:
            try:
                await j.order_placed(room, order, outcome)
            except Exception as e:
                raise not_saved(str(e) or e.__class__.__name__) from None
        return outcome

    def restore(self, room: Room, stock: dict[str, int], gifts: dict[str, int],
                orders: list[tuple[Order, dict[str, Any], float]]) -> None:
        """Load a room's counters and its remembered order ids from the durable store at
        start-up (``gateway/restore.py``): the counters as the room change records that set
        them, each order id with the answer it got and when (a replay is a repeat)."""
        for sku, n in stock.items():
            apply_room_change(room.knowledge, StockSet(room.id, sku, int(n)))
        for promo, n in gifts.items():
            apply_room_change(room.knowledge, GiftClaimed(room.id, promo, int(n)))
        for order, body, at in sorted(orders, key=lambda o: o[2]):
            self._orders[(room.id, order.order_id)] = (PriorOrder(order, dict(body)), at)
        room.version += 1

    def _forget_old(self, now: float) -> None:
        if self.retention_s <= 0:
            return
        cutoff = now - self.retention_s
        while self._orders:
            key = next(iter(self._orders))
            if self._orders[key][1] > cutoff:
                break
            self._orders.popitem(last=False)

    def place_now(self, room: Room, order: Order, now: float | None = None) -> OrderOutcome:
        now = time.time() if now is None else now
        self._forget_old(now)
        key = (room.id, order.order_id)
        prev = self._orders.get(key)
        placed = place_order(room.knowledge, order, prev[0] if prev else None, now)
        if not placed.changes:
            return placed.outcome
        for ch in placed.changes:
            apply_room_change(room.knowledge, ch)
        self._orders[key] = (PriorOrder(order, dict(placed.outcome.body)), now)
        room.version += 1
        return placed.outcome
