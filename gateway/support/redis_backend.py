"""Support state on Redis: one Lua script per check-then-change step, one ordered change log.

Every key lives under the hash tag ``{ld}``, so each script runs on one Redis Cluster slot
(support chat is small next to a shard's throughput; rooms, orders and sessions use their own
tags and spread). Layout:

* ``ld:{ld}:conv:<cid>``  hash: room, viewer, viewer_name, state, agent, agent_name, n, ...
* ``ld:{ld}:log:<cid>``   Stream: the conversation's messages, in log order (entry ``j``)
* ``ld:{ld}:cmid:<cid>``  hash: ``user:client_msg_id`` → message JSON (dedupe)
* ``ld:{ld}:open``        hash: ``room|viewer`` → cid of the open conversation
* ``ld:{ld}:convs``       set of conversations not yet resolved (bootstrap)
* ``ld:{ld}:queue``       list of queued cids, head first
* ``ld:{ld}:agents``      hash: user → JSON {name, status, since, capacity, paused, last_assigned, hb}
* ``ld:{ld}:load:<user>`` set of the agent's assigned cids
* ``ld:{ld}:ops``         Stream: the change lists every node applies, in order; each entry
  carries ``s``, its number from the counter ``ld:{ld}:opseq`` (1, 2, 3, … with no hole)

Why the numbers: a Stream id says *when*, not *how many*. A node that fell more than the
Stream's ``MAXLEN`` behind (its tail lost Redis for a while), or a Redis that came back with
less than the node had applied (restarted without its data), would otherwise carry on from
wherever ``XREAD`` lands, with a replica that silently differs from Redis. A hole or a step
back in ``s`` makes the node rebuild its replica from the hashes instead
(:meth:`RedisBackend._resync`), and say so in its log.

Scripts touch keys named from the ``{ld}`` prefix they are given (all in the same slot).
Each returns the id of the ops entry it appended; the caller waits until its own replica has
applied that entry, so a request's reply always reflects its own change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any

import redis.asyncio as aioredis

from signaling import ErrorCode, ProtocolError
from signaling.events import Events
from signaling.tasks import stop_task

from .backend import (
    Change,
    Hit,
    SupportBackend,
    conversation_full,
    message_record,
    too_many_open,
)
from .conversation import Conversation, ConversationStore
from .routing import Router

log = logging.getLogger(__name__)

P = "ld:{ld}:"

PRELUDE = """
local P = ARGV[1]
local function emit(changes)
  local s = redis.call('INCR', P .. 'opseq')
  return redis.call('XADD', P .. 'ops', 'MAXLEN', '~', '500000', '*', 'c', cjson.encode(changes),
                    's', s)
end
local function cget(cid, f) return redis.call('HGET', P .. 'conv:' .. cid, f) end
"""

OPEN = PRELUDE + """
local room, viewer, name, cid, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key = room .. '|' .. viewer
local cur = redis.call('HGET', P .. 'open', key)
if cur then
  local st = cget(cur, 'state')
  if st and st ~= 'resolved' then return {cur, 0, ''} end
end
-- the viewer's open conversations in every room (ARGV[9] > 0: at most that many)
local vopen = P .. 'vopen:' .. viewer
local max_open = tonumber(ARGV[9])
if max_open > 0 then
  local n_open = 0
  for _, c in ipairs(redis.call('SMEMBERS', vopen)) do
    local st = cget(c, 'state')
    if st and st ~= 'resolved' then n_open = n_open + 1 else redis.call('SREM', vopen, c) end
  end
  if n_open >= max_open then return {'', n_open, ''} end
end
redis.call('HSET', P .. 'conv:' .. cid, 'room', room, 'viewer', viewer, 'viewer_name', name,
           'state', 'bot', 'created_at', now, 'n', 0, 'bytes', 0)
redis.call('HSET', P .. 'open', key, cid)
redis.call('SADD', P .. 'convs', cid)
redis.call('SADD', vopen, cid)
local changes = {{'conv', {cid = cid, room = room, viewer = viewer, viewer_name = name,
                           created_at = tonumber(now)}}}
if ARGV[7] ~= '' then
  redis.call('HINCRBY', P .. 'conv:' .. cid, 'bytes', tonumber(ARGV[10]))
  local n = redis.call('HINCRBY', P .. 'conv:' .. cid, 'n', 1)
  local msg = cjson.decode(ARGV[7])
  msg.n = n
  msg.message_id = cid .. ':' .. n
  redis.call('XADD', P .. 'log:' .. cid, '*', 'j', cjson.encode(msg))
  table.insert(changes, {'msg', msg, ARGV[8]})
