"""Support state on Redis: the rules' changes committed with a guard, one ordered change log.

Every key lives under the hash tag ``{ld}``, so each script runs on one Redis Cluster slot
(support chat is small next to a shard's throughput; rooms, orders and sessions use their own
tags and spread). Layout:

* ``ld:{ld}:conv:<cid>``  hash: room, viewer, viewer_name, state, agent, agent_name, n,
  bytes, queued_at, the other conversation fields, ...
* ``ld:{ld}:log:<cid>``   Stream: the conversation's messages, in log order (entry ``j``)
* ``ld:{ld}:open``        hash: ``room|viewer`` → cid of the open conversation
* ``ld:{ld}:vopen:<viewer>`` set of the viewer's unresolved conversations
* ``ld:{ld}:convs``       set of conversations not yet resolved (bootstrap)
* ``ld:{ld}:queue``       list of queued cids, head first
* ``ld:{ld}:agents``      hash: user → JSON {user, name, status, since, capacity, paused,
  last_assigned}
* ``ld:{ld}:agentv``      hash: user → number of the last change to the agent or its load
* ``ld:{ld}:hb``          hash: user → when the node holding the agent's socket last said
  it is there (written every 3 s; agent liveness for assignment)
* ``ld:{ld}:load:<user>`` set of the agent's assigned cids
* ``ld:{ld}:rec:<ns>``, ``ld:{ld}:recv:<ns>`` hashes: key → record JSON, key → number of
  its last change; ``ld:{ld}:recns`` the namespaces; ``ld:{ld}:recexp`` when each expires
* ``ld:{ld}:ops``         Stream: the change lists every node applies, in order; each entry
  carries ``s``, its number from the counter ``ld:{ld}:opseq`` (1, 2, 3, … with no hole).
  Capped by ``XADD MAXLEN ~ 500000``; with an archiver (Redis + PostgreSQL) also trimmed by
  the archiver to what it has written, minus the last minute (``gateway/archiver.py``)

How a step is decided and written: the rule (``rules.py``) runs against this node's replica
through a :class:`GuardedView`, which notes what the rule read as *guards* in Redis's terms
(a conversation's ``state``/``agent``/``n``, a queue position, the open-conversation index,
an agent's or a record's change number). :data:`COMMIT`, one generic script holding no
business rule, checks every guard, and only if Redis still holds what was read, performs the
writes the records project to (:meth:`RedisBackend._writes`), bumps ``opseq``, stamps the
change numbers and appends the records to ``ld:{ld}:ops``: all at once. A guard that no
longer holds means this node's replica was behind: it catches up with the log and runs the
rule again. A refusal or a step with nothing to change is checked the same way (so a
refusal is never based on a stale replica), without writing.

Why the numbers in ``s``: a Stream id says *when*, not *how many*. A node that fell more than
the Stream's ``MAXLEN`` behind (its tail lost Redis for a while), or a Redis that came back
with less than the node had applied (restarted without its data), would otherwise carry on
from wherever ``XREAD`` lands, with a replica that silently differs from Redis. A hole or a
step back in ``s`` makes the node rebuild its replica from the hashes instead
(:meth:`RedisBackend._resync`), and say so in its log. The same numbers serve as change
numbers of agents and records: they never repeat (unless Redis lost data, which a resync
repairs), so a record deleted and written again can never look unchanged to a guard.

A step returns once the local replica has applied its own entry, so a request's reply always
reflects its own change.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis

from signaling import ErrorCode, ProtocolError, logctx, tracing
from signaling.events import Events
from signaling.tasks import stop_task

from . import rules
from .backend import Hit, ReplicaView, SupportBackend, new_conversation_id
from .changes import (
    READ_FIELD,
    AgentStatus,
    Attached,
    ConversationOpened,
    Dequeued,
    FieldsSet,
    MessageAppended,
    Queued,
    RecordDeleted,
    RecordPut,
    Released,
    SupportChange,
    ViewerErased,
    is_conversation_field,
    list_from_wire,
    list_to_json,
    read_mark_n,
    record_about,
)
from .conversation import Conversation, ConversationStore
from .redis_commit import COMMIT
from .routing import Agent, Router

# XREAD's reply as redis-py returns it with decode_responses off (its own stubs say less):
# [(stream, [(entry id, {field: value})])]
XReadReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None

log = logging.getLogger(__name__)

P = "ld:{ld}:"
T = TypeVar("T")
# set once Redis holds the support state (a bootstrap found it, or a repopulation put it
# back): missing after that means Redis restarted without its data
POPULATED = P + "populated"
REPOPULATING = P + "repopulating"  # the lock (with its holder's token) of a repopulation
# viewer → {"conversations": [...], "at": when}: erasures the archiver has not finished yet
ERASING = P + "erasing"
# a repopulating node that died (or stalled) frees the lock after this long; every unit it
# writes extends it
REPOPULATE_LOCK_MS = 60_000

# a unit of change records to put back into Redis → "restored", or why not: "present" (Redis
# already held its subject) or "superseded" (the viewer opened another conversation there)
RestoreWriter = Callable[[Sequence[SupportChange]], Awaitable[str]]
# loads the archive and writes it through the writer (``gateway/restore.py``)
Repopulate = Callable[[RestoreWriter], Awaitable[object]]


class RepopulationLockLost(RuntimeError):
    """Another node took the repopulation over (this one was too slow): stop writing."""
BUSY = "state store is busy; retry"  # a step others kept overtaking until its deadline

PRELUDE = """
local P = ARGV[1]
local function emit(changes)
  local s = redis.call('INCR', P .. 'opseq')
  return redis.call('XADD', P .. 'ops', 'MAXLEN', '~', '500000', '*', 'c', cjson.encode(changes),
                    's', s)
end
"""

HIT = PRELUDE + """
-- one event of a sliding-window counter (the churn guard), unless the window is full
local k = P .. 'hits:' .. ARGV[2]
local now, window, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
local n = redis.call('ZCARD', k)
if n >= limit then
  local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
  return {0, n, tostring(tonumber(first[2]) + window - now)}
