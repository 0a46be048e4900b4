"""Conversations: a viewer's support thread in one room, and its append-only message log.

:class:`ConversationStore` is the single owner of conversation state on a node. Every
change is one synchronous method (no ``await`` inside), which is what makes "two concurrent
opens give one conversation" and "a repeated client_msg_id is stored once" true without
locks in one process. The Redis store (scale-out issue) keeps the same method contract,
with each method one Lua script.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

STATES = ("bot", "queued", "assigned", "resolved")


# meta keys of a server-worded message (see StoredMessage.text_key_fields)
TEXT_KEY = "text_key"
TEXT_PARAMS = "params"


def server_text(key: str, **params: Any) -> dict[str, Any]:
    """The ``meta`` entries that make a stored message a keyed server text: data, no words."""
    return {TEXT_KEY: key, TEXT_PARAMS: params}


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
    n: int = 0  # position in the conversation log, 1-based (the log's order for everyone)

    def to_history(self) -> dict[str, Any]:
        """The form used in ``conversation.messages`` and handoff context (no seq)."""
        d = {"message_id": self.message_id, "conversation": self.conversation,
             "from": self.author.to_wire(), "text": self.text,
             "client_msg_id": self.client_msg_id, "ts": self.ts}
        if self.kind:
            d["kind"] = self.kind
        if self.meta.get("attachments"):  # the one meta key every reader sees
            d["attachments"] = self.meta["attachments"]
        d.update(self.text_key_fields())
        return d

    def text_key_fields(self) -> dict[str, Any]:
        """``text_key`` + ``params`` of a server-worded message (docs/protocol.md "Server
        texts"): the page words it in its own language; ``text`` stays for old clients. They
        live in ``meta`` so that the stored form (and its replication) is unchanged."""
        key = self.meta.get(TEXT_KEY) if self.meta else None
        if not key:
            return {}
        return {"text_key": key, "params": dict(self.meta.get(TEXT_PARAMS) or {})}


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
    # the name the viewer chose (conversation.open ``name``): shown as a nickname, never as
    # ``viewer_name``, which is always the token's
    viewer_nickname: str | None = None
    resolved_by: str | None = None  # viewer | agent | system
    text_bytes: int = 0  # UTF-8 bytes of all message texts (the per-conversation limit)
    # user → their latest read mark {n, message_id, role, ts} (changes.READ_FIELD): part of
    # the state so that a page that reloads shows the other side's read mark again
    read_marks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def viewer_ref(self) -> dict[str, Any]:
        """The viewer as every event shows it: the token's ``name``, and the viewer's own
        ``nickname`` only as that."""
        d: dict[str, Any] = {"user": self.viewer, "name": self.viewer_name}
        if self.viewer_nickname:
            d["nickname"] = self.viewer_nickname
        return d

    def members(self) -> list[str]:
        return [u for u in (self.viewer, self.agent) if u]

    def is_member(self, user: str) -> bool:
        return user == self.viewer or (self.agent is not None and user == self.agent)

    def agent_ref(self) -> dict[str, Any] | None:
        if not self.agent:
            return None
        return {"user": self.agent, "name": self.agent_name or self.agent}

    def read_wire(self) -> list[dict[str, Any]]:
        """The read marks as the ``read`` event words them (without ``type``): what a
        snapshot carries (``read_marks``), oldest mark first."""
        return [{"by": {"role": m.get("role", ""), "user": u}, "message_id": m["message_id"],
                 "state": "read", "ts": m.get("ts")}
                for u, m in sorted(self.read_marks.items(), key=lambda kv: kv[1].get("n", 0))]

    def viewer_messages(self) -> list[str]:
        return [m.text for m in self.messages if m.author.role == "viewer" and not m.kind]

    def summary(self) -> dict[str, Any]:
        return {"conversation": self.id, "room": self.room, "state": self.state,
                "viewer": self.viewer_ref(),
                "agent": self.agent_ref(), "created_at": self.created_at,
                "mood": self.mood,
                "last_message": self.messages[-1].to_history() if self.messages else None}


class ConversationStore:
    """This node's copy of every conversation. Only the backend's replica mutates it."""

    def __init__(self) -> None:
        self._convs: dict[str, Conversation] = {}
        self._open_by_viewer: dict[tuple[str, str], str] = {}  # (room, viewer) → conversation
        self._open_ids: dict[str, set[str]] = {}  # viewer → its unresolved conversations

    def get(self, conv_id: str) -> Conversation | None:
        return self._convs.get(conv_id)

    def all(self) -> list[Conversation]:
        return list(self._convs.values())

    def create(self, cid: str, room: str, viewer: str, name: str, created_at: float) -> Conversation:
        conv = self._convs.get(cid)
        if conv is None:
            conv = Conversation(id=cid, room=room, viewer=viewer, viewer_name=name,
                                created_at=created_at)
            self._convs[cid] = conv
            self._open_by_viewer[(room, viewer)] = cid
            self._open_ids.setdefault(viewer, set()).add(cid)
        return conv

    def _uncount(self, conv: Conversation) -> None:
        ids = self._open_ids.get(conv.viewer)
        if ids is not None:
            ids.discard(conv.id)
            if not ids:
                del self._open_ids[conv.viewer]

    def open_count(self, viewer: str) -> int:
        """How many conversations ``viewer`` has that are not resolved, in every room."""
        return len(self._open_ids.get(viewer, ()))

    def add(self, conv: Conversation, m: StoredMessage) -> None:
        conv.messages.append(m)
        conv.text_bytes += len(m.text.encode("utf-8", "replace"))
        if m.client_msg_id is not None:
            conv.by_client_id[f"{m.author.user}:{m.client_msg_id}"] = m

    def closed(self, conv: Conversation) -> None:
        self._uncount(conv)
        key = (conv.room, conv.viewer)
        if self._open_by_viewer.get(key) == conv.id:
            del self._open_by_viewer[key]

    def truncate(self, conv: Conversation, n: int) -> None:
        """Keep the first ``n`` messages (the state store lost the rest: see
        ``RedisBackend._resync``)."""
        del conv.messages[n:]
        conv.text_bytes = sum(len(m.text.encode("utf-8", "replace")) for m in conv.messages)
        conv.by_client_id = {k: m for k, m in conv.by_client_id.items() if m.n <= n}

    def prune(self, before: float) -> list[Conversation]:
        """Forget conversations resolved before ``before`` (the retention policy) and return
        them. Why: a node keeps every conversation it has applied; without a limit a
        long-running node grows with every sale, and the sweeps that walk all conversations
        (idle close) slow down with it."""
        gone = [c for c in self._convs.values()
                if c.state == "resolved" and (c.resolved_at or c.created_at) < before]
        for c in gone:
            self._uncount(c)
            del self._convs[c.id]
            key = (c.room, c.viewer)
            if self._open_by_viewer.get(key) == c.id:
                del self._open_by_viewer[key]
        return gone

    def forget(self, conv: Conversation) -> None:
        """Drop ``conv`` entirely (its viewer was erased: nothing of it may stay)."""
        self._uncount(conv)
        self._convs.pop(conv.id, None)
        key = (conv.room, conv.viewer)
        if self._open_by_viewer.get(key) == conv.id:
            del self._open_by_viewer[key]

    def open_for(self, room: str, viewer: str) -> Conversation | None:
        cid = self._open_by_viewer.get((room, viewer))
        conv = self._convs.get(cid) if cid else None
        return conv if conv and conv.state != "resolved" else None

    def for_viewer(self, viewer: str) -> list[Conversation]:
        return [c for c in self._convs.values() if c.viewer == viewer]

    def for_agent(self, agent: str) -> list[Conversation]:
        return [c for c in self._convs.values() if c.agent == agent and c.state == "assigned"]
