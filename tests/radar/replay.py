"""Replays a viewer stream through the real bot and the anomaly detector on a simulated
clock (the 30 minutes run in seconds): each message is classified by the offline bot through
the same :class:`~gateway.support.responder.ObservedResponder` the gateway wires, its
:class:`~gateway.support.events.QuestionClassified` feeds the detector, and the detector is
judged once per simulated second, as ``AnomalyService`` does every ``tick_s``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gateway.support.anomaly import AnomalyDetector, AnomalyRule, AnomalyService
from gateway.support.bot import OfflineBot
from gateway.support.events import AnomalyCleared, AnomalyRaised, QuestionClassified
from gateway.support.knowledge import Knowledge, demo_room_path
from gateway.support.responder import BotQuery, ObservedResponder
from signaling.events import Events
from tests.radar.stream import DURATION_S, Line

_BOT: OfflineBot | None = None


def bot() -> OfflineBot:
    global _BOT
    if _BOT is None:
        _BOT = OfflineBot()
        _BOT.warm_up()
    return _BOT


class _NoPins:
    def pinned_answer(self, room, intent, sku, slot):  # noqa: ANN001, ANN201
        return None


@dataclass
class Replay:
    raised: list[AnomalyRaised] = field(default_factory=list)
    cleared: list[AnomalyCleared] = field(default_factory=list)
    classified: list[QuestionClassified] = field(default_factory=list)


def replay(lines: list[Line], rule: AnomalyRule | None = None, tail_s: float = 900.0) -> Replay:
    """Run ``lines`` (then ``tail_s`` of silence, so flags can clear) and return what the
    detector raised and cleared, with simulated timestamps."""
    return asyncio.run(_replay(lines, rule, tail_s))


async def _replay(lines: list[Line], rule: AnomalyRule | None, tail_s: float) -> Replay:
    kb = Knowledge.load(demo_room_path())
    t0 = 1_700_000_000.0
    now = [t0]
    events = Events()
    service = AnomalyService(AnomalyDetector(rule), events, clock=lambda: now[0])
    out = Replay()
    events.subscribe(AnomalyRaised, out.raised.append)
    events.subscribe(AnomalyCleared, out.cleared.append)
    events.subscribe(QuestionClassified, out.classified.append)
    responder = ObservedResponder(bot(), _NoPins(), events, clock=lambda: now[0])
    next_tick = t0 + 1.0
    for line in lines:
        t = t0 + line.t
        while next_tick <= t:
            service.tick(next_tick)
            next_tick += 1.0
        now[0] = t
        await responder.respond(BotQuery(text=line.text, history=[], knowledge=kb,
                                         user=line.viewer, context={"conversation": "c"}))
    end = t0 + DURATION_S + tail_s
    while next_tick <= end:
        service.tick(next_tick)
        next_tick += 1.0
    for e in out.raised + out.cleared:  # seconds from the stream's start
        object.__setattr__(e, "since", e.since - t0)
        if isinstance(e, AnomalyCleared):
            object.__setattr__(e, "cleared_at", e.cleared_at - t0)
    return out
