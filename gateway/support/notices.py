"""Proactive notices: the shop tells affected viewers about a problem before they ask.

Owns what ``POST /api/rooms/{room}/notices`` does (its HTTP side, a ``service`` token whose
room claim must match, is in ``gateway/http_api.py``) and who counts as affected:

* ``skus``: viewers who viewed, carted or opened support on those SKUs in the room
  (browsing), or whose orders in the room contain them (commerce adapter);
* ``orders``: the owners of those orders (orders of another room are not this room's
  business and are skipped);
* ``announcement``: every viewer with an open conversation in the room or watching it.

Each affected viewer gets a ``message`` of kind ``notice`` in their open conversation in
the room (opened if needed) and a ``notice`` event for the widget. The reply is
``{notified, conversations}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from signaling import ErrorCode, Hub, ProtocolError
from signaling.protocol import Event

from .browsing import BrowsingStore
from .commerce import CommerceAdapter, CommerceError, ViewerOrders
from .conversation import Author
from .room import Room

log = logging.getLogger(__name__)

NOTICE_KINDS = ("logistics_delay", "restock", "announcement")
NOTICE_AUTHOR = Author(role="system", user="system", name="直播间通知")
MAX_LIST = 500


@dataclass
class NoticeEvent(Event):
    TYPE: ClassVar[str] = "notice"
    room: str
    kind: str
    text: str
    conversation: str


def _str_list(body: dict, name: str) -> list[str]:
    v = body.get(name)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v) or len(v) > MAX_LIST:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"field {name!r} must be a list of up to {MAX_LIST} non-empty strings")
    return list(dict.fromkeys(v))


class Notices:
    def __init__(self, hub: Hub, support, browsing: BrowsingStore, adapter: CommerceAdapter,
                 orders: ViewerOrders, known_viewers: Callable[[str], set[str]] | None = None):
        self.hub = hub
        self.support = support
        self.browsing = browsing
        self.adapter = adapter
        self.orders = orders
        self.known_viewers = known_viewers or (lambda room: set())

    async def affected(self, room_id: str, kind: str, skus: list[str],
                       order_ids: list[str]) -> list[str]:
        users: dict[str, None] = {}
        if skus:
            want = set(skus)
            for u in self.browsing.viewers(room_id):
                if want & set(self.browsing.skus(u, room_id, ("product_view", "add_to_cart",
                                                              "support_opened"))):
                    users[u] = None
            candidates = set(self.known_viewers(room_id)) - set(users)
            results = await asyncio.gather(*(self.orders.fetch_quietly(u, 2.0) for u in candidates))
            for u, orders in zip(candidates, results, strict=False):
                if any(o.get("sku") in want and o.get("user") == u and o.get("room", room_id) == room_id
                       for o in orders or ()):
                    users[u] = None
        for oid in order_ids:
            try:
                o = await self.adapter.order(oid)
            except CommerceError as e:
                log.warning("notice: order %s: %s", oid, e)
                continue
            if o and o.get("user") and o.get("room", room_id) == room_id:
                users[o["user"]] = None
        if kind == "announcement":
            for c in self.support.store.all():
                if c.room == room_id and c.state != "resolved":
                    users[c.viewer] = None
            topic = f"room:{room_id}"
            for s in list(self.hub.sessions.values()):
                if s.role == "viewer" and s.live and s.attached and topic in s.attrs.get("topics", ()):
                    users[s.user] = None
        return list(users)

    async def post(self, room: Room, body: dict[str, Any]) -> dict[str, Any]:
        """Send the notice ``body`` describes (a shop's JSON object) to the viewers it
        affects in ``room``; the answer is ``{notified, conversations}``."""
        room_id = room.id
        kind = body.get("kind")
        if kind not in NOTICE_KINDS:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"field 'kind' must be one of {list(NOTICE_KINDS)}")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 1000:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "field 'text' must be 1–1000 characters")
        skus, order_ids = _str_list(body, "skus"), _str_list(body, "orders")
        for sku in skus:
            if room.knowledge.product(sku) is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown sku {sku!r} in room {room_id!r}")
        if kind != "announcement" and not skus and not order_ids:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"a {kind} notice needs 'skus' or 'orders'")
        text = text.strip()
        convs = []
        for user in await self.affected(room_id, kind, skus, order_ids):
            conv, _ = await self.support.open_conversation(room_id, user, user)
            await self.support.post(conv, NOTICE_AUTHOR, text, kind="notice",
                                    meta={"notice": kind})
            await self.hub.send_to_user(user, NoticeEvent(room_id, kind, text, conv.id))
            convs.append(conv.id)
        return {"notified": len(convs), "conversations": convs}
