"""Calls and their participants: the state, owned by :class:`CallRegistry`.

A :class:`Call` belongs to one conversation and goes ``ringing → connecting → active →
ended`` (``ringing`` may go straight to ``ended``: declined, missed). Participants are the
users in the call (the requester from the start, the callee once they accept, an invited
host once they join); ``invited`` holds hosts asked but not yet in. Every method here is
synchronous (no ``await``), so a change and the state it leads to can never interleave with
another change; ``service.py`` decides who is told and drives the media.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .peer import Peer

CALL_STATES = ("ringing", "connecting", "active", "ended")


@dataclass
class Participant:
    user: str
    role: str
    audio: bool = True
    video: bool = True
    peer: Peer | None = None
    gen: int = 0  # generation of the current peer connection (bumped on every rebuild)
    dropped: bool = False  # socket gone, inside the grace period
    # the display name of the participant's token (tiles say "小王 · 观众", not a user id)
    name: str | None = None
    restart: bool = False  # came back after a drop: its next rtc.offer rebuilds the peer
    # its connection was offered while the call rang (early media, the requester only): until
    # it is up, a new rtc.offer rebuilds it (with the TURN servers call.state connecting brings)
    early: bool = False
    grace: asyncio.TimerHandle | None = None

    @property
    def status(self) -> str:
        """``connecting`` | ``connected`` | ``reconnecting`` (extension field in call.state)."""
        if self.dropped or self.restart:
            return "reconnecting"
        if self.peer is not None and self.peer.connected:
            return "connected"
        return "connecting"

    def to_wire(self) -> dict[str, Any]:
        out = {"user": self.user, "role": self.role, "audio": self.audio,
               "video": self.video, "status": self.status}
        if self.name:
            out["name"] = self.name
        return out


@dataclass
class Call:
    id: str
    conversation: str
    room: str
    video: bool
    requester: str
    callee: str
    state: str = "ringing"
    reason: str | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    invited: dict[str, str] = field(default_factory=dict)  # host user → who invited them
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None  # became active
    # wall clock at which max_call_s ends it (set when accepted); TURN credentials handed to
    # its participants expire by then
    deadline: float | None = None
    ended_at: float | None = None
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.state != "ended"

    def audience(self, conversation_members: list[str]) -> list[str]:
        """Who hears about this call: the conversation's members, invited hosts, participants."""
        seen: dict[str, None] = {}
        for u in [*conversation_members, *self.invited, *self.participants]:
            seen.setdefault(u, None)
        return list(seen)

    def may_touch(self, user: str, conversation_members: list[str]) -> bool:
        return user in conversation_members or user in self.invited or user in self.participants

    def add(self, user: str, role: str, name: str | None = None) -> Participant:
        p = Participant(user=user, role=role, video=self.video, name=name)
        self.participants[user] = p
        self.invited.pop(user, None)
        return p

    def cancel_timer(self, name: str) -> None:
        t = self.timers.pop(name, None)
        if t is not None:
            t.cancel()

    def end(self, reason: str) -> None:
        self.state = "ended"
        self.reason = reason
        self.ended_at = time.time()
        for name in list(self.timers):
            self.cancel_timer(name)
        for p in self.participants.values():
            if p.grace is not None:
                p.grace.cancel()
                p.grace = None


class CallRegistry:
    """Live calls on this node, by id and by conversation (at most one live call each)."""

    def __init__(self) -> None:
        self._calls: dict[str, Call] = {}
        self._by_conversation: dict[str, str] = {}

    def create(self, conversation: str, room: str, video: bool, requester: str,
               requester_role: str, callee: str, requester_name: str | None = None) -> Call:
        call = Call(id="call_" + secrets.token_urlsafe(9), conversation=conversation,
                    room=room, video=video, requester=requester, callee=callee)
        call.add(requester, requester_role, requester_name)
        self._calls[call.id] = call
        self._by_conversation[conversation] = call.id
        return call

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def for_conversation(self, conversation: str) -> Call | None:
        cid = self._by_conversation.get(conversation)
        return self._calls.get(cid) if cid else None

    def with_participant(self, user: str) -> list[Call]:
        return [c for c in self._calls.values() if user in c.participants]

    def remove(self, call: Call) -> None:
        """Forget an ended call."""
        self._calls.pop(call.id, None)
        if self._by_conversation.get(call.conversation) == call.id:
            del self._by_conversation[call.conversation]

    def all(self) -> list[Call]:
        return list(self._calls.values())
