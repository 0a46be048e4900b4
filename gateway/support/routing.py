"""Routing state: agent presence and load, and the queue, as this node's replica holds them.

The :class:`Router` owns agent status/load and the queue on a node; only the backend's
replica changes them (from change records). Who gets the next conversation is decided by
``rules.assign_next`` / ``rules.pick_agent`` (the least-loaded live, available agent under
capacity; ties go to whoever was assigned least recently), the same rule on one node and
on many.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

AGENT_STATUSES = ("available", "away", "break", "offline")


@dataclass
class Agent:
    user: str
    name: str
    status: str = "offline"
    since: float = field(default_factory=time.time)
    capacity: int = 5
    conversations: set[str] = field(default_factory=set)
    last_assigned: float = 0.0
    paused: bool = False  # fatigue guard (workspace): no new assignments until a status is set

    @property
    def load(self) -> int:
        return len(self.conversations)

    def to_wire(self) -> dict:
        return {"user": self.user, "name": self.name, "status": self.status,
                "since": self.since, "load": self.load, "capacity": self.capacity}


@dataclass
class QueueEntry:
    conversation: str
    room: str
    viewer: str
    since: float


class Router:
    def __init__(self, default_capacity: int = 5,
                 reachable: Callable[[str], bool] | None = None) -> None:
        self.default_capacity = default_capacity
        self.agents: dict[str, Agent] = {}
        self.queue: deque[QueueEntry] = deque()
        self._reachable = reachable or (lambda user: True)
        self._wait_ewma_s = 30.0  # recent queue wait, for estimates

    # --- agents ----------------------------------------------------------------------------
    def agent(self, user: str, name: str | None = None) -> Agent:
        a = self.agents.get(user)
        if a is None:
            a = self.agents[user] = Agent(user=user, name=name or user,
                                          capacity=self.default_capacity)
        elif name:
            a.name = name
        return a

    def reachable(self, user: str) -> bool:
        """Whether ``user`` can be reached from this node (the predicate given at start)."""
        return self._reachable(user)

    def available_agents(self) -> list[Agent]:
        return [a for a in self.agents.values()
                if a.status == "available" and self._reachable(a.user)]

    # --- queue -----------------------------------------------------------------------------
    def enqueue(self, conversation: str, room: str, viewer: str, front: bool = False,
                since: float | None = None) -> None:
        if any(e.conversation == conversation for e in self.queue):
            return
        e = QueueEntry(conversation, room, viewer, since if since is not None else time.time())
        if front:
            self.queue.appendleft(e)
        else:
            self.queue.append(e)

    def remove(self, conversation: str) -> bool:
        for e in list(self.queue):
            if e.conversation == conversation:
                self.queue.remove(e)
                return True
        return False

    def position(self, conversation: str) -> int | None:
        for i, e in enumerate(self.queue):
            if e.conversation == conversation:
                return i + 1
        return None

    def estimated_wait_s(self, position: int) -> float:
        free = sum(max(0, a.capacity - a.load) for a in self.available_agents())
        if position <= free:
            return 0.0
        n = max(1, len(self.available_agents()))
        return round(self._wait_ewma_s * position / n, 1)

    # --- waits ----------------------------------------------------------------------------
    def note_wait(self, waited_s: float) -> None:
        """Feed the wait estimate with a real queue wait."""
        self._wait_ewma_s = 0.8 * self._wait_ewma_s + 0.2 * max(waited_s, 5.0)

    def attach(self, conversation: str, agent: Agent, at: float | None = None) -> None:
        agent.conversations.add(conversation)
        agent.last_assigned = at if at is not None else time.time()

    def release(self, conversation: str, agent_user: str | None) -> None:
        if agent_user and agent_user in self.agents:
            self.agents[agent_user].conversations.discard(conversation)

    def snapshot(self) -> list[dict]:
        now = time.time()
        return [{"conversation": e.conversation, "room": e.room, "viewer": e.viewer,
                 "position": i + 1, "waited_s": round(now - e.since, 1)}
                for i, e in enumerate(self.queue)]
