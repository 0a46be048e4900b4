"""The support rules, each written once: read state, decide, return typed changes.

Every step a backend offers (open, append, escalate, assign the next conversation, resolve,
transfer, set an agent's status, set fields, write a record) is one plain function here. It
reads through a :class:`State` (never mutates it), and returns a :class:`Step`: the changes
to apply and what to answer the caller; or it refuses with a :class:`ProtocolError` whose
code and text clients see.

Why functions over a read-only view: both backends run the very same decision.
``MemoryBackend`` evaluates it against its replica and applies the changes at once (no
``await`` in between, so nothing can interleave). ``RedisBackend`` evaluates it against its
replica through a view that notes what was read, and commits the changes with one generic
script that first checks that Redis still holds what was read (else it catches up and
decides again). Neither backend holds a rule of its own.

Agent liveness is a predicate the caller passes in (``live``): in one process "the agent
has a socket here" (``hub.online``), across nodes "its node wrote a heartbeat lately".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from signaling import ErrorCode, ProtocolError

from .changes import (
    READ_FIELD,
    AgentStatus,
    Attached,
    ConversationOpened,
    Dequeued,
    FieldsSet,
    MessageAppended,
    Queued,
    RecordPut,
    Released,
    SupportChange,
    read_mark_n,
)
from .conversation import Author, Conversation
from .routing import Agent

T = TypeVar("T")


class State(Protocol):
    """What a rule may read. Implementations: ``backend.ReplicaView`` (the node's replica)
    and ``redis_backend.GuardedView`` (the same, noting each read for the commit's check)."""

    def conversation(self, cid: str) -> Conversation | None: ...

    def known(self, cid: str) -> bool:
        """Whether ``cid`` exists (a read of nothing else about it)."""
        ...

    def open_for(self, room: str, viewer: str) -> Conversation | None: ...

    def open_count(self, viewer: str) -> int: ...

    def queued(self, i: int) -> str | None:
        """The conversation at position ``i`` (0: the head) of the queue, if any."""
        ...

    def agent(self, user: str) -> Agent | None: ...

    def agents(self) -> Sequence[Agent]: ...

    def record(self, namespace: str, key: str) -> Any: ...


@dataclass(frozen=True)
class Step(Generic[T]):
    """A decided step: ``changes`` to apply (in order, atomically) and ``result`` for the
    caller. No changes: nothing to write (the answer is already true)."""
    changes: tuple[SupportChange, ...]
    result: T


# --- refusals (the texts clients see) ---------------------------------------------------------

def conversation_full(conv_id: str, what: str) -> ProtocolError:
    return ProtocolError(ErrorCode.TOO_LARGE,
                         f"conversation {conv_id!r} has reached its limit of {what}; "
                         f"close it and open a new one")


def too_many_open(viewer_open: int) -> ProtocolError:
    return ProtocolError(ErrorCode.RATE_LIMITED,
                         f"you have {viewer_open} open conversations, the most allowed; "
                         f"close one first")


def unknown_conversation(cid: str) -> ProtocolError:
    return ProtocolError(ErrorCode.NOT_FOUND, f"unknown conversation {cid!r}")


# --- conversations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Opened:
    cid: str
    created: bool


def open_conversation(s: State, *, cid: str, room: str, viewer: str, name: str,
                      greeting: tuple[Author, str] | None, origin: str | None, max_open: int,
                      now: float) -> Step[Opened]:
    """The viewer's open conversation in ``room``, or a new one (``cid``) with the greeting
    as message 1. ``max_open`` > 0: a new one is refused while the viewer has that many
    open, in any room."""
    conv = s.open_for(room, viewer)
    if conv is not None:
        return Step((), Opened(conv.id, False))
    if max_open > 0:
        n_open = s.open_count(viewer)
        if n_open >= max_open:
            raise too_many_open(n_open)
    changes: list[SupportChange] = [ConversationOpened(cid, room, viewer, name, now)]
    if greeting is not None:
        author, text = greeting
        changes.append(MessageAppended(cid, 1, author, text, now, None, "system", {}, origin))
    return Step(tuple(changes), Opened(cid, True))


@dataclass(frozen=True)
class Appended:
    n: int  # the message's number (the existing one's for a repeat)
    repeated: bool


def append(s: State, cid: str, *, author: Author, text: str, cmid: str | None,
           kind: str | None, meta: Mapping[str, Any] | None, origin: str | None,
           cap: tuple[int, int] | None, now: float) -> Step[Appended]:
    """Message ``n + 1``. A repeated ``client_msg_id`` (per author) answers the original.
    A resolved conversation takes server lines (``kind``) only. ``cap`` = ``(messages, text
    bytes)`` bounds a client's message (0: no limit)."""
    conv = s.conversation(cid)
    if conv is None:
        raise unknown_conversation(cid)
    if cmid is not None:
        prev = conv.by_client_id.get(f"{author.user}:{cmid}")
        if prev is not None:
            return Step((), Appended(prev.n, True))
    if conv.state == "resolved" and not kind:
        raise ProtocolError(ErrorCode.BAD_STATE, "conversation is resolved; open a new one")
    if cap is not None:
        max_n, max_bytes = cap
        if max_n > 0 and len(conv.messages) >= max_n:
            raise conversation_full(cid, f"{max_n} messages")
        if max_bytes > 0 and conv.text_bytes + len(text.encode("utf-8")) > max_bytes:
            raise conversation_full(cid, f"{max_bytes} bytes of text")
    n = len(conv.messages) + 1
    return Step((MessageAppended(cid, n, author, text, now, cmid, kind, dict(meta or {}),
                                 origin),), Appended(n, False))


def escalate(s: State, cid: str, *, reason: str, now: float) -> Step[bool]:
    """A conversation with the bot joins the queue's tail; any other state: nothing."""
    conv = s.conversation(cid)
    if conv is None or conv.state != "bot":
        return Step((), False)
    return Step((FieldsSet(cid, {"state": "queued", "escalated_at": now,
                                 "escalation_reason": reason}),
                 Queued(cid, now, False)), True)


def resolve(s: State, cid: str, *, by: str, now: float) -> Step[bool]:
    """Close a conversation (out of the queue, off its agent's load); ``by`` is kept."""
    conv = s.conversation(cid)
    if conv is None or conv.state == "resolved":
        return Step((), False)
    return Step((Dequeued(cid), Released(cid, conv.agent),
                 FieldsSet(cid, {"state": "resolved", "resolved_at": now, "resolved_by": by})),
                True)


def set_fields(s: State, cid: str, fields: Mapping[str, Any]) -> Step[bool]:
    """Set fields of a conversation that exists (an unknown one: nothing)."""
    if not s.known(cid):
        return Step((), False)
    return Step((FieldsSet(cid, dict(fields)),), True)


def mark_read(s: State, conv: Conversation, user: str, mark: Mapping[str, Any]) -> Step[bool]:
    """Keep ``user``'s latest read mark of ``conv`` (``mark``: ``{n, message_id, role, ts}``)
    when it is later in the log than the one held; an earlier or equal one changes nothing.
    Reads only whether the conversation exists: a message appended meanwhile does not make
    the mark stale (the Redis write is itself last-writer-wins on ``n``)."""
    if not s.known(conv.id) or read_mark_n(mark) <= read_mark_n(conv.read_marks.get(user)):
        return Step((), False)
    return Step((FieldsSet(conv.id, {READ_FIELD + user: dict(mark)}),), True)


# --- routing ----------------------------------------------------------------------------------

def pick_agent(agents: Sequence[Agent], live: Callable[[str], bool],
               exclude: str | None = None, given: Mapping[str, int] | None = None,
               at: Mapping[str, float] | None = None) -> Agent | None:
    """Who gets the next conversation: an available, unpaused, live agent under capacity;
    the least loaded, then the one assigned least recently (fair rotation). ``given`` /
    ``at``: conversations given to agents earlier in the same step, and when."""
    given = given or {}
    at = at or {}
    best: Agent | None = None
    best_key: tuple[int, float] = (0, 0.0)
    for a in agents:
        load = a.load + given.get(a.user, 0)
        if (a.status != "available" or a.paused or load >= a.capacity or a.user == exclude
                or not live(a.user)):
            continue
        key = (load, at.get(a.user, a.last_assigned))
        if best is None or key < best_key:
            best, best_key = a, key
    return best


@dataclass(frozen=True)
class Assigned:
    cid: str
    agent: str


def assign_batch(s: State, *, live: Callable[[str], bool], now: float,
                 most: int) -> Step[tuple[Assigned, ...]]:
    """Up to ``most`` of the queue's first conversations still waiting, each to
    :func:`pick_agent`'s choice (counting what this step gave already). Heads no longer
    waiting (resolved, taken) are dropped on the way, agent or not."""
    changes: list[SupportChange] = []
    done: list[Assigned] = []
    given: dict[str, int] = {}
    at: dict[str, float] = {}
    i = 0
    while len(done) < most and (cid := s.queued(i)) is not None:
        i += 1
        conv = s.conversation(cid)
        if conv is None or conv.state != "queued":
            changes.append(Dequeued(cid))
            continue
        a = pick_agent(s.agents(), live, given=given, at=at)
        if a is None:
            break
        given[a.user] = given.get(a.user, 0) + 1
        at[a.user] = now
        changes += [Dequeued(cid), Attached(cid, a.user, now),
                    FieldsSet(cid, {"state": "assigned", "agent": a.user,
                                    "agent_name": a.name, "assigned_at": now})]
        done.append(Assigned(cid, a.user))
    return Step(tuple(changes), tuple(done))


def assign_next(s: State, *, live: Callable[[str], bool], now: float) -> Step[Assigned | None]:
    """:func:`assign_batch` of one."""
    step = assign_batch(s, live=live, now=now, most=1)
    return Step(step.changes, step.result[0] if step.result else None)


def transfer(s: State, cid: str, *, to_agent: str | None, now: float) -> Step[str | None]:
    """Move an assigned conversation to ``to_agent`` (available, under capacity) or back to
    the queue's head. The result is the previous agent."""
    conv = s.conversation(cid)
    if conv is None:
        raise unknown_conversation(cid)
    if conv.state != "assigned":
        raise ProtocolError(ErrorCode.BAD_STATE,
                            f"only an assigned conversation can be transferred (it is {conv.state})")
    old = conv.agent
    if to_agent:
        t = s.agent(to_agent)
        if t is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown agent {to_agent!r}")
        if t.user == old:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "conversation is already with that agent")
        if t.status != "available" or t.load >= t.capacity:
            raise ProtocolError(ErrorCode.BAD_STATE,
                                f"agent {to_agent!r} is {t.status} with {t.load}/{t.capacity} conversations")
        return Step((Released(cid, old), Attached(cid, t.user, now),
                     FieldsSet(cid, {"state": "assigned", "agent": t.user, "agent_name": t.name,
                                     "assigned_at": now})), old)
    return Step((Released(cid, old),
                 FieldsSet(cid, {"state": "queued", "agent": None, "agent_name": None}),
                 Queued(cid, now, True)), old)


def set_status(s: State, user: str, *, status: str, name: str | None, capacity: int | None,
               paused: bool, default_capacity: int, capacities: Mapping[str, int],
               now: float) -> Step[None]:
    """An agent's status (``since`` moves only when it changes). Capacity: the one given,
    else the configured one for this agent, else what it had, else the default."""
    a = s.agent(user)
    cap = capacity or capacities.get(user) or (a.capacity if a else default_capacity)
    return Step((AgentStatus(user=user, name=name or (a.name if a else user), status=status,
                             since=now if (a is None or a.status != status) else a.since,
                             capacity=cap, paused=paused,
                             last_assigned=a.last_assigned if a else 0.0),), None)


# --- workspace records ------------------------------------------------------------------------

@dataclass(frozen=True)
class Put:
    written: bool
    value: Any  # what the record holds now (the refused write's current value)


def put(s: State, namespace: str, key: str, value: Any, *, if_absent: bool,
        expect: Mapping[str, Any] | None, expires_at: float | None) -> Step[Put]:
    """Write a record; ``if_absent``: only when there is none; ``expect``: only when the
    current value has those fields. An unconditional write reads nothing (last writer wins)."""
    if if_absent or expect is not None:
        cur = s.record(namespace, key)
        if if_absent and cur is not None:
            return Step((), Put(False, cur))
        if expect is not None and (not isinstance(cur, dict)
                                   or any(cur.get(k) != v for k, v in expect.items())):
            return Step((), Put(False, cur))
    return Step((RecordPut(namespace, key, value, expires_at),), Put(True, value))
