"""Where sessions and users live beyond one node: session mirrors and presence (Redis).

* :class:`RedisSessionMirror` writes every numbered frame of a session to a Redis Stream
  *before* the socket writer sends it, so a client that saw seq N can resume on any other
  node even if this one is killed a microsecond later. Writes are fenced: the node that last
  claimed the session is the only one whose frames are accepted, so a half-dead node can't
  interleave frames after another node took over.
* :class:`RedisPresence` keeps ``user → nodes`` (with role/room) and the node registry with
  load figures, both as TTL'd keys refreshed by a heartbeat. A dead node vanishes from both
  within the TTL (10 s).

Layout (hash tags: one per session, one for presence):
``ld:{s:<sid>}:meta`` hash (user, role, room, name, exp, seq, node, epoch);
``ld:{s:<sid>}:frames`` stream, entry ids ``0-<seq>``; ``ld:{s:<sid>}:cur`` hash stream → n;
``ld:{p}:user:<user>`` hash node → JSON; ``ld:{p}:node:<id>`` JSON with TTL; ``ld:{p}:nodes`` set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.typing import StreamEntry

from .auth import Claims
from .events import Events, SessionFenced
from .redis_bus import as_text
from .session import RetainedFrame, Session

log = logging.getLogger(__name__)


def sk(sid: str, name: str) -> str:
    return f"ld:{{s:{sid}}}:{name}"


MIRROR_LUA = """
local node = redis.call('HGET', KEYS[1], 'node')
if node and node ~= ARGV[1] then return 0 end
local ttl = tonumber(ARGV[2])
local maxlen = ARGV[3]
local n = tonumber(ARGV[4])
local i = 5
local last = 0
for _ = 1, n do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '0-' .. ARGV[i], 't', ARGV[i + 1])
  last = tonumber(ARGV[i])
  i = i + 2
