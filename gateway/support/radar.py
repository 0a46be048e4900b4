"""The question radar: what the room is asking, grouped, over the last 1, 5 and 15 minutes,
and the answers hosts pin to a group.

A *group* is one question about one product: the bot's intent, the product it found and
the size (``responder.question_keys``), e.g. "stock · 三合一防水冲锋衣 · M" for "M码还有吗"
and "is M in stock". Its key is ``"<intent>|<sku>|<slot>"`` (empty parts for none), which is
what ``room.pin`` names. For each group the radar counts the distinct viewers who asked and
the messages, and keeps two example texts.

:class:`Radar` owns the observations and the pins (built before the support service: the
responder wrapper asks it for pinned answers); :class:`RadarService` owns the protocol side
(``room.pin``, ``radar.watch``, the ``room.radar`` push to the room's hosts, coalesced to at
most one a second) and assembles the contract object with the anomaly flags and surge state.

Limits: at most ``MAX_OBSERVATIONS`` per room are kept (the oldest go first; at 5,000 a
minute that still covers the 15-minute window), the 50 largest groups are returned, at most
``MAX_PINS`` pinned answers per room.
State is per node: see docs/architecture.md for the multi-node behaviour.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from signaling import ErrorCode, Hub, ProtocolError, Request
from signaling.events import Events, SessionLive, SessionResumed
from signaling.limits import MaxChars
from signaling.protocol import Event, Message, message
from signaling.session import Session

from .conversation import Author
from .events import AnomalyCleared, AnomalyRaised, QuestionClassified, SurgeChanged
from .responder import INTENTS
from .room import RoomRegistry

if TYPE_CHECKING:
    from .anomaly import AnomalyDetector
    from .room_service import RoomService
    from .surge import Surge

log = logging.getLogger(__name__)

WINDOWS = (60, 300, 900)
PUSH_WINDOW = 300  # the window of the pushed ``room.radar`` object
MAX_OBSERVATIONS = 100_000  # per room
MAX_GROUPS = 50
PIN_MAX_CHARS = 500
MAX_PINS = 100  # per room; one more: ``too_large`` (unpin one first)
# questions that are not about anything a host can answer once for everyone
NOT_GROUPED = ("greeting", "human_request")


PINS_TOPIC = "radar-pins"  # bus topic: a pin taken on one node, applied on every node


def radar_topic(room: str) -> str:
    return f"radar:{room}"


def group_key(intent: str, sku: str | None, slot: str | None) -> str:
    return f"{intent}|{sku or ''}|{slot or ''}"


def parse_group(key: str) -> tuple[str, str | None, str | None]:
    """``(intent, sku, slot)`` of a group key, or ``bad_request`` naming what is wrong."""
    parts = key.split("|")
    if len(parts) != 3 or parts[0] not in INTENTS:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            "group must be '<intent>|<sku>|<slot>' with a known intent "
                            f"(one of {', '.join(INTENTS)})")
    return parts[0], parts[1] or None, parts[2] or None


@message("room.pin", roles=("host", "admin"))
class RoomPin(Message):
    """Pin ``text`` as the answer to a radar group (empty ``text`` unpins). Reply: ``ack``."""
    room: str
    group: Annotated[str, MaxChars(200)]
    text: Annotated[str, MaxChars(PIN_MAX_CHARS)]


@message("radar.watch", roles=("host", "supervisor", "admin"), settle=True)
class RadarWatch(Message):
    """Receive ``room.radar`` pushes for ``room`` (hosts of the room get them anyway).
    Reply: the current ``room.radar``."""
    room: str


@dataclass
class RoomRadar(Event):
    TYPE = "room.radar"
    room: str
    window: int
    groups: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    surge: dict[str, Any]


@dataclass(frozen=True)
class _Seen:
    ts: float
    viewer: str
    group: str
    text: str


@dataclass
class Pin:
    text: str
    by: str
    at: float


@dataclass
class _RoomState:
    seen: deque[_Seen] = field(default_factory=lambda: deque(maxlen=MAX_OBSERVATIONS))
    pins: dict[str, Pin] = field(default_factory=dict)


class Radar:
    """Observations and pins per room. Pure apart from the clock it is given."""

    def __init__(self, rooms: RoomRegistry, clock: Callable[[], float] = time.time):
        self.rooms = rooms
        self.clock = clock
        self._rooms: dict[str, _RoomState] = {}
        self.version = 0  # bumped on every change: the push loop's "anything new?"

    def _room(self, room: str) -> _RoomState:
        r = self._rooms.get(room)
        if r is None:
            r = self._rooms[room] = _RoomState()
        return r

    def observe(self, e: QuestionClassified) -> None:
        if e.intent in NOT_GROUPED or (e.intent == "other" and not e.sku):
            return
        if self.rooms.get(e.room) is None:
            return
        self._room(e.room).seen.append(
            _Seen(e.ts, e.viewer or "", group_key(e.intent, e.sku, e.slot), e.text))
        self.version += 1

    def groups(self, room: str, window: float, now: float | None = None) -> list[dict[str, Any]]:
        now = self.clock() if now is None else now
        r = self._rooms.get(room)
        if r is None:
            return []
        since = now - window
        acc: dict[str, dict[str, Any]] = {}

        def new_group() -> dict[str, Any]:
            return {"viewers": set(), "messages": 0, "examples": [], "after_pin": set()}

        for s in reversed(r.seen):
            if s.ts <= since:
                break
            g = acc.get(s.group)
            if g is None:
                g = acc[s.group] = new_group()
            g["viewers"].add(s.viewer)
            g["messages"] += 1
            if len(g["examples"]) < 2 and s.text not in g["examples"]:
                g["examples"].append(s.text)
            pin = r.pins.get(s.group)
            if pin is not None and s.ts >= pin.at:
                g["after_pin"].add(s.viewer)
        # a pinned group stays listed while its count falls to 0: the host sees the pin work
        for key in r.pins:
            acc.setdefault(key, new_group())
        out = []
        for key, g in acc.items():
            intent, sku, slot = parse_group(key)
            pin = r.pins.get(key)
            out.append({"group": key, "sku": sku, "intent": intent, "slot": slot,
                        "viewers": len(g["viewers"]), "messages": g["messages"],
                        "examples": g["examples"], "label": self.label(room, key),
                        "product": self.product_name(room, sku),
                        "pinned": pin.text if pin else None,
                        "pinned_at": pin.at if pin else None,
                        "viewers_since_pin": len(g["after_pin"]) if pin else None})
        out.sort(key=lambda g: (-g["viewers"], -g["messages"], g["group"]))
        return out[:MAX_GROUPS]

    def product_name(self, room: str, sku: str | None) -> str | None:
        """The product's name as the room's catalogue has it ("+"-joined for several; the
        SKU itself for one the room does not know), or ``None`` for no product: what the
        pages show, in whatever language the catalogue is."""
        if not sku:
            return None
        r = self.rooms.get(room)
        names = []
        for s in sku.split("+"):
            p = r.knowledge.product(s) if r is not None and s else None
            if s:
                names.append(p.name if p is not None else s)
        return "+".join(names) or None

    def label(self, room: str, key: str) -> str:
        """"stock · 三合一防水冲锋衣 · M": what a host reads."""
        intent, sku, slot = parse_group(key)
        return " · ".join(x for x in (intent, self.product_name(room, sku), slot) if x)

    # --- pins ------------------------------------------------------------------------------
    def pin(self, room: str, key: str, text: str, by: str) -> None:
        """Pin (or, with empty ``text``, unpin) the answer to a group."""
        intent, sku, slot = parse_group(key)
        r = self.rooms.get(room)
        if r is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown room {room!r}")
        for s in (sku or "").split("+"):
            if s and r.knowledge.product(s) is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown sku {s!r} in room {room!r}")
        pins = self._room(room).pins
        key = group_key(intent, sku, slot)
        if text:
            if key not in pins and len(pins) >= MAX_PINS:
                raise ProtocolError(ErrorCode.TOO_LARGE,
                                    f"room {room!r} has {MAX_PINS} pinned answers; unpin one first")
            pins[key] = Pin(text, by, self.clock())
        else:
            pins.pop(key, None)
        self.version += 1

    def pinned_answer(self, room: str, intent: str, sku: str | None,
                      slot: str | None) -> str | None:
        r = self._rooms.get(room)
        if r is None or not r.pins:
            return None
        pin = r.pins.get(group_key(intent, sku, slot))
        return pin.text if pin else None

    def pins(self, room: str) -> dict[str, Pin]:
        r = self._rooms.get(room)
        return dict(r.pins) if r else {}


class RadarService:
    """The radar over the protocol and REST: the contract object, ``room.pin``,
    ``radar.watch``, and the coalesced ``room.radar`` push."""

    def __init__(self, hub: Hub, rooms: RoomRegistry, radar: Radar, anomaly: AnomalyDetector,
                 surge: Surge, rooms_service: RoomService, events: Events,
                 push_s: float = 1.0):
        self.hub = hub
        self.rooms = rooms
        self.radar = radar
        self.anomaly = anomaly
        self.surge = surge
        self.rooms_service = rooms_service
        self.push_s = max(1.0, push_s)  # the contract: at most one push a second
        self._last: dict[str, str] = {}
        self._task: asyncio.Task | None = None
        events.subscribe(QuestionClassified, radar.observe)
        hub.handle(RoomPin, self.on_pin)
        hub.handle(RadarWatch, self.on_watch)
        events.subscribe(SessionLive, lambda e: self._host_watch(e.session))
        events.subscribe(SessionResumed, lambda e: self._host_watch(e.session))
        for kind in (AnomalyRaised, AnomalyCleared, SurgeChanged):
            events.subscribe(kind, self._changed)

    def _changed(self, e: object) -> None:
        self.radar.version += 1

    def snapshot(self, room: str, window: int = PUSH_WINDOW) -> dict[str, Any]:
        """The contract object of ``GET /api/rooms/{room}/radar`` and ``room.radar``."""
        if window not in WINDOWS:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"window must be one of {', '.join(map(str, WINDOWS))}")
        return {"room": room, "window": window,
                "groups": self.radar.groups(room, window),
                "flags": [{**f.to_wire(), "product": self.radar.product_name(room, f.sku)}
                          for f in self.anomaly.flags(room)],
                "surge": self.surge.state(room)}

    def event(self, room: str, window: int = PUSH_WINDOW) -> RoomRadar:
        s = self.snapshot(room, window)
        return RoomRadar(room=room, window=window, groups=s["groups"], flags=s["flags"],
                         surge=s["surge"])

    def _host_watch(self, session: Session) -> None:
        """The room's hosts get the radar without asking (their token names the room)."""
        room = session.claims.room if session.claims else None
        if session.role == "host" and room and self.rooms.get(room) is not None:
            self.hub.watch(session, radar_topic(room))

    def _room_for(self, req: Request, room_id: str) -> str:
        room = self.rooms.get(room_id)
        if room is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown room {room_id!r}")
        if req.role == "host" and req.claims.room != room_id:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"your token is for room {req.claims.room!r}, not {room_id!r}")
        return room.id

    async def on_watch(self, req: Request[RadarWatch]):
        room = self._room_for(req, req.msg.room)
        self.hub.watch(req.session, radar_topic(room))
        return self.event(room)

    async def on_pin(self, req: Request[RoomPin]):
        room_id = self._room_for(req, req.msg.room)
        text = req.msg.text.strip()
        by = req.claims.display_name or req.user
        self.radar.pin(room_id, req.msg.group, text, by)  # checked (and applied) here first
        # every node's bot quotes it: the other nodes apply it from the bus
        await self.hub.bus.publish(PINS_TOPIC, {"room": room_id, "group": req.msg.group,
                                                "text": text, "by": by})
        req.reply({"type": "ack"})
        if text:  # the widget shows it: an announcement of the room (not posted into chats)
            room = self.rooms.get(room_id)
            assert room is not None
            await self.rooms_service.announce(
                room, text, Author(role=req.role, user=req.user, name=req.claims.display_name),
                conversations=False)
        return None  # the next push (within a second) carries the pin

    async def push(self, room: str, force: bool = False) -> bool:
        """Publish ``room.radar`` if it changed since the last push (or ``force``)."""
        ev = self.event(room)
        body = json.dumps(ev.to_wire(), sort_keys=True, default=str)
        if not force and self._last.get(room) == body:
            return False
        self._last[room] = body
        await self.hub.publish(radar_topic(room), ev)
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.push_s)
            for room in self.rooms.ids():
                try:
                    await self.push(room)
                except Exception:
                    log.exception("radar push for %s failed", room)

    def _pin_from_bus(self, payload: dict[str, Any]) -> None:
        """A pin taken on any node (this one included: applying it again changes nothing)."""
        try:
            self.radar.pin(str(payload["room"]), str(payload["group"]), str(payload["text"]),
                           str(payload.get("by", "")))
        except (KeyError, ProtocolError) as e:
            log.warning("radar: pin from the bus not applied: %s", e)

    async def start(self) -> None:
        self.hub.bus.subscribe(PINS_TOPIC, self._pin_from_bus)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self.hub.bus.unsubscribe(PINS_TOPIC, self._pin_from_bus)
        if self._task is not None:
            self._task.cancel()
