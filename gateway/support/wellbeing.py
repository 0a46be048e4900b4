"""Agent wellbeing: capacity per agent, the fatigue guard and the supervisor's agents view.

Owns the per-agent capacities from configuration (applied when an agent comes online), the
run of consecutive negative-mood conversations each agent has resolved, and the fatigue
guard: after ``fatigue_threshold`` of them in a row (mood ``negative``/``angry`` as the bot
judged it at handoff), the agent gets ``agent.break_suggested`` and is *paused* (the
router's ``Agent.paused``: no new assignments) until they set a status again.
``supervisor.agents`` (admin) answers with every agent's status, time in status, load,
capacity, pause and run; changes are pushed to admins as ``agents`` by the workspace ticker.

An agent's run is a replicated record (``fatigue``: ``{run, guard}``), so every node shows
the same run, and an agent who reconnects to another node keeps theirs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from signaling import Hub, Request, Session
from signaling.events import SessionLive
from signaling.protocol import Event, Message, message

from .actions import ADMINS_TOPIC
from .conversation import Conversation
from .events import ConversationResolved

log = logging.getLogger(__name__)

NEGATIVE_MOODS = ("negative", "angry")


@message("supervisor.agents", roles=("admin",))
class SupervisorAgents(Message):
    """Every agent's status, load and wellbeing (admins also get ``agents`` pushes)."""


@dataclass
class AgentsView(Event):
    TYPE: ClassVar[str] = "agents"
    agents: list = field(default_factory=list)


@dataclass
class BreakSuggested(Event):
    TYPE: ClassVar[str] = "agent.break_suggested"
    agent: str
    consecutive: int


class Wellbeing:
    def __init__(self, hub: Hub, support, capacities: dict[str, Any] | None = None,
                 fatigue_threshold: int = 3):
        self.hub = hub
        self.support = support
        self.router = support.router
        self.capacities = {str(k): int(v) for k, v in (capacities or {}).items()}
        self.threshold = max(1, int(fatigue_threshold))
        self.consecutive: dict[str, int] = {}
        self._paused_by_guard: set[str] = set()
        hub.handle(SupervisorAgents, self.on_agents)
        support.events.subscribe(SessionLive, lambda e: self._on_live(e.session))
        support.events.subscribe(ConversationResolved, lambda e: self._on_resolved(e.conversation))
        support.backend.listen("fatigue", self._on_record)

    def _on_record(self, agent: str, rec: dict[str, Any]) -> None:
        self.consecutive[agent] = int(rec.get("run", 0))
        if rec.get("guard"):
            self._paused_by_guard.add(agent)
        else:
            self._paused_by_guard.discard(agent)

    def _on_live(self, session: Session) -> None:
        if session.role == "agent":
            a = self.router.agent(session.user, session.claims.name)
            if session.user in self.capacities:
                a.capacity = self.capacities[session.user]

    def run_of(self, agent: str) -> int:
        """The agent's current run; a status set since the guard paused them starts afresh."""
        a = self.router.agents.get(agent)
        if agent in self._paused_by_guard and (a is None or not a.paused):
            self._paused_by_guard.discard(agent)
            self.consecutive[agent] = 0
        return self.consecutive.get(agent, 0)

    def quick_self_close(self, conv: Conversation) -> bool:
        """The viewer closed ``conv`` within ``quick_close_s`` of its assignment: nothing an
        agent had to bear. Why: a viewer could open angry conversations and close them at
        once, pausing agents one by one and leaving innocent viewers queued."""
        limit = self.support.limits.quick_close_s
        return (conv.resolved_by == "viewer" and limit > 0 and conv.assigned_at is not None
                and (conv.resolved_at or time.time()) - conv.assigned_at < limit)

    async def _on_resolved(self, conv: Conversation) -> None:
        agent = conv.agent
        if not agent or self.quick_self_close(conv):
            return  # neither counted nor breaking the run
        run = self.run_of(agent)
        run = run + 1 if conv.mood in NEGATIVE_MOODS else 0
        self.consecutive[agent] = run  # at once: a second resolve on this node counts on it
        a = self.router.agents.get(agent)
        guard = run >= self.threshold and a is not None and not a.paused
        if guard:  # paused first: a node that saw the guard without the pause would reset it
            await self.support.backend.set_status(a.user, a.status, a.name, paused=True)
        rec = {"run": run, "guard": guard or agent in self._paused_by_guard}
        self._on_record(agent, rec)
        try:
            await self.support.backend.put("fatigue", agent, rec)
        except Exception as e:  # the state store is away: this node still knows
            log.warning("recording the run of %s failed: %s", agent, e)
        if guard:
            ev = BreakSuggested(agent, run)
            await self.hub.send_to_user(agent, ev)
            await self.hub.publish(ADMINS_TOPIC, ev)

    def view(self) -> list[dict[str, Any]]:
        now = time.time()
        out = []
        for a in self.router.agents.values():
            out.append({"user": a.user, "name": a.name, "status": a.status, "since": a.since,
                        "in_status_s": round(now - a.since, 1), "load": a.load,
                        "capacity": a.capacity, "paused": a.paused,
                        "consecutive_negative": self.run_of(a.user)})
        return sorted(out, key=lambda x: x["user"])

    async def on_agents(self, req: Request[SupervisorAgents]):
        return AgentsView(self.view())