end
if last > 0 then redis.call('HSET', KEYS[1], 'seq', last) end
local m = tonumber(ARGV[i]); i = i + 1
for _ = 1, m do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return 1
"""

CLAIM_LUA = """
redis.call('HSET', KEYS[1], 'node', ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'epoch', 1)
"""


@dataclass
class SessionRecord:
    id: str
    claims: Claims
    seq: int
    node: str | None
    cursors: dict[str, int]


class RedisSessionMirror:
    """Per-session write-behind-but-before-send mirror of numbered frames."""

    def __init__(self, redis: aioredis.Redis, node_id: str, ttl_s: int = 660,
                 max_frames: int = 20000, events: Events | None = None):
        self.redis = redis
        self.node_id = node_id
        self.ttl_s = ttl_s
        self.max_frames = max_frames
        self.events = events  # SessionFenced goes there (the hub stops writing to the session)
        self._mirror = redis.register_script(MIRROR_LUA)
        self._claim = redis.register_script(CLAIM_LUA)
        self._pending: dict[str, list[tuple[int, str, Sequence[Any] | None]]] = {}
        self._mirrored: dict[str, int] = {}
        self._waiters: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._created: set[str] = set()
        self.failures = 0
        self.healthy = True  # False from a failed write until the next successful one

    # --- called from Session ---------------------------------------------------------------
    def push(self, session: Session, seq: int, text: str, cursor: Sequence[Any] | None) -> None:
        """Queue frame ``seq`` for the mirror; ``cursor`` is the event's ``[stream, n]``."""
        self._pending.setdefault(session.id, []).append((seq, text, cursor))
        if session.id not in self._tasks or self._tasks[session.id].done():
            self._tasks[session.id] = asyncio.get_running_loop().create_task(self._flush(session))

    async def wait_mirrored(self, session: Session, seq: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self._mirrored.get(session.id, 0) < seq:
            if not self.healthy:
                # Redis is failing right now: don't hold every frame for the timeout; send
                # (availability over durability for this frame) and count it.
                self.failures += 1
                return
            ev = self._waiters.setdefault(session.id, asyncio.Event())
            left = deadline - time.monotonic()
            if left <= 0:
                # Redis unreachable for too long: send anyway (availability over durability
                # for this frame) and count it; /readyz already reports the outage.
                self.failures += 1
                return
            try:
                await asyncio.wait_for(ev.wait(), left)
            except TimeoutError:
                pass
            ev.clear()

    async def _flush(self, session: Session) -> None:
        backoff = 0.05
        while session.id not in self._created:
            try:
                await self.create(session)
                self._created.add(session.id)
            except Exception as e:
                log.warning("session record create failed (%s); retrying", e)
                self._unhealthy()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
        while self._pending.get(session.id):
            batch = self._pending.pop(session.id)
            args: list[Any] = [self.node_id, self.ttl_s, self.max_frames, len(batch)]
            cursors: dict[str, int] = {}
            for seq, text, cur in batch:
                args += [seq, text]
                if cur is not None:
                    cursors[cur[0]] = cur[1]
            args.append(len(cursors))
            for k, v in cursors.items():
                args += [k, v]
            while True:
                try:
                    ok = await self._mirror(keys=[sk(session.id, "meta"), sk(session.id, "frames"),
                                                  sk(session.id, "cur")], args=args)
                    self.healthy = True
                    break
                except Exception as e:
                    log.warning("session mirror write failed (%s); retrying", e)
                    self._unhealthy()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
            if not ok:
                log.info("session %s was taken over by another node", session.id)
                self._mirrored[session.id] = 1 << 62  # release writers; socket is closed below
                if self.events is not None:
                    self.events.publish(SessionFenced(session))
            else:
                self._mirrored[session.id] = batch[-1][0]
            ev = self._waiters.get(session.id)
            if ev:
                ev.set()

    def _unhealthy(self) -> None:
        self.healthy = False
        for ev in self._waiters.values():
            ev.set()  # wake writers: they stop waiting while Redis is failing

    def forget(self, session_id: str) -> None:
        self._created.discard(session_id)
        self._pending.pop(session_id, None)
        self._mirrored.pop(session_id, None)
        self._waiters.pop(session_id, None)
        t = self._tasks.pop(session_id, None)
        if t and not t.done():
            t.cancel()

    # --- lifecycle of records --------------------------------------------------------------
    async def create(self, session: Session) -> None:
        c = session.claims
        await self.redis.hset(sk(session.id, "meta"), mapping={
            "user": c.user, "role": c.role, "room": c.room or "", "name": c.name or "",
            "exp": c.exp or 0, "node": self.node_id})
        await self.redis.expire(sk(session.id, "meta"), self.ttl_s)

    async def claim(self, session_id: str) -> int:
        return int(await self._claim(keys=[sk(session_id, "meta")], args=[self.node_id]))

    async def load(self, session_id: str) -> SessionRecord | None:
        meta = await self.redis.hgetall(sk(session_id, "meta"))
        if not meta:
            return None
        d = {as_text(k): as_text(v) for k, v in meta.items()}
        cur = await self.redis.hgetall(sk(session_id, "cur"))
        claims = Claims(user=d["user"], role=d["role"], room=d.get("room") or None,
                        name=d.get("name") or None, exp=int(d.get("exp") or 0) or None)
        return SessionRecord(id=session_id, claims=claims, seq=int(d.get("seq", 0)),
                             node=d.get("node"),
                             cursors={as_text(k): int(v) for k, v in cur.items()})

    async def frames_after(self, session_id: str, last_seq: int) -> list[RetainedFrame] | None:
        """Frames after ``last_seq`` or None when some of them were trimmed away."""
        first = await self.redis.xrange(sk(session_id, "frames"), count=1)
        entries = await self.redis.xrange(sk(session_id, "frames"), min=f"0-{last_seq + 1}")
        if first:
            oldest = _frame_entry(first[0])[0]
            if last_seq + 1 < oldest:
                return None
        now = time.monotonic()
        return [RetainedFrame(seq, frame, now)
                for seq, frame in map(_frame_entry, entries or ())]

    async def delete(self, session_id: str) -> None:
        await self.redis.delete(sk(session_id, "meta"), sk(session_id, "frames"),
                                sk(session_id, "cur"))


def _frame_entry(entry: StreamEntry) -> tuple[int, str]:
    """``(seq, text)`` of one entry of a session's frames stream (id ``0-<seq>``, field ``t``)."""
    eid, fields = entry
    if eid is None or fields is None:  # a deleted entry: never in a stream we only XADD to
        raise ValueError(f"malformed frames stream entry {entry!r}")
    return int(as_text(eid).split("-")[1]), as_text(fields[b"t"])


class RedisPresence:
    """user → nodes, and the node registry, with TTL heartbeats."""

    def __init__(self, redis: aioredis.Redis, node_id: str, ttl_s: int = 10,
                 heartbeat_s: float = 3.0, info: Callable[[], dict[str, Any]] | None = None):
        self.redis = redis
        self.node_id = node_id
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s
        self.info = info or (lambda: {})
        self._users: dict[str, dict[str, Any]] = {}  # local users → presence info
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        try:
            p = self.redis.pipeline()
            for user in self._users:
                p.hdel(f"ld:{{p}}:user:{user}", self.node_id)
            p.delete(f"ld:{{p}}:node:{self.node_id}")
            p.srem("ld:{p}:nodes", self.node_id)
            await asyncio.wait_for(p.execute(), 1.0)
        except Exception:
            pass

    def set_local(self, user: str, info: dict[str, Any] | None) -> None:
        if info is None:
            self._users.pop(user, None)
            asyncio.get_running_loop().create_task(self._drop(user))
        else:
            self._users[user] = info
            asyncio.get_running_loop().create_task(self._write_user(user, info))

    async def _drop(self, user: str) -> None:
        try:
            await self.redis.hdel(f"ld:{{p}}:user:{user}", self.node_id)
        except Exception:
            pass

    async def _write_user(self, user: str, info: dict[str, Any]) -> None:
        try:
            key = f"ld:{{p}}:user:{user}"
            p = self.redis.pipeline()
            p.hset(key, self.node_id, json.dumps(dict(info, ts=time.time())))
            p.expire(key, self.ttl_s)
            await p.execute()
        except Exception as e:
            log.debug("presence write failed: %s", e)

    async def users_online(self, user: str) -> list[dict[str, Any]]:
        """Presence entries of ``user`` on live nodes (stale entries are ignored)."""
        raw = await self.redis.hgetall(f"ld:{{p}}:user:{user}")
        out = []
        now = time.time()
        for node, v in raw.items():
            d = json.loads(v)
            if now - d.get("ts", 0) <= self.ttl_s:
                d["node"] = as_text(node)
                out.append(d)
        return out

    async def nodes(self) -> dict[str, dict[str, Any]]:
        ids = await self.redis.smembers("ld:{p}:nodes")
        out = {}
        for raw_id in ids:
            nid = as_text(raw_id)
            raw = await self.redis.get(f"ld:{{p}}:node:{nid}")
            if raw:
                out[nid] = json.loads(raw)
        return out

    async def node_alive(self, node_id: str) -> bool:
        return bool(await self.redis.exists(f"ld:{{p}}:node:{node_id}"))

    async def beat(self) -> None:
        """Write this node's registry entry now (e.g. when it starts draining)."""
        try:
            await self.redis.set(f"ld:{{p}}:node:{self.node_id}",
                                 json.dumps(dict(self.info(), ts=time.time())), ex=self.ttl_s)
        except Exception as e:
            log.debug("presence beat failed: %s", e)

    async def _beat(self) -> None:
        while True:
            try:
                p = self.redis.pipeline()
                p.set(f"ld:{{p}}:node:{self.node_id}",
                      json.dumps(dict(self.info(), ts=time.time())), ex=self.ttl_s)
                p.sadd("ld:{p}:nodes", self.node_id)
                for user, info in self._users.items():
                    key = f"ld:{{p}}:user:{user}"
                    p.hset(key, self.node_id, json.dumps(dict(info, ts=time.time())))
                    p.expire(key, self.ttl_s)
                await p.execute()
            except Exception as e:
                log.debug("presence heartbeat failed: %s", e)
            await asyncio.sleep(self.heartbeat_s)
