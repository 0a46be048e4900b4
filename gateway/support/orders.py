"""Orders: the placement rule (stock, first-N gifts, repeats), written once.

``place_order`` reads a room's knowledge and the order id's earlier record, and decides: a
repeat (answered as the first time), a conflict (same id, different order), out of stock,
or accepted, with the typed room changes that acceptance makes (``StockSet``, maybe
``GiftClaimed``, ``OrderPlaced``). The memory ledger (``room.MemoryOrderLedger``) runs it
against the room and applies the changes at once; the Redis ledger
(``redis_room.RedisRoomStore``) runs it against its copy of the room and commits the changes
only if the room's version in Redis is still the one its copy holds (else it reloads the
room and decides again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from signaling import ErrorCode, ProtocolError

from .changes import GiftClaimed, OrderPlaced, RoomChange, StockSet
from .knowledge import Knowledge


@dataclass(frozen=True)
class Order:
    order_id: str
    user: str
    sku: str
    qty: int


@dataclass
class OrderOutcome:
    """``status`` 200 (accepted or repeated) or 409 (conflict / out_of_stock)."""

    status: int
    body: dict[str, Any]
    repeated: bool = False
    change: dict[str, Any] | None = None  # what changed in the room (None if nothing)


@dataclass(frozen=True)
class PriorOrder:
    """An order id's earlier record: the order and what it was answered."""
    order: Order
    body: dict[str, Any]


class OrderLedger(Protocol):
    """The atomic step: check stock, claim a first-N gift, record the order id — together."""

    async def place(self, room: Any, order: Order) -> OrderOutcome: ...


class OrderJournal(Protocol):
    """Where a single node's accepted orders become durable (the composition root passes
    the store's feed): the shop is answered only once the order id and the room's counters
    after it are committed, so a crash after the answer loses neither the order nor a gift
    count, and a replay after a restart is still recognised."""

    def refusing(self) -> str | None:
        """Why no order may be placed now (an earlier write is not committed), or None."""

    async def order_placed(self, room: Any, order: Order, outcome: OrderOutcome) -> None:
        """Returns once committed; raises when not. Reads the room's counters before its
        first ``await``."""


def not_saved(why: str) -> ProtocolError:
    """The typed refusal when the journal did not commit (HTTP 503; the shop retries with
    the same order id and gets the first answer once it is written)."""
    return ProtocolError(ErrorCode.UNAVAILABLE, f"not saved: {why}; try again in a moment"[:300])


@dataclass(frozen=True)
class Placement:
    outcome: OrderOutcome
    changes: tuple[RoomChange, ...] = ()


def place_order(kb: Knowledge, order: Order, prior: PriorOrder | None, now: float) -> Placement:
    """Decide ``order`` in the room ``kb`` describes. The first active first-N gift (in the
    room's promotion order) for this sku, or for any sku, with gifts left is claimed.
    Raises ``not_found`` for an sku the room does not sell."""
    if prior is not None:
        if prior.order == order:
            return Placement(OrderOutcome(200, dict(prior.body), repeated=True))
        return Placement(OrderOutcome(409, {
            "error": "conflict",
            "message": f"order {order.order_id!r} was already placed with different sku, "
                       f"qty or user"}))
    product = kb.product(order.sku)
    if product is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown sku {order.sku!r}")
    if order.qty > product.stock:
        return Placement(OrderOutcome(409, {"error": "out_of_stock",
                                            "message": f"only {product.stock} of {order.sku} left",
                                            "stock_left": product.stock}))
    room = kb.room.id
    left = product.stock - order.qty
    changes: list[RoomChange] = [StockSet(room, order.sku, left)]
    promo_id, rank = None, None
    for p in kb.promotions:
        if p.kind != "first_n_gift" or not p.active or p.sku not in (None, "", order.sku):
            continue
        if (p.claimed or 0) < (p.limit or 0):
            promo_id, rank = p.id, (p.claimed or 0) + 1
            changes.append(GiftClaimed(room, p.id, rank))
            break
    placed = OrderPlaced(room=room, order_id=order.order_id, user=order.user, sku=order.sku,
                         qty=order.qty, stock_left=left, gift_promotion=promo_id, rank=rank,
                         ts=now)
    changes.append(placed)
    change = {"kind": "order", "sku": order.sku, "qty": order.qty, "stock": left,
              "gift_promotion": promo_id, "rank": rank, "ts": now}
    return Placement(OrderOutcome(200, placed.body(), change=change), tuple(changes))


def apply_room_change(kb: Knowledge, ch: RoomChange) -> None:
    """Apply one room change record to ``kb`` (absolute values: applying it twice is
    harmless). ``OrderPlaced`` changes no counter (the ledger keeps order ids)."""
    match ch:
        case StockSet():
            prod = kb.product(ch.sku)
            if prod is not None:
                prod.stock = ch.stock
        case GiftClaimed():
            promo = kb.promotion(ch.promotion)
            if promo is not None:
                promo.claimed = ch.claimed
        case OrderPlaced():
            pass
        case _:
            raise TypeError(f"not a room change record: {ch!r}"[:200])
