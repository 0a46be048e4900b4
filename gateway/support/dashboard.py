"""Dashboard data: the team's figures per room and per agent, on demand and pushed live.

Owns the figures behind ``GET /api/dashboard`` (admin bearer token; its HTTP side is in
``gateway/http_api.py``), ``dashboard.watch`` (admin socket) and the ticker that, at most
every 500 ms and only when the figures changed, publishes a ``dashboard`` event on the
``dashboard`` topic and the supervisor's ``agents`` view on the ``admins`` topic. Figures
are computed from the state owners (conversations, router, CSAT, outcomes, actions) rather
than kept twice; Prometheus holds the same events as counters.

Every input is replicated state (conversations, router, and the ``outcome``, ``conversion``,
``csat`` and ``granted`` records), so every node computes the same figures; and each node
pushes them to *its own* watchers only (a push through the bus would reach every node's
admins once per node). ``node`` says which node computed a push.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from signaling import Hub, Request
from signaling.events import SessionLive
from signaling.protocol import Event, Message, message

from .actions import ADMINS_TOPIC
from .wellbeing import AgentsView

log = logging.getLogger(__name__)

DASHBOARD_TOPIC = "dashboard"
OUTCOMES = ("resolved_by_bot", "resolved_by_agent", "abandoned")


@message("dashboard.watch", roles=("admin",), settle=True)
class DashboardWatch(Message):
    """Reply: the current ``dashboard``; then a push whenever the figures change (≤ 2/s)."""


@dataclass
class DashboardEvent(Event):
    TYPE: ClassVar[str] = "dashboard"
    ts: float
    node: str = ""
    totals: dict = field(default_factory=dict)
    rooms: list = field(default_factory=list)
    agents: list = field(default_factory=list)


def _p50(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 2) if xs else None


def _avg(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 2) if xs else None


class Dashboard:
    def __init__(self, hub: Hub, support, rooms, csat, outcomes, actions, wellbeing,
                 interval_s: float = 0.5, node: str = ""):
        self.hub = hub
        self.support = support
        self.rooms = rooms
        self.csat = csat
        self.outcomes = outcomes
        self.actions = actions
        self.wellbeing = wellbeing
        self.interval_s = interval_s
        self.node = node
        self._last_fig: str | None = None
        self._last_agents: str | None = None
        hub.handle(DashboardWatch, self.on_watch)
        support.events.subscribe(SessionLive, lambda e: self._on_live(e.session))

    def _on_live(self, session) -> None:
        if session.role == "admin":
            self.hub.watch(session, ADMINS_TOPIC)

    # --- figures -----------------------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        # open conversations from the replica; ended ones from their outcome records (a node
        # holds in memory only the resolved conversations it saw end, not older ones)
        convs = [c for c in self.support.store.all() if c.state != "resolved"]
        ended = list(self.outcomes.records.values())
        ratings = list(self.csat.ratings.values())

        def block(cs, es, rs, conversions, comp) -> dict[str, Any]:
            counts = {"open": 0, "bot": 0, "queued": 0, "assigned": 0, **{o: 0 for o in OUTCOMES}}
            frt = []
            for c in cs:
                counts["open"] += 1
                counts[c.state] += 1
                if c.first_agent_reply_at is not None and c.escalated_at is not None:
                    frt.append(c.first_agent_reply_at - c.escalated_at)
            for e in es:
                if e["outcome"] in counts:
                    counts[e["outcome"]] += 1
                if e.get("frt") is not None:
                    frt.append(e["frt"])
            return {"conversations": counts, "frt_p50_s": _p50(frt),
                    "csat_avg": _avg([r.rating for r in rs]), "csat_count": len(rs),
                    "conversions": conversions, "compensation": comp}

        def comp_of(items) -> dict[str, float]:
            out: dict[str, float] = {}
            for g in items:
                out[g["kind"]] = round(out.get(g["kind"], 0) + g["amount"], 2)
            return out

        rooms = []
        for room in self.rooms:
            b = block([c for c in convs if c.room == room.id],
                      [e for e in ended if e["room"] == room.id],
                      [r for r in ratings if r.room == room.id],
                      sum(1 for x in self.outcomes.conversions if x.room == room.id),
                      comp_of(g for g in self.actions.granted if g["room"] == room.id))
            b.update(room=room.id, title=room.knowledge.room.title,
                     queue=sum(1 for e in self.support.router.queue if e.room == room.id))
            rooms.append(b)
        agents = []
        for a in self.wellbeing.view():
            b = block([c for c in convs if c.agent == a["user"]],
                      [e for e in ended if e.get("agent") == a["user"]],
                      [r for r in ratings if r.agent == a["user"]],
                      sum(1 for x in self.outcomes.conversions if x.agent == a["user"]),
                      comp_of(g for g in self.actions.granted if g["agent"] == a["user"]))
            b.update(a)
            agents.append(b)
        totals = block(convs, ended, ratings, len(self.outcomes.conversions),
                       comp_of(self.actions.granted))
        totals["queue"] = len(self.support.router.queue)
        totals["agents"] = {}
        for a in self.support.router.agents.values():
            totals["agents"][a.status] = totals["agents"].get(a.status, 0) + 1
        totals["pending_approvals"] = sum(1 for ap in self.actions.approvals.values()
                                          if ap.status == "pending")
        return {"totals": totals, "rooms": rooms, "agents": agents}

    def event(self) -> DashboardEvent:
        return DashboardEvent(ts=time.time(), node=self.node, **self.figures())

    # --- delivery ----------------------------------------------------------------------------
    async def on_watch(self, req: Request[DashboardWatch]):
        self.hub.watch(req.session, DASHBOARD_TOPIC)
        return self.event()

    async def tick(self) -> None:
        fig = self.figures()
        for a in fig["agents"]:
            a.pop("in_status_s", None)  # moves every tick by itself: not a change
        key = json.dumps(fig, sort_keys=True, default=str)
        if key != self._last_fig:
            self._last_fig = key
            self.hub.publish_local(DASHBOARD_TOPIC, self.event())
        view = self.wellbeing.view()
        akey = json.dumps([{k: v for k, v in a.items() if k != "in_status_s"} for a in view],
                          sort_keys=True)
        if akey != self._last_agents:
            self._last_agents = akey
            self.hub.publish_local(ADMINS_TOPIC, AgentsView(view))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.tick()
            except Exception:
                log.exception("dashboard tick failed")
