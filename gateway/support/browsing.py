"""Browsing: what a viewer did in the stream before asking for help.

Owns ``browse.event`` (viewer → gateway: product viewed, added to cart, support opened with
the product then on screen, time in stream) and the per-viewer timeline behind it, bounded
per viewer and in the number of viewers. Its context provider adds ``browsing`` (the
timeline in the conversation's room), ``cart``, ``on_screen_at_open`` and
``time_in_stream_s`` to the handoff context an agent sees.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from signaling import ErrorCode, Hub, ProtocolError, Request
from signaling.events import Events
from signaling.protocol import Event, Message, message

from .conversation import Conversation
from .events import BrowseRecorded
from .room import RoomRegistry

BrowseKind = Literal["product_view", "add_to_cart", "support_opened", "stream_time"]
MAX_EVENTS_PER_VIEWER = 200
MAX_VIEWERS = 20000
CONTEXT_EVENTS = 50


@message("browse.event", roles=("viewer",))
class BrowseEvent(Message):
    room: str
    kind: BrowseKind
    sku: str | None = None
    seconds: float | None = None  # stream_time: total seconds in the stream so far
    ts: float | None = None  # client time (unix seconds); the server's time if absent/implausible


@dataclass
class BrowseAck(Event):
    TYPE: ClassVar[str] = "ack"
    stored: int


class BrowsingStore:
    """Per-viewer timelines: ``{kind, room, sku?, seconds?, ts}``, oldest first."""

    def __init__(self, per_viewer: int = MAX_EVENTS_PER_VIEWER, max_viewers: int = MAX_VIEWERS):
        self.per_viewer = per_viewer
        self.max_viewers = max_viewers
        self._events: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()

    def add(self, user: str, event: dict[str, Any]) -> int:
        q = self._events.get(user)
        if q is None:
            q = self._events[user] = deque(maxlen=self.per_viewer)
        self._events.move_to_end(user)
        q.append(event)
        while len(self._events) > self.max_viewers:
            self._events.popitem(last=False)
        return len(q)

    def replace(self, user: str, events: list[dict[str, Any]]) -> None:
        """Adopt a viewer's whole timeline (as replicated from whichever node recorded it)."""
        q = self._events[user] = deque(events, maxlen=self.per_viewer)
        self._events.move_to_end(user)
        while len(self._events) > self.max_viewers:
            self._events.popitem(last=False)
        del q

    def forget(self, user: str) -> None:
        self._events.pop(user, None)

    def timeline(self, user: str, room: str | None = None) -> list[dict[str, Any]]:
        return [dict(e) for e in self._events.get(user, ()) if room is None or e["room"] == room]

    def viewers(self, room: str) -> list[str]:
        return [u for u, q in self._events.items() if any(e["room"] == room for e in q)]

    def skus(self, user: str, room: str, kinds: tuple[str, ...]) -> list[str]:
        out: list[str] = []
        for e in self._events.get(user, ()):
            if e["room"] == room and e["kind"] in kinds and e.get("sku") and e["sku"] not in out:
                out.append(e["sku"])
        return out


class Browsing:
    """``browse.event`` handler plus the ``browsing`` context provider."""

    def __init__(self, hub: Hub, rooms: RoomRegistry, store: BrowsingStore | None = None,
                 events: Events | None = None, backend: Any = None,
                 ttl_s: float | None = None):
        self.rooms = rooms
        self.store = store or BrowsingStore()
        self.events = events  # BrowseRecorded goes there (the workspace warms its caches)
        self.backend = backend  # replicates timelines to every node (handoff may run anywhere)
        self.ttl_s = ttl_s  # a viewer's timeline is forgotten this long after its last event
        if backend is not None:
            backend.listen("browse", lambda user, v: self.store.replace(user, v["events"]),
                           forget=self.store.forget)
        hub.handle(BrowseEvent, self.on_browse)

    async def on_browse(self, req: Request[BrowseEvent]):
        msg: BrowseEvent = req.msg
        room = self.rooms.for_claims(req.claims, msg.room)
        now = time.time()
        ev: dict[str, Any] = {"kind": msg.kind, "room": msg.room,
                              "ts": msg.ts if msg.ts and now - 86400 < msg.ts <= now + 60 else now}
        if msg.kind in ("product_view", "add_to_cart") and not msg.sku:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"browse.event: {msg.kind} needs 'sku'")
        if msg.sku is not None:
            if room.knowledge.product(msg.sku) is None:
                raise ProtocolError(ErrorCode.NOT_FOUND,
                                    f"unknown sku {msg.sku!r} in room {msg.room!r}")
            ev["sku"] = msg.sku
        if msg.kind == "stream_time":
            if msg.seconds is None or not 0 <= msg.seconds <= 7 * 86400:
                raise ProtocolError(ErrorCode.BAD_REQUEST,
                                    "browse.event: stream_time needs 'seconds' in 0..604800")
            ev["seconds"] = round(msg.seconds, 1)
        if self.backend is not None:
            events = (self.store.timeline(req.user) + [ev])[-self.store.per_viewer:]
            await self.backend.put("browse", req.user, {"events": events}, ttl_s=self.ttl_s)
            n = len(events)
        else:
            n = self.store.add(req.user, ev)
        if self.events is not None:
            self.events.publish(BrowseRecorded(req.user, ev))
        return BrowseAck(stored=n)

    def context(self, conv: Conversation) -> dict[str, Any]:
        tl = self.store.timeline(conv.viewer, conv.room)
        opened = [e for e in tl if e["kind"] == "support_opened"]
        stream = [e["seconds"] for e in tl if e["kind"] == "stream_time"]
        timeline = [e for e in tl if e["kind"] != "stream_time"][-CONTEXT_EVENTS:]
        room = self.rooms.get(conv.room)
        for e in timeline:
            p = room.knowledge.product(e["sku"]) if room and e.get("sku") else None
            if p is not None:
                e["name"] = p.name
        return {"browsing": timeline,
                "cart": self.store.skus(conv.viewer, conv.room, ("add_to_cart",)),
                "on_screen_at_open": opened[-1].get("sku") if opened else None,
                "time_in_stream_s": max(stream) if stream else None}
