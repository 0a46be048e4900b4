"""Conversations: a viewer's support thread in one room, and its append-only message log.

:class:`ConversationStore` is the single owner of conversation state on a node. Every
change is one synchronous method (no ``await`` inside), which is what makes "two concurrent
opens give one conversation" and "a repeated client_msg_id is stored once" true without
locks in one process. The Redis store (scale-out issue) keeps the same method contract,
with each method one Lua script.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

STATES = ("bot", "queued", "assigned", "resolved")


@dataclass
class Author:
    role: str
    user: str
    name: str | None = None

    def to_wire(self) -> dict[str, Any]:
        d = {"role": self.role, "user": self.user}
        if self.name:
            d["name"] = self.name
        return d


@dataclass
class StoredMessage:
    message_id: str
    conversation: str
    author: Author
    text: str
    client_msg_id: str | None
    ts: float
    kind: str | None = None  # None for chat; "announcement" | "notice" | "system"
    meta: dict[str, Any] = field(default_factory=dict)  # bot intent/mood, never sent to viewers

    def to_history(self) -> dict[str, Any]:
        """The form used in ``conversation.messages`` and handoff context (no seq)."""
        d = {"message_id": self.message_id, "conversation": self.conversation,
             "from": self.author.to_wire(), "text": self.text,
             "client_msg_id": self.client_msg_id, "ts": self.ts}
        if self.kind:
            d["kind"] = self.kind
        return d


@dataclass
class Conversation:
    id: str
    room: str
    viewer: str
    viewer_name: str
    state: str = "bot"
    agent: str | None = None
    agent_name: str | None = None
    messages: list[StoredMessage] = field(default_factory=list)
    by_client_id: dict[str, StoredMessage] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    escalated_at: float | None = None
    assigned_at: float | None = None
    first_agent_reply_at: float | None = None
    resolved_at: float | None = None
    escalation_reason: str | None = None
    mood: str = "neutral"
    pinned: list[dict[str, Any]] = field(default_factory=list)

    def members(self) -> list[str]:
        return [u for u in (self.viewer, self.agent) if u]

    def is_member(self, user: str) -> bool:
        return user == self.viewer or (self.agent is not None and user == self.agent)

    def agent_ref(self) -> dict[str, Any] | None:
        if not self.agent:
            return None
        return {"user": self.agent, "name": self.agent_name or self.agent}

    def viewer_messages(self) -> list[str]:
        return [m.text for m in self.messages if m.author.role == "viewer" and not m.kind]

    def summary(self) -> dict[str, Any]:
        return {"conversation": self.id, "room": self.room, "state": self.state,
                "viewer": {"user": self.viewer, "name": self.viewer_name},
                "agent": self.agent_ref(), "created_at": self.created_at,
                "mood": self.mood,
                "last_message": self.messages[-1].to_history() if self.messages else None}


class ConversationStore:
    """In-memory owner of every conversation on this node."""

    def __init__(self) -> None:
        self._convs: dict[str, Conversation] = {}
        self._open_by_viewer: dict[tuple[str, str], str] = {}  # (room, viewer) → conversation
        self._ids = itertools.count(1)

    def get(self, conv_id: str) -> Conversation | None:
        return self._convs.get(conv_id)

    def all(self) -> list[Conversation]:
        return list(self._convs.values())

    def open(self, room: str, viewer: str, name: str) -> tuple[Conversation, bool]:
        """The viewer's open conversation in ``room``, created if there is none."""
        key = (room, viewer)
        cid = self._open_by_viewer.get(key)
        if cid is not None:
            conv = self._convs[cid]
            if conv.state != "resolved":
                return conv, False
        conv = Conversation(id="c_" + secrets.token_urlsafe(9), room=room, viewer=viewer,
                            viewer_name=name)
        self._convs[conv.id] = conv
        self._open_by_viewer[key] = conv.id
        return conv, True

    def open_for(self, room: str, viewer: str) -> Conversation | None:
        cid = self._open_by_viewer.get((room, viewer))
        conv = self._convs.get(cid) if cid else None
        return conv if conv and conv.state != "resolved" else None

    def append(self, conv: Conversation, author: Author, text: str,
               client_msg_id: str | None = None, kind: str | None = None,
               meta: dict[str, Any] | None = None) -> tuple[StoredMessage, bool]:
        """Append a message; returns (message, duplicate). Duplicates are not stored again."""
        if client_msg_id is not None:
            prev = conv.by_client_id.get(f"{author.user}:{client_msg_id}")
            if prev is not None:
                return prev, True
        msg = StoredMessage(message_id=f"m_{next(self._ids)}_{secrets.token_hex(3)}",
                            conversation=conv.id, author=author, text=text,
                            client_msg_id=client_msg_id, ts=time.time(), kind=kind,
                            meta=meta or {})
        conv.messages.append(msg)
        if client_msg_id is not None:
            conv.by_client_id[f"{author.user}:{client_msg_id}"] = msg
        return msg, False

    def for_viewer(self, viewer: str) -> list[Conversation]:
        return [c for c in self._convs.values() if c.viewer == viewer]

    def for_agent(self, agent: str) -> list[Conversation]:
        return [c for c in self._convs.values() if c.agent == agent and c.state == "assigned"]