end
redis.call('ZADD', k, now, ARGV[6])
redis.call('PEXPIRE', k, math.ceil(window * 1000))
return {1, n + 1, '0'}
"""

EXPIRE_RECORDS = PRELUDE + """
local due = redis.call('ZRANGEBYSCORE', P .. 'recexp', '-inf', ARGV[2], 'LIMIT', 0,
                       tonumber(ARGV[3]))
if #due == 0 then return {0, ''} end
local changes = {}
for _, m in ipairs(due) do
  local sep = string.find(m, '\\n', 1, true)
  local ns, key = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
  redis.call('HDEL', P .. 'rec:' .. ns, key)
  redis.call('HDEL', P .. 'recv:' .. ns, key)
  redis.call('ZREM', P .. 'recexp', m)
  changes[#changes + 1] = {'rec_del', ns, key}
end
return {#due, emit(changes)}
"""


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _conv_key(cid: str) -> str:
    return f"{P}conv:{cid}"


def _field_text(v: Any) -> str:
    """A conversation field as its hash stores it (lists and objects as JSON)."""
    if isinstance(v, list | dict):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float):
        return repr(v)
    return str(v)


class GuardedView(ReplicaView):
    """The replica as a rule reads it, noting each read as a guard for :data:`COMMIT`.

    ``missing``: conversations Redis no longer holds (their keys expired, or Redis lost
    them) although this replica does; the rule sees them as unknown."""

    CONV_FIELDS = ["state", "agent", "n"]

    def __init__(self, replica, missing: set[str]) -> None:
        super().__init__(replica)
        self.missing = missing
        self.guards: list[list[Any]] = []
        self.conv_guards: dict[int, str] = {}  # guard index (1-based) → cid
        self._seen: set[str] = set()

    def _once(self, what: str) -> bool:
        if what in self._seen:
            return False
        self._seen.add(what)
        return True

    def _version(self, name: str) -> str:
        v = self.replica.versions.get(name, 0)
        return str(v) if v else ""

    def conversation(self, cid: str) -> Conversation | None:
        conv = None if cid in self.missing else self.replica.store.get(cid)
        if self._once("c:" + cid):
            want = (["", "", ""] if conv is None else
                    [conv.state, conv.agent or "", str(len(conv.messages))])
            self.guards.append(["H", _conv_key(cid), self.CONV_FIELDS, want])
            self.conv_guards[len(self.guards)] = cid
        return conv

    def known(self, cid: str) -> bool:
        there = cid not in self.missing and self.replica.store.get(cid) is not None
        if self._once("x:" + cid):
            self.guards.append(["X", _conv_key(cid), "1" if there else "0"])
        return there

    def open_for(self, room: str, viewer: str) -> Conversation | None:
        conv = self.replica.store.open_for(room, viewer)
        if self._once(f"o:{room}|{viewer}"):
            self.guards.append(["H", P + "open", [f"{room}|{viewer}"],
                                [conv.id if conv is not None else ""]])
        return conv

    def open_count(self, viewer: str) -> int:
        n = self.replica.store.open_count(viewer)
        if self._once("v:" + viewer):
            self.guards.append(["C", f"{P}vopen:{viewer}", str(n)])
        return n

    def queued(self, i: int) -> str | None:
        cid = super().queued(i)
        if self._once(f"q:{i}"):
            self.guards.append(["L", P + "queue", i, cid or ""])
        return cid

    def agent(self, user: str) -> Agent | None:
        if self._once("a:" + user):
            self.guards.append(["H", P + "agentv", [user], [self._version("a:" + user)]])
        return self.replica.router.agents.get(user)

    def agents(self) -> Sequence[Agent]:
        agents = list(self.replica.router.agents.values())
        users = [a.user for a in agents if self._once("a:" + a.user)]
        if users:
            self.guards.append(["H", P + "agentv", users,
                                [self._version("a:" + u) for u in users]])
        return agents

    def record(self, namespace: str, key: str) -> Any:
        name = f"r:{namespace}\n{key}"
        if self._once(name):
            self.guards.append(["H", f"{P}recv:{namespace}", [key], [self._version(name)]])
        return super().record(namespace, key)


class RedisBackend(SupportBackend):
    """Support state in Redis; this node's replica follows ``ld:{ld}:ops``."""

    HB_TTL_S = 10.0  # an agent whose node has not said it is there for longer: not live
    STEP_DEADLINE_S = 5.0  # a step still not committed after this long: ``unavailable``

    def __init__(self, redis: aioredis.Redis, store: ConversationStore, router: Router,
                 default_capacity: int = 5, capacities: dict[str, int] | None = None,
                 local_agents: Callable[[], Iterable[str]] | None = None,
                 url: str | None = None, metrics: Any = None,
                 retention_s: float = 0.0, events: Events | None = None,
                 repopulate: Repopulate | None = None, archived: bool = False) -> None:
        super().__init__(store, router, events)
        # with an archive (Redis + PostgreSQL): puts a Redis that lost its data back from
        # the archive (``gateway/restore.py``); None: a Redis that lost data stays empty
        self.repopulate = repopulate
        # an archiver copies the ops stream into PostgreSQL: it finishes each erasure there
        # (``erase_viewer``); without one the erasure cleans the stream itself
        self.archived = archived
        self.redis = redis
        self.url = url
        self.default_capacity = default_capacity
        self.capacities = capacities or {}
        self.local_agents: Callable[[], Iterable[str]] = local_agents or (lambda: [])
        self._s = {name: redis.register_script(src) for name, src in (
            ("commit", COMMIT), ("expire_records", EXPIRE_RECORDS), ("hit", HIT))}
        self.conflicts = 0  # commits refused because this node's replica was behind
        self._assigning = asyncio.Lock()
        self._ahead: deque[tuple[str, str]] = deque()  # assigned, not yet handed to a pump
        self._beats: dict[str, float] = {}  # user → last heartbeat, as last read
        self._beats_at = 0.0
        self._closing = False
        self._last_id = "0-0"
        self._last_seq: int | None = None  # ``s`` of the last entry applied (None: unknown)
        self.resyncs = 0  # how often the replica was rebuilt (a gap or a Redis that lost data)
        self.metrics = metrics
        self.retention_s = max(0.0, retention_s)  # TTL of a resolved conversation's keys; 0: none
        self._applied = asyncio.Event()
        self._tail: asyncio.Task | None = None
        self._beat: asyncio.Task | None = None
        self._tail_redis: aioredis.Redis | None = None
        self._side_tasks: set[asyncio.Task] = set()

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self._bootstrap()
        # a dedicated connection for the blocking XREAD, so it never holds a pool slot
        if self.url:
            self._tail_redis = aioredis.Redis.from_url(self.url, socket_connect_timeout=1.0)
        else:
            kw = dict(self.redis.connection_pool.connection_kwargs)
            self._tail_redis = aioredis.Redis(**{k: v for k, v in kw.items()
                                                if k in ("host", "port", "db", "password",
                                                         "username", "path")})
        self._tail = asyncio.get_running_loop().create_task(self._tail_loop(), name="ops-tail")
        self._beat = asyncio.get_running_loop().create_task(self._heartbeat_loop())

    async def close(self) -> None:
        self._closing = True  # a loop whose cancellation was swallowed ends at its next turn
        tail = self._tail_redis
        for t in (self._tail, self._beat, *self._side_tasks):
            # the tail's blocking XREAD may swallow the cancellation (signaling.tasks)
            await stop_task(t, tail.connection_pool.disconnect
                            if t is self._tail and tail is not None else None)
        if self._tail_redis is not None:
            await self._tail_redis.aclose()

    async def ready(self) -> bool:
        return self._tail is not None and not self._tail.done()

    async def _bootstrap(self) -> None:
        """Snapshot from the hashes, then follow the log from where the snapshot began.
        Changes in the overlap are applied again, which the replica tolerates. With an
        archive, a Redis that lost its data is repopulated first (or this node waits for
        the node that does it)."""
        await self.ensure_populated()
        self._last_id, self._last_seq = await self._position()
        changes, _, _, versions = await self._snapshot()
        on_message, self.replica.on_message = self.replica.on_message, None
        try:
            self.replica.apply(changes)  # no delivery for history
        finally:
            self.replica.on_message = on_message
        for name, v in versions.items():
            self.replica.versions[name] = max(v, self.replica.versions.get(name, 0))

    async def _position(self) -> tuple[str, int | None]:
        """Id and number of the log's last entry (read *before* a snapshot). One MULTI: with
        an empty Stream the number is the counter's, and a step between two separate reads
        would look like a step back later."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xrevrange(P + "ops", count=1)
            pipe.get(P + "opseq")
            last, seq = await pipe.execute()
        if not last:
            return "0-0", int(seq) if seq is not None else 0
        fields = last[0][1]
        return _s(last[0][0]), int(fields[b"s"]) if b"s" in fields else None

    async def ensure_populated(self) -> bool:
        """Make sure Redis holds the support state before this node reads it: True if it
        had lost it (then it was repopulated, by this node or another).

        Why a marker: an empty Redis looks the same as a new deployment's, and a replica
        that sees Redis go back cannot tell what Redis lost. :data:`POPULATED` is set once
        Redis holds the state; missing means it restarted without its data. One node takes
        :data:`REPOPULATING` (``SET NX`` with a token and a TTL) and writes the archive back
        through :meth:`restore_unit`, every commit guarded on still holding that token (a
        node that took over after the TTL fences a slow one out); the others wait for the
        marker. The repopulation merges: what Redis already holds (written since it came
        back) is kept, so a first start of this release on an intact Redis writes nothing
        but the marker."""
        if self.repopulate is None:
            return False
        lost = False
        backoff = 0.2
        while not self._closing:
            if await self.redis.exists(POPULATED):
                return lost
            token = secrets.token_hex(8)
            if not await self.redis.set(REPOPULATING, token, nx=True, px=REPOPULATE_LOCK_MS):
                lost = True  # another node is repopulating: wait for its marker
                await asyncio.sleep(0.1)
                continue
            lost = True
            try:
                log.warning("Redis holds no support state marker: repopulating it from "
                            "the archive (this node holds the lock)")
                await self.repopulate(functools.partial(self.restore_unit, token=token))
                res = await self._run("commit", json.dumps([["G", REPOPULATING, token]]),
                                      json.dumps([["SET", POPULATED, repr(time.time())],
                                                  ["DEL", REPOPULATING]]), "")
                if _s(res[0]) != "ok":
                    raise RepopulationLockLost("the repopulation lock expired")
                return True
            except Exception as e:
                log.error("repopulating Redis failed (%s); retrying in %.1fs", e, backoff)
                with contextlib.suppress(Exception):
                    await self._run("commit", json.dumps([["G", REPOPULATING, token]]),
                                    json.dumps([["DEL", REPOPULATING]]), "")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        return lost

    async def restore_unit(self, changes: Sequence[SupportChange], token: str) -> str:
        """Commit one unit of records from the archive (an agent, a conversation with its
        messages, queue place and assignment, or a record) through the same commit script
        and ops stream as any step, so every node's replica and the archive see it like
        any change. Guarded on the lock's ``token`` and on Redis not holding the unit's
        subject yet (else nothing is written: ``"present"``, or ``"superseded"`` when the
        viewer has another open conversation in that room). No wait for the tail: the caller
        may be the tail itself (a resync)."""
        if not changes:
            return "restored"
        guards: list[list[Any]] = [["G", REPOPULATING, token]]
        first = changes[0]
        match first:
            case ConversationOpened():
                guards += [["X", _conv_key(first.cid), "0"],
                           ["H", P + "open", [f"{first.room}|{first.viewer}"], [""]]]
            case AgentStatus():
                guards.append(["H", P + "agents", [first.user], [""]])
            case RecordPut():
                guards.append(["H", f"{P}rec:{first.namespace}", [first.key], [""]])
            case _:
                raise ValueError(f"not the start of a restore unit: {first!r}"[:200])
        # each unit written also extends the lock: a long repopulation keeps it while it
        # makes progress, one that stalls loses it to another node after the TTL
        writes = [*self._writes(changes), ["PEXPIRE", REPOPULATING, str(REPOPULATE_LOCK_MS)]]
        res = await self._run("commit", json.dumps(guards, ensure_ascii=False),
                              json.dumps(writes, ensure_ascii=False),
                              list_to_json(list(changes)))
        if _s(res[0]) == "ok":
            return "restored"
        if int(res[1]) == 1:
            raise RepopulationLockLost("another node took the repopulation over")
        return "superseded" if int(res[1]) == 3 else "present"

    async def _snapshot(self) -> tuple[list[SupportChange], dict[str, int], list[str],
                                       dict[str, int]]:
        """The change list that rebuilds every unresolved conversation (with its messages),
        the agents, the queue (in order) and the records from Redis's hashes; with the
        unresolved conversations (id → how many messages Redis holds), the queue's order
        and the change numbers of agents and records (``Replica.versions``)."""
        agents = await self.redis.hgetall(P + "agents")
        changes: list[SupportChange] = []
        for _, raw in agents.items():
            changes.append(AgentStatus.from_wire(["agent", json.loads(raw)]))
        versions = {"a:" + _s(u): int(v) for u, v in (await self.redis.hgetall(P + "agentv")).items()}
        cids = [_s(c) for c in await self.redis.smembers(P + "convs")]
        queued = []
        counts: dict[str, int] = {}
        for cid in cids:
            h = {_s(k): _s(v) for k, v in (await self.redis.hgetall(_conv_key(cid))).items()}
            if not h:
                continue
            changes.append(ConversationOpened(cid, h["room"], h["viewer"],
                                              h.get("viewer_name", h["viewer"]),
                                              float(h.get("created_at", 0))))
            log_entries = await self.redis.xrange(P + f"log:{cid}") or []
            counts[cid] = len(log_entries)
            for _eid, f in log_entries:
                if f:
                    changes.append(MessageAppended.from_record(json.loads(f[b"j"])))
            fields: dict[str, Any] = {k: h.get(k) for k in (
                "state", "agent", "agent_name", "escalation_reason", "mood",
                "viewer_nickname") if h.get(k)}
            # absolute, for a resync: what Redis does not hold is reset (a conversation
            # handed back to the queue has no agent; one Redis lost the escalation of is
            # not escalated), not left as this node had it
            for k in ("agent", "agent_name", "escalation_reason", "viewer_nickname"):
                fields.setdefault(k, None)
            fields.setdefault("mood", "neutral")
            for k in ("escalated_at", "assigned_at", "first_agent_reply_at"):
                fields[k] = float(h[k]) if h.get(k) else None
            fields["pinned"] = json.loads(h["pinned"]) if h.get("pinned") else []
            fields.update({k: json.loads(v) for k, v in h.items()
                           if k.startswith(READ_FIELD) and is_conversation_field(k)})
            changes.append(FieldsSet(cid, fields))
            if h.get("agent") and h.get("state") == "assigned":
                changes.append(Attached(cid, h["agent"], float(h.get("assigned_at", 0))))
            if h.get("state") == "queued":
                queued.append((cid, float(h.get("queued_at", 0))))
        qorder = [_s(c) for c in await self.redis.lrange(P + "queue", 0, -1)]
        since = dict(queued)
        for cid in qorder:
            if cid in since:
                changes.append(Queued(cid, since[cid], False))
        for ns in await self.redis.smembers(P + "recns"):
            ns = _s(ns)
            for key, raw in (await self.redis.hgetall(P + f"rec:{ns}")).items():
                changes.append(RecordPut(ns, _s(key), json.loads(raw)))
            for key, v in (await self.redis.hgetall(P + f"recv:{ns}")).items():
                versions[f"r:{ns}\n{_s(key)}"] = int(v)
        return changes, counts, qorder, versions

    async def _resync(self, why: str, reason: str) -> None:
        """Rebuild this node's replica from Redis's hashes, in place.

        Messages the node missed are applied *with* delivery (its sessions get them, in log
        order, as if the log had carried them); conversations Redis no longer holds open
        (resolved meanwhile, or lost with Redis's data) are resolved here too; the queue and
        the agents' assignments are rebuilt from Redis. This node's agents that Redis no
        longer knows (it lost its data) are registered again with their current status, so
        routing goes on without them having to touch their console."""
        log.error("ops log: %s; rebuilding this node's replica from Redis (resync #%d)",
                  why, self.resyncs + 1)
        # this node's agents as it has them (the console is connected here): registered
        # again if Redis lost them, or got them back from the archive as offline
        mine = [(a.user, a.status, a.name, a.capacity, a.paused)
                for u in self.local_agents() if (a := self.router.agents.get(u)) is not None]
        if await self.ensure_populated():
            reason = "redis_lost_data"  # the marker was gone: Redis restarted empty
        # the position is adopted only once the snapshot is applied: a step waiting in
        # ``applied()`` must not be released onto a replica that does not hold it yet
        last_id, last_seq = await self._position()
        changes, live, qorder, versions = await self._snapshot()
        if reason == "redis_lost_data":
            # this node is *ahead*: what Redis lost goes here too, or the next message of a
            # conversation would take a number this node already holds and be skipped
            for cid, n in live.items():
                conv = self.store.get(cid)
                if conv is not None and len(conv.messages) > n:
                    log.error("conversation %s: Redis holds %d of the %d messages this node "
                              "has; dropping the %d it lost", cid, n, len(conv.messages),
                              len(conv.messages) - n)
                    self.store.truncate(conv, n)
                    if self.on_truncated is not None:
                        self.on_truncated(conv, n)
        # records Redis no longer holds (it lost them, or they expired in the part of the log
        # this node never read): forgotten like expired ones, so the listeners' copies go too
        held = {(ch.namespace, ch.key) for ch in changes if isinstance(ch, RecordPut)}
        self.replica.apply([RecordDeleted(ns, k) for ns, recs in self.replica.records.items()
                            for k in list(recs) if (ns, k) not in held])
        pre: list[SupportChange] = [Dequeued(e.conversation) for e in list(self.router.queue)]
        for a in self.router.agents.values():
            pre += [Released(cid, a.user) for cid in list(a.conversations)]
        post: list[SupportChange] = []
        lost: list[Conversation] = []
        now = time.time()
        for conv in self.store.all():
            if conv.state != "resolved" and conv.id not in live:
                h = {_s(k): _s(v) for k, v in
                     (await self.redis.hgetall(P + f"conv:{conv.id}")).items()}
                resolved_at = float(h["resolved_at"]) if h.get("resolved_at") else now
                # (with nothing in Redis after a *hole*, it was resolved and then expired)
                if not h and reason == "redis_lost_data":
                    log.error("conversation %s is gone from Redis; closing it on this node "
                              "(its messages stay readable here)", conv.id)
                    lost.append(conv)
                post.append(FieldsSet(conv.id, {"state": "resolved", "resolved_at": resolved_at}))
        known = {_s(u) for u in await self.redis.hkeys(P + "agents")}
        self.replica.apply(pre + changes + post)
        # the change numbers as Redis has them now (it may have gone back: it lost data)
        self.replica.versions = versions
        self._last_id, self._last_seq = last_id, last_seq
        for conv in lost:
            if self.on_lost is not None:
                try:
                    self.on_lost(conv)
                except Exception:
                    log.exception("announcing lost conversation %s failed", conv.id)
        self.resyncs += 1
        if self.metrics is not None:
            self.metrics.replica_resyncs.labels(reason=reason).inc()
        lost_agents = [m for m in mine if m[0] not in known or (
            reason == "redis_lost_data" and (a := self.router.agents.get(m[0])) is not None
            and a.status != m[1])]
        if lost_agents:  # through the normal step, off the tail loop (it waits for the tail)
            t = asyncio.get_running_loop().create_task(self._reregister(lost_agents))
            self._side_tasks.add(t)
            t.add_done_callback(self._side_tasks.discard)

    async def _reregister(self, agents: list[tuple[str, str, str, int, bool]]) -> None:
        for user, status, name, capacity, paused in agents:
            try:
                await self.set_status(user, status, name, capacity, paused)
                log.warning("agent %s registered again after Redis lost its state", user)
            except Exception as e:
                log.warning("re-registering agent %s failed: %s", user, e)

    async def _tail_loop(self) -> None:
        backoff = 0.1
        while True:
            try:
                tail = self._tail_redis
                assert tail is not None  # started before this loop, closed after it
                res = cast(XReadReply, await tail.xread({P + "ops": self._last_id},
                                                        block=1000, count=500))
                backoff = 0.1
                if not res:
                    await self._check_log()
                for _, entries in res or ():
                    for eid, fields in entries:
                        seq = int(fields[b"s"]) if b"s" in fields else None
                        if (seq is not None and self._last_seq is not None
                                and seq != self._last_seq + 1):
                            ahead = seq > self._last_seq
                            await self._resync(
                                f"entry {_s(eid)} is change #{seq} but #{self._last_seq + 1} "
                                f"was next ({'the ones between were trimmed before this node read them' if ahead else 'Redis went back: it lost data'})",
                                "trimmed" if ahead else "redis_lost_data")
                            break  # the snapshot covers the rest of this batch
                        try:
                            self._apply_entry(fields, seq)
                        except Exception:
                            log.exception("applying change %s failed", _s(eid))
                        self._last_id = _s(eid)
                        self._last_seq = seq
                self._applied.set()
                self._applied = asyncio.Event()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if self._closing:
                    return
                log.warning("ops tail lost Redis (%s); retrying in %.1fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _apply_entry(self, fields: dict[bytes, bytes], seq: int | None) -> None:
        """One ops log entry into the replica. An entry written inside a trace (field ``t``,
        the committing step's ``traceparent``) is applied in a span that continues it, so
        what this node then delivers (a chat line to an agent here) is part of the trace of
        the request that caused it, on whichever node that ran (docs/operations.md#tracing)."""
        changes = list_from_wire(json.loads(fields[b"c"]))
        t = fields.get(b"t")
        if not t:
            self.replica.apply(changes, seq or 0)
            return
        with tracing.span("ops.apply", parent=_s(t),
                          attributes={"livedesk.node": logctx.current().get("node", ""),
                                      "livedesk.ops.seq": seq or 0,
                                      "livedesk.changes": len(changes)}):
            self.replica.apply(changes, seq or 0)
            log.debug("ops entry #%s applied (%d changes)", seq, len(changes))

    async def _check_log(self) -> None:
        """With nothing new to read, does Redis agree with this node on how many changes
        there were? Fewer: Redis lost data (restarted without it, or failed over to a
        replica that lagged). More, with no entry after ours: the entries this node has not
        read were trimmed. (A script bumps the counter and appends its entry atomically, so
        reading the counter first and the Stream second cannot see a number whose entry is
        not there yet.)"""
        tail = self._tail_redis
        assert tail is not None  # started before the tail loop that calls this
        if self.repopulate is not None and not await tail.exists(POPULATED):
            # the marker is gone: Redis lost its data, even if it held no change yet
            await self._resync("Redis no longer holds the populated marker: it lost its "
                               "data", "redis_lost_data")
            return
        if self._last_seq is None:
            return  # following a log written before entries were numbered
        seq = await tail.get(P + "opseq")
        have = int(seq) if seq is not None else 0
        if have < self._last_seq:
            await self._resync(f"Redis holds {have} changes but this node applied "
                               f"{self._last_seq}: it lost data", "redis_lost_data")
        elif have > self._last_seq and not await tail.xrange(
                P + "ops", min="(" + self._last_id if self._last_id != "0-0" else "-", count=1):
            await self._resync(f"changes #{self._last_seq + 1}..#{have} were trimmed from the "
                               f"log before this node read them", "trimmed")

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(3.0)
            users = list(self.local_agents())
            if users:
                now = repr(time.time())
                try:
                    await self.redis.hset(P + "hb", mapping={u: now for u in users})
                except Exception as e:
                    log.debug("agent heartbeat failed: %s", e)

    HB_READ_S = 0.5  # heartbeats read for one assignment serve the next ones this long

    async def _live(self) -> Callable[[str], bool]:
        """Agent liveness across nodes: the agent's node said it is there within
        ``HB_TTL_S``. The heartbeats (written every 3 s) are read again after ``HB_READ_S``
        or when the last read would leave out an agent that could take a conversation: a
        burst of pumps costs one read, not one each, and a new agent is never missed."""
        now = time.time()
        # read again when the copy is old, or when it would leave out an agent that may
        # take a conversation (one that registered or beat since the copy was read)
        if now - self._beats_at > self.HB_READ_S or any(
                a.status == "available" and not a.paused and a.load < a.capacity
                and now - self._beats.get(a.user, 0.0) > self.HB_TTL_S
                for a in self.router.agents.values()):
            try:
                beats = await self.redis.hgetall(P + "hb")
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as e:
                raise ProtocolError(ErrorCode.UNAVAILABLE,
                                    f"state store unavailable ({e.__class__.__name__}); retry") from None
            self._beats = {_s(u): float(v) for u, v in beats.items()}
            self._beats_at = now
        seen = self._beats
        return lambda user: now - seen.get(user, 0.0) <= self.HB_TTL_S

    @staticmethod
    def _id_key(eid: str) -> tuple[int, int]:
        a, b = eid.split("-")
        return int(a), int(b)

    async def applied(self, eid: str, timeout: float = 5.0) -> None:
        """Wait until the replica has applied the ops entry ``eid``."""
        want = self._id_key(eid)
        deadline = time.monotonic() + timeout
        while self._id_key(self._last_id) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(ErrorCode.UNAVAILABLE, "state store is lagging; retry")
            ev = self._applied
            try:
                await asyncio.wait_for(ev.wait(), min(left, 0.5))
            except TimeoutError:
                pass

    async def sync(self) -> None:
        last = await self.redis.xrevrange(P + "ops", count=1)
        if last:
            await self.applied(_s(last[0][0]))

    async def _run(self, name: str, *args: Any) -> list:
        try:
            return await self._s[name](args=[P, *args])
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as e:
            raise ProtocolError(ErrorCode.UNAVAILABLE,
                                f"state store unavailable ({e.__class__.__name__}); retry") from None

    # --- steps -----------------------------------------------------------------------------
    async def _step(self, decide: Callable[[GuardedView], rules.Step[T]],
                    extra: Sequence[list[Any]] = ()) -> rules.Step[T]:
        """Run a rule against the replica and commit its changes if Redis still holds what
        it read; else catch up with the log and run it again. A refusal (``ProtocolError``)
        or a step with nothing to change is checked the same way before it is answered.
        ``extra``: writes that go with the changes (not replicated: the heartbeat)."""
        with tracing.span("support.step"):
            return await self._step_traced(decide, extra)

    async def _step_traced(self, decide: Callable[[GuardedView], rules.Step[T]],
                           extra: Sequence[list[Any]]) -> rules.Step[T]:
        missing: set[str] = set()
        deadline = time.monotonic() + self.STEP_DEADLINE_S
        attempt = 0
        while attempt == 0 or time.monotonic() < deadline:
            attempt += 1
            view = GuardedView(self.replica, missing)
            refusal: ProtocolError | None = None
            step: rules.Step[T] | None = None
            try:
                step = decide(view)
            except ProtocolError as e:
                refusal = e
            changes = step.changes if step is not None else ()
            if not changes and not view.guards:
                if refusal is not None:
                    raise refusal
                assert step is not None
                return step
            writes = self._writes(changes) + list(extra) if changes else []
            with tracing.span("redis.commit", attributes={"livedesk.attempt": attempt,
                                                          "livedesk.changes": len(changes)}):
                # ARGV[6]: this span as the ops entry's parent on every node that applies it
                res = await self._run("commit", json.dumps(view.guards, ensure_ascii=False),
                                      json.dumps(writes, ensure_ascii=False) if writes else "",
                                      list_to_json(changes) if changes else "", "",
                                      tracing.traceparent())
            if _s(res[0]) == "ok":
                if refusal is not None:
                    raise refusal
                assert step is not None
                eid = _s(res[1])
                if eid:
                    await self.applied(eid)
                return step
            self.conflicts += 1
            i, j, now = int(res[1]), int(res[2]), _s(res[3])
            log.debug("commit refused (guard %s field %s: Redis holds %r): %s", i, j, now,
                      view.guards[i - 1])
            cid = view.conv_guards.get(i)
            if cid is not None and j == 1 and now == "" and cid not in missing:
                missing.add(cid)  # Redis no longer holds it: decide again without it
                continue
            if attempt > 3:  # others keep winning: let them through (jittered)
                await asyncio.sleep(random.uniform(0, min(0.005 * attempt, 0.1)))
            await self.sync()
        raise ProtocolError(ErrorCode.UNAVAILABLE, BUSY)

    def _writes(self, changes: Sequence[SupportChange]) -> list[list[Any]]:
        """The Redis writes that store ``changes`` in the layout above (storage only: the
        rule that produced them has been checked already)."""
        w: list[list[Any]] = []
        text_bytes: dict[str, int] = {}
        for ch in changes:
            match ch:
                case ConversationOpened():
                    w += [["HSET", _conv_key(ch.cid), "room", ch.room, "viewer", ch.viewer,
                           "viewer_name", ch.viewer_name, "state", "bot",
                           "created_at", repr(ch.created_at), "n", "0", "bytes", "0"],
                          ["HSET", P + "open", f"{ch.room}|{ch.viewer}", ch.cid],
                          ["SADD", P + "convs", ch.cid],
                          ["SADD", f"{P}vopen:{ch.viewer}", ch.cid]]
                    text_bytes[ch.cid] = 0
                case FieldsSet():
                    key = _conv_key(ch.cid)
                    sets: list[str] = []
                    unset: list[str] = []
                    for k, v in ch.fields.items():
                        if v is None:
                            unset.append(k)
                        elif k.startswith(READ_FIELD):
                            # one field per member, last writer wins on the log position
                            w.append(["HMAXN", key, k, str(read_mark_n(v)), _field_text(v)])
                        else:
                            sets += [k, _field_text(v)]
                    if sets:
                        w.append(["HSET", key, *sets])
                    if unset:
                        w.append(["HDEL", key, *unset])
                    conv = self.store.get(ch.cid)
                    if ch.fields.get("state") == "resolved" and conv is not None:
                        w += [["SREM", f"{P}vopen:{conv.viewer}", ch.cid],
                              ["HDELEQ", P + "open", f"{conv.room}|{conv.viewer}", ch.cid],
                              ["SREM", P + "convs", ch.cid]]
                        ttl = int(self.retention_s)
                        if ttl > 0:  # retention: a resolved conversation's keys expire
                            w += [["EXPIRE", k, str(ttl)] for k in (
                                key, f"{P}log:{ch.cid}", f"{P}cmid:{ch.cid}")]
                case MessageAppended():
                    conv = self.store.get(ch.cid)
                    before = text_bytes.get(ch.cid, conv.text_bytes if conv is not None else 0)
                    text_bytes[ch.cid] = before + len(ch.text.encode("utf-8", "replace"))
                    w += [["HSET", _conv_key(ch.cid), "n", str(ch.n),
                           "bytes", str(text_bytes[ch.cid])],
                          ["XADD", f"{P}log:{ch.cid}", "*", "j",
                           json.dumps(ch.record(), ensure_ascii=False)]]
                case Queued():
                    w += [["LPUSH" if ch.front else "RPUSH", P + "queue", ch.cid],
                          ["HSET", _conv_key(ch.cid), "queued_at", repr(ch.since)]]
                case Dequeued():
                    w.append(["LREM", P + "queue", "0", ch.cid])
                case Attached():
                    w += [["SADD", f"{P}load:{ch.agent}", ch.cid],
                          ["JSET", P + "agents", ch.agent, "last_assigned", ch.at],
                          ["STAMP", P + "agentv", ch.agent]]
                case Released():
                    if ch.agent:
                        w += [["SREM", f"{P}load:{ch.agent}", ch.cid],
                              ["STAMP", P + "agentv", ch.agent]]
                case AgentStatus():
                    w += [["HSET", P + "agents", ch.user,
                           json.dumps(ch.to_wire()[1], ensure_ascii=False)],
                          ["STAMP", P + "agentv", ch.user]]
                case RecordPut():
                    m = f"{ch.namespace}\n{ch.key}"
                    w += [["HSET", f"{P}rec:{ch.namespace}", ch.key, ch.value_json()],
                          ["SADD", P + "recns", ch.namespace],
                          ["ZREM", P + "recexp", m] if ch.expires_at is None else
                          ["ZADD", P + "recexp", repr(ch.expires_at), m],
                          ["STAMP", f"{P}recv:{ch.namespace}", ch.key]]
                case RecordDeleted():
                    w += [["HDEL", f"{P}rec:{ch.namespace}", ch.key],
                          ["HDEL", f"{P}recv:{ch.namespace}", ch.key],
                          ["ZREM", P + "recexp", f"{ch.namespace}\n{ch.key}"]]
        return w

    async def open(self, room, viewer, name, greeting, origin=None, max_open=0):
        cid, now = new_conversation_id(), time.time()
        step = await self._step(lambda s: rules.open_conversation(
            s, cid=cid, room=room, viewer=viewer, name=name, greeting=greeting, origin=origin,
            max_open=max(0, int(max_open)), now=now))
        conv = self.store.get(step.result.cid)
        if conv is None:
            await self.sync()
            conv = self.store.get(step.result.cid)
        return conv, step.result.created

    async def append(self, conv, author, text, cmid, kind=None, meta=None, origin=None,
                     cap=None):
        now = time.time()
        step = await self._step(lambda s: rules.append(
            s, conv.id, author=author, text=text, cmid=cmid, kind=kind, meta=meta,
            origin=origin, cap=cap, now=now))
        return conv.messages[step.result.n - 1], step.result.repeated

    async def escalate(self, conv, reason):
        now = time.time()
        step = await self._step(lambda s: rules.escalate(s, conv.id, reason=reason, now=now))
        return step.result

    ASSIGN_BATCH = 32  # assignments one commit may make (a burst of escalations)

    async def assign_next(self):
        # one assignment decision at a time on this node: every pump reads the same queue
        # head and agents, so concurrent ones would only overtake each other's commits.
        # One decision assigns as many as it can; the pumps hand them out one by one.
        async with self._assigning:
            while self._ahead:
                cid, user = self._ahead.popleft()
                conv = self.store.get(cid)
                if conv is not None and conv.state == "assigned" and conv.agent == user:
                    return conv, self.router.agents[user]
            live = await self._live()
            now = time.time()
            try:
                step = await self._step(lambda s: rules.assign_batch(
                    s, live=live, now=now, most=self.ASSIGN_BATCH))
            except ProtocolError as e:
                if e.message != BUSY or self._closing:
                    raise
                # other nodes kept changing the queue or the agents first: they are assigning
                log.warning("assignment gave way to other nodes: %s", e.message)
                return None
            if not step.result:
                return None
            first, *rest = step.result
            self._ahead.extend((x.cid, x.agent) for x in rest)
            return self.store.get(first.cid), self.router.agents[first.agent]

    async def resolve(self, conv, by=""):
        now = time.time()
        step = await self._step(lambda s: rules.resolve(s, conv.id, by=by or "", now=now))
        return step.result

    async def transfer(self, conv, to_agent, reason):
        now = time.time()
        step = await self._step(lambda s: rules.transfer(s, conv.id, to_agent=to_agent,
                                                         now=now))
        return step.result

    async def set_status(self, user, status, name, capacity=None, paused=False):
        now = time.time()
        await self._step(lambda s: rules.set_status(
            s, user, status=status, name=name, capacity=capacity, paused=paused,
            default_capacity=self.default_capacity, capacities=self.capacities, now=now),
            extra=[["HSET", P + "hb", user, repr(now)]])
        self._beats[user] = now
        return self.router.agents[user]

    async def set_fields(self, conv, **fields):
        await self._step(lambda s: rules.set_fields(s, conv.id, fields))

    async def mark_read(self, conv, user, mark):
        return (await self._step(lambda s: rules.mark_read(s, conv, user, mark))).result

    async def put(self, namespace, key, value, *, if_absent=False, expect=None, ttl_s=None):
        if "\n" in namespace:
            raise ValueError("a record namespace must not contain a newline")
        at = None if ttl_s is None else time.time() + ttl_s
        step = await self._step(lambda s: rules.put(s, namespace, key, value,
                                                    if_absent=if_absent, expect=expect,
                                                    expires_at=at))
        return step.result.written, step.result.value

    async def forget_hits(self, key):
        try:
            await self.redis.delete(f"{P}hits:{key}")
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as e:
            raise ProtocolError(ErrorCode.UNAVAILABLE,
                                f"state store unavailable ({e.__class__.__name__}); retry") from None

    async def hit(self, key, window_s, limit):
        res = await self._run("hit", key, repr(time.time()), repr(float(window_s)), int(limit),
                              secrets.token_hex(6))
        return Hit(bool(int(res[0])), int(res[1]), max(0.0, float(_s(res[2]))))

    # --- erasure ---------------------------------------------------------------------------
    async def erase_viewer(self, viewer: str) -> list[str]:
        """Erase ``viewer`` from Redis and every node's replica: one commit deletes the keys
        of the viewer's conversations (open or resolved, found in this replica and by a
        ``SCAN`` of the conversation hashes: a resolved one may be in Redis only), their
        queue places, agents' load and the records about them, and appends
        :class:`ViewerErased` to the ops stream (every replica drops the viewer).

        The ops stream still holds the viewer's earlier changes. With an archiver
        (``archived``), the commit also notes the viewer and its conversations in
        :data:`ERASING`: the archiver leaves their not-yet-archived changes out of the
        archive, and once it has archived past the erasure it deletes those entries from
        the streams, erases the store again (nothing can come back from an entry it read
        before) and forgets the note (``gateway/archiver.py``). Without one, this node
        deletes the entries at once (:meth:`scrub_stream`)."""
        ids = {c.id for c in self.store.for_viewer(viewer)}
        agents: dict[str, str] = {}
        rooms: dict[str, str] = {}
        keys = [_s(k) async for k in self.redis.scan_iter(match=P + "conv:*", count=1000)]
        for i in range(0, len(keys), 1000):  # one round trip per 1,000 conversations
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys[i:i + 1000]:
                    pipe.hmget(key, ["viewer", "room", "agent"])
                found = await pipe.execute()
            for key, (who, room, agent) in zip(keys[i:i + 1000], found, strict=True):
                if who is not None and _s(who) == viewer:
                    cid = key[len(P + "conv:"):]
                    ids.add(cid)
                    rooms[cid] = _s(room or b"")
                    if agent:
                        agents[cid] = _s(agent)
        for conv in self.store.for_viewer(viewer):
            rooms.setdefault(conv.id, conv.room)
            if conv.agent:
                agents.setdefault(conv.id, conv.agent)
        w: list[list[Any]] = [["DEL", f"{P}vopen:{viewer}"]]
        for cid in sorted(ids):
            w += [["DEL", _conv_key(cid), f"{P}log:{cid}", f"{P}cmid:{cid}"],
                  ["SREM", P + "convs", cid], ["LREM", P + "queue", "0", cid],
                  ["HDELEQ", P + "open", f"{rooms.get(cid, '')}|{viewer}", cid]]
            if cid in agents:
                w.append(["SREM", f"{P}load:{agents[cid]}", cid])
        for ns in [_s(x) for x in await self.redis.smembers(P + "recns")]:
            for rkey, raw in (await self.redis.hgetall(f"{P}rec:{ns}")).items():
                k_ = _s(rkey)
                try:
                    about = record_about(ns, k_, json.loads(raw))
                except ValueError:
                    continue
                if about[0] == viewer or about[1] in ids:
                    w += [["HDEL", f"{P}rec:{ns}", k_], ["HDEL", f"{P}recv:{ns}", k_],
                          ["ZREM", P + "recexp", f"{ns}\n{k_}"]]
        if self.archived:
            w.append(["HSET", ERASING, viewer, json.dumps(
                {"conversations": sorted(ids), "at": time.time()})])
        glob = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in viewer)
        hits = [k async for k in self.redis.scan_iter(match=f"{P}hits:*{glob}*", count=1000)]
        if hits:  # the churn guard's counters keyed by the viewer
            w.append(["DEL", *[_s(h) for h in hits]])
        res = await self._run("commit", "[]", json.dumps(w, ensure_ascii=False),
                              list_to_json([ViewerErased(viewer)]))
        eid = _s(res[1])
        await self.applied(eid)
        if not self.archived:
            await self.scrub_stream(self.redis, P + "ops", eid, viewer, sorted(ids))
        return sorted(ids)

    @staticmethod
    async def scrub_stream(redis: aioredis.Redis, stream: str, upto: str, viewer: str,
                           conversations: Sequence[str]) -> int:
        """Delete the entries of ``stream`` up to ``upto`` (inclusive) that name ``viewer``
        or one of ``conversations`` (as a JSON string in the change list; the
        :class:`ViewerErased` entry itself names the viewer too). A node whose tail had
        not read them yet sees the hole in the numbers and resyncs from the hashes."""
        needles = {json.dumps(x, ensure_ascii=a).encode() for x in (viewer, *conversations)
                   for a in (False, True)}
        gone: list[bytes] = []
        start = "-"
        while True:
            page = cast(list[tuple[bytes, dict[bytes, bytes]]],
                        await redis.xrange(stream, min=start, max=upto, count=1000))
            if not page:
                break
            for eid, fields in page:
                c = fields.get(b"c", b"")
                if any(n in c for n in needles):
                    gone.append(eid)
            if len(page) < 1000:
                break
            start = "(" + _s(page[-1][0])
        for i in range(0, len(gone), 1000):
            await redis.xdel(stream, *gone[i:i + 1000])
        return len(gone)

    EXPIRE_BATCH = 500  # records per script run: a big backlog does not stall Redis

    async def expire_records(self, now=None):
        now = time.time() if now is None else now
        total = 0
        while True:
            res = await self._run("expire_records", repr(now), self.EXPIRE_BATCH)
            n = int(res[0])
            if n == 0:
                return total
            total += n
            await self.applied(_s(res[1]))
            if n < self.EXPIRE_BATCH:
                return total
