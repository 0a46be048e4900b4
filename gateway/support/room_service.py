"""Room service: host commands, shop order events and room watchers.

Turns ``room.*`` requests and shop order events (``POST /api/rooms/{room}/orders``, whose
HTTP side is in ``gateway/http_api.py``) into :class:`Room` / :class:`OrderLedger` changes and publishes each change on the Bus topic ``room:<id>`` as
``room.update`` (watchers: host panels, agent consoles, viewer widgets). Announcements are
also pinned into every open conversation of the room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from signaling import ErrorCode, Hub, ProtocolError, Request, logctx, tracing

from .conversation import Author
from .events import (
    AgentAssigned,
    ConversationEscalated,
    ConversationOpened,
    ConversationResolved,
    OrderPlaced,
)
from .messages import (
    RepliesList,
    RepliesReply,
    RoomAnnounce,
    RoomAnnouncement,
    RoomOnScreen,
    RoomPromoStart,
    RoomPromoStop,
    RoomPromoUpsert,
    RoomStateEvent,
    RoomStock,
    RoomUnwatch,
    RoomUpdate,
    RoomWatch,
)
from .orders import not_saved
from .replies import CannedReply, room_replies, search
from .room import (
    MemoryOrderLedger,
    Order,
    OrderLedger,
    OrderOutcome,
    Room,
    RoomRegistry,
)
from .service import SupportService

if TYPE_CHECKING:
    from .redis_room import RoomSync

log = logging.getLogger(__name__)


@runtime_checkable
class RoomEditJournal(Protocol):
    """Where a single node's host edits of stock and gift quotas become durable (the store's
    feed, passed to the memory ledger as its journal): the host is answered only once the
    room's counters after the edit are committed, so a restart gives the same stock and
    gifts (docs/storage.md#durable-before-acknowledged)."""

    def refusing(self) -> str | None: ...

    async def room_edited(self, room: Any) -> None: ...


def room_topic(room_id: str) -> str:
    return f"room:{room_id}"


class RoomService:
    def __init__(self, hub: Hub, rooms: RoomRegistry, support: SupportService,
                 ledger: OrderLedger | None = None, team_replies: list[CannedReply] | None = None,
                 metrics: Any = None, sync: RoomSync | None = None):
        self.hub = hub
        self.rooms = rooms
        self.support = support
        self.ledger = ledger or MemoryOrderLedger()
        self.team_replies = team_replies or []
        self.metrics = metrics
        self.sync = sync  # with Redis (several nodes): room changes shared with every node
        self._hosts: dict[str, dict[str, str]] = {}  # room → host user → name (watchers)
        self._pending_counts: set[str] = set()  # rooms with a coalesced counters update due
        self.coalesce_s = 0.25
        hub.handle(RoomWatch, self.on_watch)
        hub.handle(RoomUnwatch, self.on_unwatch)
        hub.handle(RoomOnScreen, self.on_on_screen)
        hub.handle(RoomStock, self.on_stock)
        hub.handle(RoomPromoUpsert, self.on_promo_upsert)
        hub.handle(RoomPromoStop, self.on_promo_stop)
        hub.handle(RoomPromoStart, self.on_promo_start)
        hub.handle(RoomAnnounce, self.on_announce)
        hub.handle(RepliesList, self.on_replies)
        # conversation counts shown on the host panel move with conversation state
        ev = support.events
        ev.subscribe(ConversationOpened, lambda e: self._conversation_changed(e.conversation))
        ev.subscribe(ConversationEscalated, lambda e: self._conversation_changed(e.conversation))
        ev.subscribe(AgentAssigned, lambda e: self._conversation_changed(e.conversation))
        ev.subscribe(ConversationResolved, lambda e: self._conversation_changed(e.conversation))

    # --- views -----------------------------------------------------------------------------
    def counters(self, room: Room) -> dict[str, Any]:
        c = room.counters()
        convs = [x for x in self.support.store.all() if x.room == room.id]
        c["open_conversations"] = sum(1 for x in convs if x.state != "resolved")
        c["queue"] = sum(1 for e in self.support.router.queue if e.room == room.id)
        return c

    def state_event(self, room: Room) -> RoomStateEvent:
        s = room.snapshot()
        # hosts that watched this room and still have a socket here (O(hosts), not O(sessions))
        hosts = [{"user": u, "name": n} for u, n in self._hosts.get(room.id, {}).items()
                 if self.hub.online(u)]
        return RoomStateEvent(room=s["room"], version=s["version"], title=s["title"],
                              host=s["host"], currency=s["currency"], products=s["products"],
                              promotions=s["promotions"], policies=s["policies"],
                              on_screen=s["on_screen"], counters=self.counters(room),
                              announcements=s["announcements"], hosts_online=hosts)

    async def publish_change(self, room: Room, change: dict[str, Any]) -> None:
        kind = change.get("kind")
        ev = RoomUpdate(room=room.id, version=room.version, change=change,
                        counters=self.counters(room),
                        products=[p.to_dict() for p in room.knowledge.products]
                        if kind in ("stock", "order") else None,
                        promotions=[p.to_dict() for p in room.knowledge.promotions]
                        if kind in ("promotion", "order") else None,
                        hosts_online=self.state_event(room).hosts_online if kind == "hosts" else None)
        await self.hub.publish(room_topic(room.id), ev)

    async def _conversation_changed(self, conv) -> None:
        """Conversation counts move with every open/escalation/assignment; in a flash sale
        that is thousands per second, each a broadcast to every watcher. Coalesce: at most
        one ``conversations`` update per room every ``coalesce_s``."""
        if conv.room in self._pending_counts or self.rooms.get(conv.room) is None:
            return
        self._pending_counts.add(conv.room)

        async def later(room_id=conv.room):
            await asyncio.sleep(self.coalesce_s)
            self._pending_counts.discard(room_id)
            await self.publish_change(self.rooms.get(room_id), {"kind": "conversations"})
        asyncio.get_running_loop().create_task(later())

    # --- access ----------------------------------------------------------------------------
    def _room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown room {room_id!r}")
        return room

    def _check_claim(self, req: Request, room_id: str) -> None:
        if req.role in ("viewer", "host") and req.claims.room and req.claims.room != room_id:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"your token is for room {req.claims.room!r}, not {room_id!r}")
        if req.role == "host" and not req.claims.room:
            raise ProtocolError(ErrorCode.FORBIDDEN, "host tokens must carry a room claim")

    def _host_room(self, req: Request, room_id: str) -> Room:
        room = self._room(room_id)
        self._check_claim(req, room_id)
        return room

    def _journal(self) -> RoomEditJournal | None:
        j = getattr(self.ledger, "journal", None)
        return j if isinstance(j, RoomEditJournal) else None

    def _edited_room(self, req: Request, room_id: str) -> Room:
        """The room a host edits; refused before anything changes while the store holds
        an earlier write it could not commit (single node with a store)."""
        room = self._host_room(req, room_id)
        j = self._journal()
        if j is not None and (why := j.refusing()) is not None:
            raise not_saved(why)
        return room

    # --- handlers --------------------------------------------------------------------------
    async def on_watch(self, req: Request[RoomWatch]):
        room = self._host_room(req, req.msg.room)
        self.hub.watch(req.session, room_topic(room.id))
        if req.role == "host":
            self._hosts.setdefault(room.id, {})[req.user] = req.claims.display_name
            req.reply(self.state_event(room))
            await self.publish_change(room, {"kind": "hosts"})  # agents see the host online
            return None
        return self.state_event(room)

    async def on_unwatch(self, req: Request[RoomUnwatch]):
        self.hub.unwatch(req.session, room_topic(req.msg.room))
        return None

    async def on_on_screen(self, req: Request[RoomOnScreen]):
        room = self._host_room(req, req.msg.room)
        await self._apply(req, room, room.set_on_screen(req.msg.sku))

    async def on_stock(self, req: Request[RoomStock]):
        room = self._edited_room(req, req.msg.room)
        await self._apply(req, room, room.set_stock(req.msg.sku, req.msg.stock))

    async def on_promo_upsert(self, req: Request[RoomPromoUpsert]):
        room = self._edited_room(req, req.msg.room)
        if not req.msg.promotion.get("id"):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "room.promo.upsert: promotion.id is required")
        await self._apply(req, room, room.upsert_promotion(req.msg.promotion,
                                                           self.support.limits))

    async def on_promo_stop(self, req: Request[RoomPromoStop]):
        room = self._edited_room(req, req.msg.room)
        await self._apply(req, room, room.set_promotion_active(req.msg.promotion, False))

    async def on_promo_start(self, req: Request[RoomPromoStart]):
        room = self._edited_room(req, req.msg.room)
        await self._apply(req, room, room.set_promotion_active(req.msg.promotion, True))

    async def on_announce(self, req: Request[RoomAnnounce]):
        room = self._host_room(req, req.msg.room)
        text = req.msg.text.strip()
        if not text or len(text) > 1000:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                "room.announce: 'text' must be 1–1000 characters")
        host = Author(role="host", user=req.user, name=req.claims.display_name)
        await self.announce(room, text, host, ack=lambda: req.reply({"type": "ack"}))

    async def announce(self, room: Room, text: str, author: Author, *,
                       conversations: bool = True,
                       ack: Callable[[], None] | None = None) -> dict[str, Any]:
        """Announce ``text`` in ``room``: watchers see it, new conversations get it pinned,
        and (``conversations``) every open conversation gets it pinned and posted. One path
        for a host's ``room.announce``, a pinned radar answer and surge's notice."""
        change = room.announce(text, author.name or author.user)
        if self.sync is not None:
            await self.sync.announce(room, change)
        if ack is not None:
            ack()
        a = change["announcement"]
        await self.hub.publish(room_topic(room.id), RoomAnnouncement(room.id, a["text"], a["ts"], a["by"]))
        if conversations:
            for conv in self.support.store.all():
                if conv.room == room.id and conv.state != "resolved":
                    await self.support.backend.set_fields(conv, pinned=conv.pinned + [a])
                    await self.support.post(conv, author, text, kind="announcement")
        await self.publish_change(room, change)
        return a

    async def _apply(self, req: Request, room: Room, change: dict[str, Any]) -> None:
        j = self._journal()
        if j is not None and change.get("kind") in ("stock", "promotion"):
            try:  # durable before the host is answered (the edit stays applied here)
                await j.room_edited(room)
            except Exception as e:
                raise not_saved(str(e) or e.__class__.__name__) from None
        if self.sync is not None:
            await self.sync.store.save(room, change)
            await self.sync.announce(room, change)
        req.reply({"type": "ack", "version": room.version})
        await self.publish_change(room, change)

    async def on_replies(self, req: Request[RepliesList]):
        room = self._room(req.msg.room)
        items = search(self.team_replies + room_replies(room), req.msg.q)
        return RepliesReply(replies=[r.to_wire() for r in items])

    # --- shop order events -------------------------------------------------------------------
    async def place_order(self, room: Room, body: dict[str, Any]) -> OrderOutcome:
        """Place the order ``body`` describes (a shop's JSON object); the outcome says what the
        shop is answered. Watchers, other nodes and :class:`~.events.OrderPlaced` subscribers
        hear of any change."""
        order = _parse_order(body)
        logctx.bind(user=order.user)  # the viewer it is for, on the request's log lines
        with tracing.span("order.place", attributes={"livedesk.room": room.id}) as span:
            outcome = await self.ledger.place(room, order)
            span.set_attribute("livedesk.order.status", outcome.status)
            span.set_attribute("livedesk.order.repeated", outcome.repeated)
            log.debug("order %s in room %s: %s%s", order.order_id, room.id, outcome.status,
                      " (repeat)" if outcome.repeated else "")
            if self.metrics:
                self.metrics.orders.labels(
                    result="repeat" if outcome.repeated else
                    ("accepted" if outcome.status == 200
                     else outcome.body.get("error", "refused"))).inc()
            if outcome.change is not None:
                if self.sync is not None:
                    await self.sync.announce(room, outcome.change)
                await self.publish_change(room, outcome.change)
                self.support.events.publish(OrderPlaced(room, order, outcome))
        return outcome


def _parse_order(body: dict) -> Order:
    for name, typ in (("order_id", str), ("user", str), ("sku", str)):
        if not isinstance(body.get(name), typ) or not body[name]:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"field {name!r} must be a non-empty string")
    qty = body.get("qty")
    if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "field 'qty' must be an integer ≥ 1")
    return Order(order_id=body["order_id"], user=body["user"], sku=body["sku"], qty=qty)