end
return {cid, 1, emit(changes)}
"""

APPEND = PRELUDE + """
local cid, cmid, kind = ARGV[2], ARGV[3], ARGV[4]
local st = cget(cid, 'state')
if not st then return {'not_found'} end
if cmid ~= '' then
  local prev = redis.call('HGET', P .. 'cmid:' .. cid, cmid)
  if prev then return {'dup', prev} end
end
if st == 'resolved' and kind == '' then return {'resolved'} end
-- a client's message: at most ARGV[8] messages and ARGV[9] bytes of text (0: no limit)
local max_n, max_bytes, size = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[7])
if max_n > 0 and tonumber(cget(cid, 'n') or 0) >= max_n then return {'full_n'} end
if max_bytes > 0 and tonumber(cget(cid, 'bytes') or 0) + size > max_bytes then
  return {'full_bytes'}
end
redis.call('HINCRBY', P .. 'conv:' .. cid, 'bytes', size)
local n = redis.call('HINCRBY', P .. 'conv:' .. cid, 'n', 1)
local msg = cjson.decode(ARGV[5])
msg.n = n
msg.message_id = cid .. ':' .. n
local enc = cjson.encode(msg)
redis.call('XADD', P .. 'log:' .. cid, '*', 'j', enc)
if cmid ~= '' then redis.call('HSET', P .. 'cmid:' .. cid, cmid, enc) end
return {'ok', enc, emit({{'msg', msg, ARGV[6]}})}
"""

ESCALATE = PRELUDE + """
local cid, reason, now = ARGV[2], ARGV[3], ARGV[4]
local st = cget(cid, 'state')
if st ~= 'bot' then return {st or 'not_found'} end
redis.call('HSET', P .. 'conv:' .. cid, 'state', 'queued', 'escalated_at', now,
           'escalation_reason', reason, 'queued_at', now)
redis.call('RPUSH', P .. 'queue', cid)
return {'ok', emit({{'set', cid, {state = 'queued', escalated_at = tonumber(now),
                                  escalation_reason = reason}},
                    {'q_add', cid, tonumber(now), false}})}
"""

ASSIGN = PRELUDE + """
local now, hb_ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local q = P .. 'queue'
local changes = {}
local cid = redis.call('LINDEX', q, 0)
while cid and cget(cid, 'state') ~= 'queued' do
  redis.call('LPOP', q)
  table.insert(changes, {'q_del', cid})
  cid = redis.call('LINDEX', q, 0)
end
if not cid then
  if #changes > 0 then return {'', '', emit(changes)} end
  return {}
end
local all = redis.call('HGETALL', P .. 'agents')
local best, bestload = nil, nil
for i = 1, #all, 2 do
  local a = cjson.decode(all[i + 1])
  if a.status == 'available' and not a.paused and (now - (a.hb or 0)) <= hb_ttl then
    local load = redis.call('SCARD', P .. 'load:' .. a.user)
    if load < a.capacity and (best == nil or load < bestload or
        (load == bestload and (a.last_assigned or 0) < (best.last_assigned or 0))) then
      best, bestload = a, load
    end
  end
end
if not best then
  if #changes > 0 then return {'', '', emit(changes)} end
  return {}
end
redis.call('LPOP', q)
redis.call('SADD', P .. 'load:' .. best.user, cid)
best.last_assigned = now
redis.call('HSET', P .. 'agents', best.user, cjson.encode(best))
redis.call('HSET', P .. 'conv:' .. cid, 'state', 'assigned', 'agent', best.user,
           'agent_name', best.name, 'assigned_at', now)
table.insert(changes, {'q_del', cid})
table.insert(changes, {'attach', cid, best.user, now})
table.insert(changes, {'set', cid, {state = 'assigned', agent = best.user,
                                    agent_name = best.name, assigned_at = now}})
return {cid, best.user, emit(changes)}
"""

RESOLVE = PRELUDE + """
local cid, now, ttl, by = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local st = cget(cid, 'state')
if not st or st == 'resolved' then return {st or 'not_found'} end
local agent = cget(cid, 'agent') or ''
redis.call('HSET', P .. 'conv:' .. cid, 'state', 'resolved', 'resolved_at', now, 'resolved_by', by)
redis.call('SREM', P .. 'vopen:' .. cget(cid, 'viewer'), cid)
if ttl > 0 then  -- the retention policy: a resolved conversation's keys expire by themselves
  redis.call('EXPIRE', P .. 'conv:' .. cid, ttl)
  redis.call('EXPIRE', P .. 'log:' .. cid, ttl)
  redis.call('EXPIRE', P .. 'cmid:' .. cid, ttl)
