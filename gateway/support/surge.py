"""Surge mode: a room under a flash sale's load.

A room enters surge when a promotion with ``starts_at`` begins, or when viewers' message rate
(per minute, over the last ``rate_window_s``) or its queue crosses the ``enter`` thresholds;
agents are warned ``warn_before_s`` (5 minutes) before a promotion's ``starts_at``. It leaves
by itself once the rate and the queue have stayed under the ``exit`` thresholds for
``calm_s``. While a room is in surge:

* a viewer's call request is answered with a **callback slot** ("we will call you back at
  about 20:35") instead of ringing an agent (``book_callback``, asked by the media plane
  through its port);
* a notice is pinned at the top of every open conversation of the room (an announcement);
* the bot keeps answering first and escalates only by its escalation rule, and queued viewers
  see their position and estimated wait (both as outside surge: ``service.py``).

Entering, leaving and the warning are typed events (:class:`~.events.SurgeChanged`,
:class:`~.events.SurgeWarned`): the dashboard and agents get ``surge.state`` /
``surge.warning`` on the agents topic, hosts see the state in ``room.radar``, and the
webhooks send them out. :class:`Surge` is the pure state machine (a clock passed in);
:class:`SurgeService` runs it. State is per node (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from signaling import Hub
from signaling.events import Events
from signaling.protocol import Event

from .conversation import Author, server_text
from .events import MessagePosted, SurgeChanged, SurgeWarned
from .room import RoomRegistry
from .service import AGENTS_TOPIC, BOT

if TYPE_CHECKING:
    from .conversation import Conversation
    from .room_service import RoomService

log = logging.getLogger(__name__)

NOTICE_ZH = "直播间咨询量较大：小助手会先为您解答，需要人工的问题将按顺序处理，请留意排队位置。"
CALLBACK_ZH = "当前咨询量较大，暂时无法接通语音；客服将在 {hhmm} 左右给您回电（该时段第 {n} 位）。"
MAX_CALLBACKS_PER_ROOM = 10_000


@dataclass(frozen=True)
class SurgeRule:
    """Thresholds and timings (``surge_*`` in docs/configuration.md)."""
    enter_messages_per_min: float = 120.0
    exit_messages_per_min: float = 60.0
    enter_queue: int = 20
    exit_queue: int = 5
    calm_s: float = 120.0
    warn_before_s: float = 300.0
    rate_window_s: float = 60.0
    callback_slot_s: float = 300.0
    callbacks_per_slot: int = 5
    callback_delay_s: float = 600.0


@dataclass(frozen=True)
class CallbackOffer:
    """What a viewer's call request gets during surge (read by the media plane's port)."""
    at: float
    position: int
    text: str
    hhmm: str = ""  # the slot's local time, the keyed text's parameter


@dataclass
class _RoomSurge:
    on: bool = False
    since: float | None = None
    reason: str = ""
    episode: str = ""
    calm_since: float | None = None
    messages: deque[float] = field(default_factory=deque)
    warned: set[tuple[str, float]] = field(default_factory=set)
    started: set[tuple[str, float]] = field(default_factory=set)
    slots: dict[float, int] = field(default_factory=dict)  # slot start → callbacks booked
    booked: dict[str, CallbackOffer] = field(default_factory=dict)  # conversation → offer


class Surge:
    """Surge state per room. ``queue_len(room)`` reads the room's queue length."""

    def __init__(self, rooms: RoomRegistry, queue_len: Callable[[str], int],
                 rule: SurgeRule | None = None):
        self.rooms = rooms
        self.queue_len = queue_len
        self.rule = rule or SurgeRule()
        self._rooms: dict[str, _RoomSurge] = {}

    def _room(self, room: str) -> _RoomSurge:
        r = self._rooms.get(room)
        if r is None:
            r = self._rooms[room] = _RoomSurge()
        return r

    def observe_message(self, room: str, ts: float) -> None:
        self._room(room).messages.append(ts)

    def rate_per_min(self, room: str, now: float) -> float:
        r = self._room(room)
        cutoff = now - self.rule.rate_window_s
        while r.messages and r.messages[0] <= cutoff:
            r.messages.popleft()
        return len(r.messages) * 60.0 / self.rule.rate_window_s

    def state(self, room: str) -> dict[str, Any]:
        r = self._rooms.get(room)
        if r is None:
            return {"on": False, "since": None, "reason": None}
        return {"on": r.on, "since": r.since, "reason": r.reason or None}

    def is_on(self, room: str) -> bool:
        r = self._rooms.get(room)
        return bool(r and r.on)

    def _set(self, room: str, r: _RoomSurge, on: bool, reason: str, now: float,
             episode: str = "") -> SurgeChanged:
        r.on, r.reason, r.calm_since = on, reason, None
        r.since = now if on else None
        if on:
            r.episode = episode or f"{reason}@{now:.3f}"
        else:
            r.slots.clear()
            r.booked.clear()
        return SurgeChanged(room=room, on=on, since=r.since, reason=reason, at=now,
                            episode=r.episode)

    def tick(self, now: float) -> list[SurgeWarned | SurgeChanged]:
        """Advance every room to ``now``: warnings, entering and leaving surge."""
        rule = self.rule
        out: list[SurgeWarned | SurgeChanged] = []
        for room in self.rooms:
            r = self._room(room.id)
            promo_start = promo_episode = None
            for p in room.knowledge.promotions:
                at = p.starts_at
                if at is None or not p.active:
                    continue
                key = (p.id, at)
                if at - rule.warn_before_s <= now < at and key not in r.warned:
                    r.warned.add(key)
                    out.append(SurgeWarned(room=room.id, promotion=p.id, starts_at=at))
                # a promotion that began while this node was not looking (within calm_s)
                # still starts surge; one long past does not
                if at <= now < at + max(rule.calm_s, 60.0) and key not in r.started:
                    r.started.add(key)
                    promo_start, promo_episode = p.id, f"{p.id}@{at}"
            rate = self.rate_per_min(room.id, now)
            queue = self.queue_len(room.id)
            if not r.on:
                reason = (f"promotion:{promo_start}" if promo_start else
                          "message_rate" if rate >= rule.enter_messages_per_min else
                          "queue" if queue >= rule.enter_queue else None)
                if reason:
                    out.append(self._set(room.id, r, True, reason, now,
                                         promo_episode or ""))
                continue
            if promo_start:  # a new sale while in surge: the calm clock starts again
                r.calm_since = None
            if rate < rule.exit_messages_per_min and queue <= rule.exit_queue:
                if r.calm_since is None:
                    r.calm_since = now
                if now - r.calm_since >= rule.calm_s:
                    out.append(self._set(room.id, r, False, "calm", now))
            else:
                r.calm_since = None
        return out

    def book_callback(self, room: str, conversation: str,
                      now: float) -> tuple[CallbackOffer, bool] | None:
        """A callback slot for ``conversation`` if ``room`` is in surge, else ``None``: the
        earliest ``callback_slot_s`` slot at least ``callback_delay_s`` away with room for
        one more; with ``True`` if newly booked (asking again gets the same slot, ``False``).
        Past ``MAX_CALLBACKS_PER_ROOM`` bookings the call rings as usual."""
        r = self._rooms.get(room)
        if r is None or not r.on:
            return None
        got = r.booked.get(conversation)
        if got is not None:
            return got, False
        if len(r.booked) >= MAX_CALLBACKS_PER_ROOM:
            return None
        step = self.rule.callback_slot_s
        slot = -(-(now + self.rule.callback_delay_s) // step) * step  # next slot boundary
        while r.slots.get(slot, 0) >= self.rule.callbacks_per_slot:
            slot += step
        n = r.slots[slot] = r.slots.get(slot, 0) + 1
        hhmm = time.strftime("%H:%M", time.localtime(slot))
        offer = CallbackOffer(at=slot, position=n, hhmm=hhmm,
                              text=CALLBACK_ZH.format(hhmm=hhmm, n=n))
        r.booked[conversation] = offer
        return offer, True


@dataclass
class SurgeState(Event):
    """Pushed on the agents topic (agents, supervisors' and admins' dashboards)."""
    TYPE = "surge.state"
    room: str
    on: bool
    since: float | None
    reason: str
    at: float


@dataclass
class SurgeWarning(Event):
    TYPE = "surge.warning"
    room: str
    promotion: str
    starts_at: float
    in_s: float


class SurgeService:
    """Runs :class:`Surge`: counts viewers' messages, ticks every ``tick_s``, tells agents
    and the dashboard, pins the notice, books callbacks for the media plane's port."""

    def __init__(self, surge: Surge, hub: Hub, events: Events, rooms_service: RoomService,
                 metrics: Any = None, tick_s: float = 1.0, notice: str = NOTICE_ZH,
                 clock: Callable[[], float] = time.time,
                 claim: Callable[[str], Awaitable[bool]] | None = None):
        self.surge = surge
        self.hub = hub
        self.events = events
        self.rooms_service = rooms_service
        self.metrics = metrics
        self.tick_s = tick_s
        self.notice = notice
        self.clock = clock
        self.claim = claim
        self._task: asyncio.Task | None = None
        events.subscribe(MessagePosted, self._on_message)

    async def _first(self, c: SurgeWarned | SurgeChanged) -> bool:
        """Is this node the one to announce ``c``? Every node sees a promotion's start (the
        room's knowledge is shared) and would warn, pin the notice and send the webhook once
        each; ``claim`` (a record written only if absent, shared by every node) lets the
        first one do it. Rate-based episodes are each node's own (docs/webhooks.md)."""
        if self.claim is None:
            return True
        if isinstance(c, SurgeWarned):
            key = f"warn|{c.room}|{c.promotion}@{c.starts_at}"
        else:
            key = f"{'on' if c.on else 'off'}|{c.room}|{c.episode}"
        try:
            return await self.claim(key)
        except Exception:
            log.exception("surge: claiming %s failed; announcing anyway", key)
            return True

    def _on_message(self, e: MessagePosted) -> None:
        if e.message.author.role == "viewer" and not e.message.kind:
            self.surge.observe_message(e.conversation.room, e.message.ts or self.clock())

    async def tick(self, now: float | None = None) -> list[SurgeWarned | SurgeChanged]:
        now = self.clock() if now is None else now
        changes = self.surge.tick(now)
        for c in changes:
            if isinstance(c, SurgeChanged) and self.metrics is not None:
                self.metrics.surge.labels(room=c.room).set(1 if c.on else 0)
            if not await self._first(c):
                continue  # another node announced this transition
            self.events.publish(c)
            if isinstance(c, SurgeWarned):
                log.info("surge warning: %s promotion %s starts at %.0f", c.room, c.promotion,
                         c.starts_at)
                await self.hub.publish(AGENTS_TOPIC, SurgeWarning(
                    room=c.room, promotion=c.promotion, starts_at=c.starts_at,
                    in_s=round(c.starts_at - now, 1)))
                continue
            log.info("surge %s in %s (%s)", "on" if c.on else "off", c.room, c.reason)
            await self.hub.publish(AGENTS_TOPIC, SurgeState(
                room=c.room, on=c.on, since=c.since, reason=c.reason, at=c.at))
            room = self.rooms_service.rooms.get(c.room)
            if c.on and room is not None and self.notice:
                await self.rooms_service.announce(room, self.notice, BOT)
        return changes

    async def offer_callback(self, conv: Conversation) -> CallbackOffer | None:
        """The media port's question: a callback slot instead of a ring? (``None``: ring.)
        The offer is also written into the conversation, so the agent who takes it sees it."""
        got = self.surge.book_callback(conv.room, conv.id, self.clock())
        if got is None:
            return None
        offer, fresh = got
        if not fresh:
            return offer
        if self.metrics is not None:
            self.metrics.callbacks.labels(room=conv.room).inc()
        await self.rooms_service.support.post(
            conv, Author(role="bot", user=BOT.user, name=BOT.name), offer.text, kind="system",
            meta={"callback_at": offer.at, "callback_position": offer.position,
                  # the pages word it in their own language (docs/protocol.md "Server texts")
                  **server_text("surge.callback", hhmm=offer.hhmm, n=offer.position)})
        return offer

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.tick()
            except Exception:
                log.exception("surge tick failed")

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