end
redis.call('LREM', P .. 'queue', 0, cid)
if agent ~= '' then redis.call('SREM', P .. 'load:' .. agent, cid) end
local key = cget(cid, 'room') .. '|' .. cget(cid, 'viewer')
if redis.call('HGET', P .. 'open', key) == cid then redis.call('HDEL', P .. 'open', key) end
redis.call('SREM', P .. 'convs', cid)
return {'ok', emit({{'q_del', cid}, {'release', cid, agent},
                    {'set', cid, {state = 'resolved', resolved_at = tonumber(now),
                                  resolved_by = by}}})}
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

TRANSFER = PRELUDE + """
local cid, target, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local st = cget(cid, 'state')
if not st then return {'not_found', ''} end
if st ~= 'assigned' then return {'bad_state', st} end
local old = cget(cid, 'agent') or ''
if target ~= '' then
  local raw = redis.call('HGET', P .. 'agents', target)
  if not raw then return {'no_agent', ''} end
  if target == old then return {'same', ''} end
  local a = cjson.decode(raw)
  local load = redis.call('SCARD', P .. 'load:' .. target)
  if a.status ~= 'available' or load >= a.capacity then
    return {'busy', a.status .. ' with ' .. load .. '/' .. a.capacity .. ' conversations'}
  end
  redis.call('SREM', P .. 'load:' .. old, cid)
  redis.call('SADD', P .. 'load:' .. target, cid)
  a.last_assigned = now
  redis.call('HSET', P .. 'agents', target, cjson.encode(a))
  redis.call('HSET', P .. 'conv:' .. cid, 'agent', target, 'agent_name', a.name, 'assigned_at', now)
  return {'ok', old, emit({{'release', cid, old}, {'attach', cid, target, now},
                           {'set', cid, {state = 'assigned', agent = target, agent_name = a.name,
                                         assigned_at = now}}})}
end
redis.call('SREM', P .. 'load:' .. old, cid)
redis.call('HSET', P .. 'conv:' .. cid, 'state', 'queued', 'queued_at', now)
redis.call('HDEL', P .. 'conv:' .. cid, 'agent', 'agent_name')
redis.call('LPUSH', P .. 'queue', cid)
return {'ok', old, emit({{'release', cid, old},
                         {'set', cid, {state = 'queued', agent = '', agent_name = ''}},
                         {'q_add', cid, now, true}})}
"""

STATUS = PRELUDE + """
local user, status, name, cap, now, paused = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]),
                                             tonumber(ARGV[6]), ARGV[7] == '1'
local raw = redis.call('HGET', P .. 'agents', user)
local a
if raw then a = cjson.decode(raw) else
  a = {user = user, name = name, status = 'offline', since = now, capacity = cap,
       last_assigned = 0, hb = now}
end
if name ~= '' then a.name = name end
if a.status ~= status then a.status = status; a.since = now end
if ARGV[8] == '1' then a.capacity = cap end
a.paused = paused
a.hb = now
redis.call('HSET', P .. 'agents', user, cjson.encode(a))
return {'ok', emit({{'agent', a}})}
"""

HEARTBEAT = PRELUDE + """
local now = tonumber(ARGV[2])
for i = 3, #ARGV do
  local raw = redis.call('HGET', P .. 'agents', ARGV[i])
  if raw then
    local a = cjson.decode(raw)
    a.hb = now
    redis.call('HSET', P .. 'agents', ARGV[i], cjson.encode(a))
  end
end
return 1
"""

PUT = PRELUDE + """
local h = P .. 'rec:' .. ARGV[2]
local cur = redis.call('HGET', h, ARGV[3])
if ARGV[5] == '1' and cur then return {0, cur, ''} end
if ARGV[6] ~= '' then
  if not cur then return {0, '', ''} end
  local c, e = cjson.decode(cur), cjson.decode(ARGV[6])
  for k, v in pairs(e) do if c[k] ~= v then return {0, cur, ''} end end
end
redis.call('HSET', h, ARGV[3], ARGV[4])
redis.call('SADD', P .. 'recns', ARGV[2])
-- a TTL: when the record is forgotten (EXPIRE_RECORDS); none: kept
local m = ARGV[2] .. '\\n' .. ARGV[3]
if ARGV[7] == '' then redis.call('ZREM', P .. 'recexp', m)
else redis.call('ZADD', P .. 'recexp', ARGV[7], m) end
-- the value travels as its JSON text: cjson would turn empty lists into objects
return {1, ARGV[4], emit({{'rec', ARGV[2], ARGV[3], ARGV[4]}})}
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
  redis.call('ZREM', P .. 'recexp', m)
  changes[#changes + 1] = {'rec_del', ns, key}
end
return {#due, emit(changes)}
"""

SET_FIELDS = PRELUDE + """
local cid = ARGV[2]
if not cget(cid, 'state') then return {'not_found'} end
local f = cjson.decode(ARGV[3])
for k, v in pairs(f) do
  if type(v) == 'table' then v = cjson.encode(v) end
  if v == cjson.null then redis.call('HDEL', P .. 'conv:' .. cid, k)
  else redis.call('HSET', P .. 'conv:' .. cid, k, tostring(v)) end
end
return {'ok', emit({{'set', cid, f}})}
"""


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RedisBackend(SupportBackend):
    """Support state in Redis; this node's replica follows ``ld:{ld}:ops``."""

    HB_TTL_S = 10.0

    def __init__(self, redis: aioredis.Redis, store: ConversationStore, router: Router,
                 default_capacity: int = 5, capacities: dict[str, int] | None = None,
                 local_agents=None, url: str | None = None, metrics: Any = None,
                 retention_s: float = 0.0, events: Events | None = None) -> None:
        super().__init__(store, router, events)
        self.redis = redis
        self.url = url
        self.default_capacity = default_capacity
        self.capacities = capacities or {}
        self.local_agents = local_agents or (lambda: [])
        self._s = {name: redis.register_script(src) for name, src in (
            ("open", OPEN), ("append", APPEND), ("escalate", ESCALATE), ("assign", ASSIGN),
            ("resolve", RESOLVE), ("transfer", TRANSFER), ("status", STATUS),
            ("hb", HEARTBEAT), ("fields", SET_FIELDS), ("put", PUT),
            ("expire_records", EXPIRE_RECORDS), ("hit", HIT))}
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
        Changes in the overlap are applied again, which the replica tolerates."""
        self._last_id, self._last_seq = await self._position()
        changes, _, _ = await self._snapshot()
        on_message, self.replica.on_message = self.replica.on_message, None
        try:
            self.replica.apply(changes)  # no delivery for history
        finally:
            self.replica.on_message = on_message

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

    async def _snapshot(self) -> tuple[list[Change], dict[str, int], list[str]]:
        """The change list that rebuilds every unresolved conversation (with its messages),
        the agents, the queue (in order) and the records from Redis's hashes; with the
        unresolved conversations (id → how many messages Redis holds) and the queue's
        order."""
        agents = await self.redis.hgetall(P + "agents")
        changes: list[Change] = []
        for _, raw in agents.items():
            changes.append(["agent", json.loads(raw)])
        cids = [_s(c) for c in await self.redis.smembers(P + "convs")]
        queued = []
        counts: dict[str, int] = {}
        for cid in cids:
            h = {_s(k): _s(v) for k, v in (await self.redis.hgetall(P + f"conv:{cid}")).items()}
            if not h:
                continue
            changes.append(["conv", {"cid": cid, "room": h["room"], "viewer": h["viewer"],
                                     "viewer_name": h.get("viewer_name", h["viewer"]),
                                     "created_at": float(h.get("created_at", 0))}])
            log_entries = await self.redis.xrange(P + f"log:{cid}")
            counts[cid] = len(log_entries)
            for _eid, f in log_entries:
                changes.append(["msg", json.loads(f[b"j"]), None])
            fields = {k: h.get(k) for k in ("state", "agent", "agent_name", "escalation_reason",
                                            "mood", "viewer_nickname") if h.get(k)}
            # absolute, for a resync: what Redis does not hold is reset (a conversation
            # handed back to the queue has no agent; one Redis lost the escalation of is
            # not escalated), not left as this node had it
            for k in ("agent", "agent_name", "escalation_reason", "viewer_nickname"):
                fields.setdefault(k, "")
            fields.setdefault("mood", "neutral")
            for k in ("escalated_at", "assigned_at", "first_agent_reply_at"):
                fields[k] = float(h[k]) if h.get(k) else None
            fields["pinned"] = json.loads(h["pinned"]) if h.get("pinned") else []
            changes.append(["set", cid, fields])
            if h.get("agent") and h.get("state") == "assigned":
                changes.append(["attach", cid, h["agent"], float(h.get("assigned_at", 0))])
            if h.get("state") == "queued":
                queued.append((cid, float(h.get("queued_at", 0))))
        qorder = [_s(c) for c in await self.redis.lrange(P + "queue", 0, -1)]
        since = dict(queued)
        for cid in qorder:
            if cid in since:
                changes.append(["q_add", cid, since[cid], False])
        for ns in await self.redis.smembers(P + "recns"):
            ns = _s(ns)
            for key, raw in (await self.redis.hgetall(P + f"rec:{ns}")).items():
                changes.append(["rec", ns, _s(key), _s(raw)])
        return changes, counts, qorder

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
        # the position is adopted only once the snapshot is applied: a step waiting in
        # ``applied()`` must not be released onto a replica that does not hold it yet
        last_id, last_seq = await self._position()
        changes, live, qorder = await self._snapshot()
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
        held = {(ch[1], ch[2]) for ch in changes if ch[0] == "rec"}
        self.replica.apply([["rec_del", ns, k] for ns, recs in self.replica.records.items()
                            for k in list(recs) if (ns, k) not in held])
        pre: list[Change] = [["q_del", e.conversation] for e in list(self.router.queue)]
        for a in self.router.agents.values():
            pre += [["release", cid, a.user] for cid in list(a.conversations)]
        post: list[Change] = []
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
                post.append(["set", conv.id, {"state": "resolved", "resolved_at": resolved_at}])
        known = {_s(u) for u in await self.redis.hkeys(P + "agents")}
        self.replica.apply(pre + changes + post)
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
        lost_agents = [self.router.agents[u] for u in self.local_agents()
                       if u not in known and u in self.router.agents]
        if lost_agents:  # through the normal step, off the tail loop (it waits for the tail)
            t = asyncio.get_running_loop().create_task(self._reregister(lost_agents))
            self._side_tasks.add(t)
            t.add_done_callback(self._side_tasks.discard)

    async def _reregister(self, agents) -> None:
        for a in agents:
            try:
                await self.set_status(a.user, a.status, a.name, a.capacity, a.paused)
                log.warning("agent %s registered again after Redis lost its state", a.user)
            except Exception as e:
                log.warning("re-registering agent %s failed: %s", a.user, e)

    async def _tail_loop(self) -> None:
        backoff = 0.1
        while True:
            try:
                res = await self._tail_redis.xread({P + "ops": self._last_id}, block=1000,
                                                   count=500)
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
                            self.replica.apply(json.loads(fields[b"c"]))
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

    async def _check_log(self) -> None:
        """With nothing new to read, does Redis agree with this node on how many changes
        there were? Fewer: Redis lost data (restarted without it, or failed over to a
        replica that lagged). More, with no entry after ours: the entries this node has not
        read were trimmed. (A script bumps the counter and appends its entry atomically, so
        reading the counter first and the Stream second cannot see a number whose entry is
        not there yet.)"""
        if self._last_seq is None:
            return  # following a log written before entries were numbered
        seq = await self._tail_redis.get(P + "opseq")
        have = int(seq) if seq is not None else 0
        if have < self._last_seq:
            await self._resync(f"Redis holds {have} changes but this node applied "
                               f"{self._last_seq}: it lost data", "redis_lost_data")
        elif have > self._last_seq and not await self._tail_redis.xrange(
                P + "ops", min="(" + self._last_id if self._last_id != "0-0" else "-", count=1):
            await self._resync(f"changes #{self._last_seq + 1}..#{have} were trimmed from the "
                               f"log before this node read them", "trimmed")

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(3.0)
            users = list(self.local_agents())
            if users:
                try:
                    await self._s["hb"](args=[P, time.time(), *users])
                except Exception as e:
                    log.debug("agent heartbeat failed: %s", e)

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
    async def open(self, room, viewer, name, greeting, origin=None, max_open=0):
        cid = "c_" + secrets.token_urlsafe(9)
        now = time.time()
        g, g_size = "", 0
        if greeting is not None:
            author, text = greeting
            g_size = len(text.encode("utf-8"))
            rec = message_record(Conversation(cid, room, viewer, name), 0, author, text, None,
                                 "system", None, now)
            g = json.dumps(rec, ensure_ascii=False)
        res = await self._run("open", room, viewer, name, cid, now, g, origin or "",
                              max(0, int(max_open)), g_size)
        got, created, eid = _s(res[0]), int(res[1]), _s(res[2])
        if not got:
            raise too_many_open(created)
        if eid:
            await self.applied(eid)
        conv = self.store.get(got)
        if conv is None:
            await self.sync()
            conv = self.store.get(got)
        return conv, bool(created)

    async def append(self, conv, author, text, cmid, kind=None, meta=None, origin=None,
                     cap=None):
        rec = message_record(conv, 0, author, text, cmid, kind, meta, time.time())
        max_n, max_bytes = cap or (0, 0)
        res = await self._run("append", conv.id, f"{author.user}:{cmid}" if cmid else "",
                              kind or "", json.dumps(rec, ensure_ascii=False), origin or "",
                              len(text.encode("utf-8")), max_n, max_bytes)
        status = _s(res[0])
        if status == "full_n":
            raise conversation_full(conv.id, f"{max_n} messages")
        if status == "full_bytes":
            raise conversation_full(conv.id, f"{max_bytes} bytes of text")
        if status == "not_found":
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown conversation {conv.id!r}")
        if status == "resolved":
            raise ProtocolError(ErrorCode.BAD_STATE, "conversation is resolved; open a new one")
        if status == "dup":
            from .backend import message_from_record
            return message_from_record(json.loads(res[1])), True
        await self.applied(_s(res[2]))
        n = json.loads(res[1])["n"]
        return conv.messages[n - 1], False

    async def escalate(self, conv, reason):
        res = await self._run("escalate", conv.id, reason, time.time())
        if _s(res[0]) != "ok":
            await self.sync()
            return False
        await self.applied(_s(res[1]))
        return True

    async def assign_next(self):
        res = await self._run("assign", time.time(), self.HB_TTL_S)
        if not res:
            return None
        cid, user, eid = _s(res[0]), _s(res[1]), _s(res[2])
        await self.applied(eid)
        if not cid:
            return await self.assign_next()
        return self.store.get(cid), self.router.agents[user]

    async def resolve(self, conv, by=""):
        res = await self._run("resolve", conv.id, time.time(), int(self.retention_s), by or "")
        if _s(res[0]) != "ok":
            return False
        await self.applied(_s(res[1]))
        return True

    async def transfer(self, conv, to_agent, reason):
        res = await self._run("transfer", conv.id, to_agent or "", time.time())
        status, detail = _s(res[0]), _s(res[1])
        if status == "not_found":
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown conversation {conv.id!r}")
        if status == "bad_state":
            raise ProtocolError(ErrorCode.BAD_STATE,
                                f"only an assigned conversation can be transferred (it is {detail})")
        if status == "no_agent":
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown agent {to_agent!r}")
        if status == "same":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "conversation is already with that agent")
        if status == "busy":
            raise ProtocolError(ErrorCode.BAD_STATE, f"agent {to_agent!r} is {detail}")
        await self.applied(_s(res[2]))
        return detail or None

    async def set_status(self, user, status, name, capacity=None, paused=False):
        cap = capacity or self.capacities.get(user) or self.default_capacity
        res = await self._run("status", user, status, name or "", cap, time.time(),
                              "1" if paused else "0",
                              "1" if (capacity or user in self.capacities) else "0")
        await self.applied(_s(res[1]))
        return self.router.agents[user]

    async def set_fields(self, conv, **fields):
        res = await self._run("fields", conv.id, json.dumps(fields, ensure_ascii=False))
        if _s(res[0]) == "ok":
            await self.applied(_s(res[1]))

    async def put(self, namespace, key, value, *, if_absent=False, expect=None, ttl_s=None):
        if "\n" in namespace:
            raise ValueError("a record namespace must not contain a newline")
        res = await self._run("put", namespace, key, json.dumps(value, ensure_ascii=False),
                              "1" if if_absent else "0",
                              json.dumps(expect, ensure_ascii=False) if expect else "",
                              "" if ttl_s is None else repr(time.time() + ttl_s))
        written, cur, eid = int(res[0]), _s(res[1]), _s(res[2])
        if written:
            await self.applied(eid)
            return True, value
        return False, (json.loads(cur) if cur else None)

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
