"""The multi-node archiver: one node at a time copies Redis's change streams into PostgreSQL.

With Redis, the change log every node applies is the Stream ``ld:{ld}:ops`` (support) and,
once an archiver is configured, ``ld:{r:<room>}:ops`` per room (accepted orders with the
stock and gift counters they set: a room's order is committed on the room's own Redis slot,
so it cannot be appended to the support stream atomically; see ``redis_room.py``). Every
node runs an :class:`Archiver` candidate; the one holding the Redis lease
(:mod:`gateway.lease`) is the leader and the only one that writes.

Why a leader and not every node writing: each change would be written once per node, and
the trimming of Redis would have no single owner that knows what is safe to drop.

How a batch is written, and why a crash never re-applies or skips one: the leader reads the
entries after its cursor (``XRANGE``), turns them into typed change records
(``changes.from_wire``) and those into store writes (``store.ingest.writes_from_changes``;
room records with :func:`room_writes`), then commits, in **one** PostgreSQL transaction:

1. ``archive_fence``: set to the leader's fencing number *if it is not older* than the one
   there; a stale leader (paused past its lease, then woken) finds a newer number and its
   transaction is rolled back (``FenceRefused``, counted);
2. ``archive_cursor``: moved from the id the leader read after to the last id of the batch,
   *only if* it still holds the former (compare and set); so two writers can never both
   apply the same entries, and none can skip any;
3. the writes.

Only then does it trim the stream (``XTRIM MINID``) up to what is archived, keeping the
last ``keep_s`` seconds for nodes whose tail is briefly behind. Writers' ``XADD MAXLEN ~
500000`` remains as a safety cap: if the archiver is down long enough for a stream to reach
it, the oldest unarchived entries are dropped; the archiver sees the hole in the entries'
numbers (``s``: 1, 2, 3, … with no gap) when it resumes, logs it and counts it
(``livedesk_archiver_lost_entries_total{reason="trimmed"}``).

What the archive holds is what ``Store.load_live_state()`` reads, so a Redis that restarted
empty can be repopulated from it (losing at most the archiver's lag).

Erasure (``RedisBackend.erase_viewer``): the stream still holds the erased viewer's earlier
changes, and the archiver may not have read them yet. Until it has archived every stream
past the erasure, the viewer and its conversations are listed in ``ld:{ld}:erasing``, and the
archiver leaves every change about them out of what it writes (so the store, erased by the
eraser, gets nothing of them back). Then it finishes the erasure: it deletes the entries
naming them from the streams (all archived by then), erases the store once more (in case a
batch read before the list was written committed after the eraser's erase) and forgets the
list entry — so nothing of the viewer stays in Redis or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from .lease import Held, RedisLease
from .store import Store
from .store.database import Stmt
from .store.ingest import writes_from_changes
from .store.records import OrderRecorded, RoomCounters, Write
from .store.writes import statements
from .support.changes import (
    ChangeFormatError,
    ConversationOpened,
    GiftClaimed,
    GiftQuotaSet,
    OrderPlaced,
    RecordPut,
    RoomChange,
    StockSet,
    SupportChange,
    from_wire,
    record_about,
)
from .support.redis_backend import ERASING, RedisBackend

log = logging.getLogger(__name__)

SUPPORT_STREAM = "ld:{ld}:ops"
LEASE_KEY = "ld:{ld}:archiver"
SAFETY_CAP = 500_000  # XADD MAXLEN ~ of every change stream (redis_backend.py, redis_commit.py)


def room_stream(room: str) -> str:
    """The change stream of one room (same hash tag as the room's keys)."""
    return f"ld:{{r:{room}}}:ops"


def counter_of(stream: str) -> str:
    """The counter that numbers a stream's entries (``…:ops`` → ``…:opseq``)."""
    return stream[: -len("ops")] + "opseq"


def id_key(eid: str) -> tuple[int, int]:
    ms, _, seq = eid.partition("-")
    return int(ms), int(seq or 0)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class FenceRefused(RuntimeError):
    """A newer archiver (higher fencing number) has written: this one is stale."""


class CursorMoved(RuntimeError):
    """The stored position is not where this archiver read from (another wrote meanwhile)."""


class LeadershipLost(RuntimeError):
    """The lease could not be renewed in time."""


@dataclass(frozen=True)
class Cursor:
    """Where the archive has got to in one stream: the last entry written and its number."""

    stream: str
    last_id: str = "0-0"
    s: int = 0
    fence: int = 0

    @property
    def fresh(self) -> bool:
        return self.last_id == "0-0"


@dataclass(frozen=True)
class ArchiverConfig:
    lease_ttl_s: float = 5.0  # a dead leader's lease lapses after this long
    keep_s: float = 60.0  # archived entries younger than this stay in Redis (lagging tails)
    batch: int = 2000  # entries per read and per transaction, at most
    poll_s: float = 0.05  # idle wait of the leader between reads
    measure_every_s: float = 0.5  # how often the lag gauges are refreshed


def _about_erased(ch: Any, viewers: set[str], convs: set[str]) -> bool:
    """Whether a change is about an erased viewer or one of its conversations (a
    conversation opened by the viewer is added to ``convs``)."""
    if isinstance(ch, ConversationOpened) and (ch.viewer in viewers or ch.cid in convs):
        convs.add(ch.cid)
        return True
    if isinstance(ch, OrderPlaced):
        return ch.user in viewers
    if isinstance(ch, RecordPut):
        viewer, conv = record_about(ch.namespace, ch.key, ch.value)
        return viewer in viewers or conv in convs
    return getattr(ch, "cid", None) in convs


def room_writes(changes: Sequence[RoomChange], at: float) -> list[Write]:
    """Store writes for a room's change records: the order (its id, viewer, what it got) and
    the counters it set, or a host's edit of stock or a gift's quota. (Kept here, beside the one reader of room streams, until the store
    feed maps room records itself; it decides nothing, it copies.)"""
    out: list[Write] = []
    for ch in changes:
        if isinstance(ch, OrderPlaced):
            out.append(OrderRecorded(ch.room, ch.order_id, ch.user, ch.sku, ch.qty,
                                     ch.body(), ch.ts))
        elif isinstance(ch, StockSet):
            out.append(RoomCounters(ch.room, ((ch.sku, ch.stock),), (), at))
        elif isinstance(ch, GiftClaimed):
            out.append(RoomCounters(ch.room, (), ((ch.promotion, ch.claimed),), at))
        elif isinstance(ch, GiftQuotaSet):  # a host's edit
            out.append(RoomCounters(ch.room, (), (), at,
                                    ((ch.promotion, ch.limit, ch.active),)))
    return out


class ArchiveLedger:
    """The archiver's rows in the store: the fence and one cursor per stream, and the one
    transaction that writes a batch with them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def fence(self) -> int:
        rows = await self.store.db.fetch("SELECT fence FROM archive_fence WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    async def cursors(self, streams: Sequence[str]) -> dict[str, Cursor]:
        """The stored cursors of ``streams`` (a stream never archived gets its row now)."""
        if streams:
            now = time.time()
            await self.store.db.transact([Stmt(
                "INSERT INTO archive_cursor (stream, last_id, s, fence, at) "
                "VALUES (?, '0-0', 0, 0, ?) ON CONFLICT (stream) DO NOTHING",
                [(st, now) for st in streams], many=True)])
        rows = await self.store.db.fetch("SELECT stream, last_id, s, fence FROM archive_cursor")
        have = {r[0]: Cursor(r[0], r[1], int(r[2]), int(r[3])) for r in rows}
        return {st: have.get(st, Cursor(st)) for st in streams}

    async def commit(self, cur: Cursor, last_id: str, s: int, fence: int, holder: str,
                     writes: Sequence[Write]) -> Cursor:
        """Write ``writes`` and move ``cur`` to ``last_id`` (number ``s``), all or nothing;
        refused (:class:`FenceRefused`, :class:`CursorMoved`) without writing anything."""
        now = time.time()
        stmts = [Stmt("UPDATE archive_fence SET fence = ?, holder = ?, at = ? "
                      "WHERE id = 1 AND fence <= ?", (fence, holder, now, fence)),
                 Stmt("UPDATE archive_cursor SET last_id = ?, s = ?, fence = ?, at = ? "
                      "WHERE stream = ? AND last_id = ?",
                      (last_id, s, fence, now, cur.stream, cur.last_id)),
                 *statements(list(writes), self.store.db.dialect, now)]

        def check(counts: list[int]) -> list[Stmt]:
            # raising here rolls the whole transaction back, writes included
            if counts[0] != 1:
                raise FenceRefused(f"fencing number {fence} is older than the archive's")
            if counts[1] != 1:
                raise CursorMoved(f"{cur.stream} is no longer archived up to {cur.last_id}")
            return []

        await self.store.db.transact(stmts, check)
        return Cursor(cur.stream, last_id, s, fence)


@dataclass
class Lag:
    seconds: float = 0.0  # age of the oldest entry not archived yet (max over streams)
    entries: int = 0  # entries not archived yet (sum over streams)


class Archiver:
    """One node's archiver candidate; leads while it holds the lease."""

    def __init__(self, redis: aioredis.Redis, store: Store,
                 streams: Callable[[], Sequence[str]], node_id: str,
                 config: ArchiverConfig | None = None, metrics: Any = None,
                 lease: RedisLease | None = None) -> None:
        self.redis = redis
        self.store = store
        self.ledger = ArchiveLedger(store)
        self.streams = streams
        self.node_id = node_id or "node"
        self.config = config or ArchiverConfig()
        self.metrics = metrics
        self.lease = lease or RedisLease(redis, LEASE_KEY, self.config.lease_ttl_s)
        self.held: Held | None = None
        self.archived = 0  # entries this node archived
        self.lost = 0  # entries trimmed from Redis before they were archived
        self.refusals = 0  # batches the fence refused
        self.lag = Lag()
        self._task: asyncio.Task | None = None
        self._cursors: dict[str, Cursor] = {}
        self._trimmed_at: dict[str, float] = {}
        self._measured_at = 0.0
        self._closing = False
        # erasures not finished yet: viewer → (its conversations, when, the note as read)
        self._erasing: dict[str, tuple[frozenset[str], float, bytes | str]] = {}

    @property
    def leading(self) -> bool:
        return self.held is not None

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="archiver")

    async def close(self) -> None:
        """Stop, and give the lease up so another node takes over at once."""
        self._closing = True  # a loop whose cancellation redis-py swallowed ends at its turn
        task, self._task = self._task, None
        for _ in range(5):
            if task is None or task.done():
                break
            task.cancel()
            await asyncio.wait([task], timeout=1.0)
        if task is not None and not task.done():
            log.warning("archiver: its task did not stop when cancelled")
        elif task is not None and not task.cancelled() and task.exception() is not None:
            log.error("archiver: ended with %r", task.exception())
        held, self.held = self.held, None
        if held is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.lease.release(held), 1.0)
        self._set_leader(False)

    # --- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = 0.1
        while not self._closing:
            try:
                floor = await self.ledger.fence()
                asked = time.monotonic()  # the lease runs from before we asked for it
                held = await self.lease.acquire(floor)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("archiver: cannot reach Redis or the store (%s); retrying", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if held is None:  # another node leads: watch the lag, try again soon
                await self._measure_quietly(None)
                await asyncio.sleep(min(1.0, self.config.lease_ttl_s / 5))
                continue
            self.held = held
            self._set_leader(True)
            log.info("archiver: node %s leads (fence %d)", self.node_id, held.fence)
            try:
                await self._lead(held, asked)
            except FenceRefused as e:
                self._refused(e)
            except LeadershipLost as e:
                log.warning("archiver: node %s lost the lease: %s", self.node_id, e)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis unreachable while renewing: stop leading
                log.warning("archiver: node %s stops leading (%s)", self.node_id, e)
                await asyncio.sleep(0.5)
            finally:
                if self.held is held:
                    self.held = None
                    self._set_leader(False)
                    # not leading any more: let another node take over without the TTL
                    # (nothing if the lease is already another's: the release checks)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.lease.release(held), 1.0)

    async def _lead(self, held: Held, acquired: float | None = None) -> None:
        """Archive while the lease is ours. ``acquired``: when we asked for it (monotonic);
        the lease is assumed to run from then, never from later."""
        ttl = self.config.lease_ttl_s
        renewed = time.monotonic() if acquired is None else acquired
        self._cursors = {}
        backoff = 0.1
        while not self._closing:
            if time.monotonic() - renewed >= ttl / 3:
                asked = time.monotonic()
                if not await self.lease.renew(held):
                    raise LeadershipLost("the lease is held by another node, or expired")
                renewed = asked
            if time.monotonic() > renewed + ttl:
                raise LeadershipLost("the lease expired before it was renewed")
            try:
                progressed = await self.archive_once(held.fence)
                backoff = 0.1
            except (FenceRefused, asyncio.CancelledError):
                raise
            except CursorMoved as e:
                log.warning("archiver: %s; reading the positions again", e)
                self._cursors = {}
                continue
            except Exception as e:
                log.warning("archiver: a batch was not written (%s); retrying in %.1fs", e,
                            backoff)
                self._cursors = {}
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            await self._measure_quietly(self._cursors)
            if not progressed:
                await asyncio.sleep(self.config.poll_s)

    async def archive_once(self, fence: int) -> bool:
        """One read and (at most) one transaction per stream; True if anything was written.
        Public so tests can drive a leader step by step (and a stale one)."""
        await self._read_erasing()
        streams = list(self.streams())
        missing = [st for st in streams if st not in self._cursors]
        if missing:
            self._cursors.update(await self.ledger.cursors(missing))
        progressed = False
        for st in streams:
            cur = self._cursors[st]
            new = await self._archive_stream(cur, fence)
            if new is not cur:
                self._cursors[st] = new
                progressed = progressed or new.last_id != cur.last_id
        if self._erasing:
            await self._finish_erasures(streams)
        return progressed

    # --- erasure -------------------------------------------------------------------------
    async def _read_erasing(self) -> None:
        raw = await self.redis.hgetall(ERASING)
        self._erasing = {}
        for v, body in raw.items():
            try:
                d = json.loads(body)
                self._erasing[_s(v)] = (frozenset(d.get("conversations") or ()),
                                        float(d.get("at") or 0.0), body)
            except (ValueError, TypeError, AttributeError):
                log.error("archiver: an unreadable erasure note for a viewer; ignored")

    def _erased(self) -> tuple[set[str], set[str]]:
        viewers = set(self._erasing)
        convs: set[str] = set()
        for cids, _, _ in self._erasing.values():
            convs |= cids
        return viewers, convs

    async def _finish_erasures(self, streams: Sequence[str]) -> None:
        """For each erasure every stream is archived past: delete the entries naming the
        viewer or its conversations (archived, so nothing is lost), erase the store again,
        forget the note."""
        drained: dict[str, bool] = {}  # stream → nothing left to archive
        for st in streams:
            cur = self._cursors[st]
            drained[st] = not await self.redis.xrange(
                st, min="-" if cur.fresh else "(" + cur.last_id, count=1)
        for viewer, (cids, at, body) in list(self._erasing.items()):
            if not all(drained[st] or id_key(self._cursors[st].last_id)[0] >= at * 1000
                       for st in streams):
                continue  # a stream still holds entries from before this erasure
            n = 0
            for st in streams:
                cur = self._cursors[st]
                if not cur.fresh:
                    n += await RedisBackend.scrub_stream(self.redis, st, cur.last_id, viewer,
                                                         sorted(cids))
            await self.store.erase_viewer(viewer, "archiver", conversations=sorted(cids),
                                          tombstone=False)
            # only if it is still this erasure's note (the viewer was not erased again since)
            if await self.redis.hget(ERASING, viewer) == body:
                await self.redis.hdel(ERASING, viewer)
            self._erasing.pop(viewer, None)
            log.info("archiver: an erasure is archived; %d stream entries naming the viewer "
                     "deleted", n)

    async def _archive_stream(self, cur: Cursor, fence: int) -> Cursor:
        start = "-" if cur.fresh else "(" + cur.last_id
        raw = cast(list[tuple[bytes, dict[bytes, bytes]]],
                   await self.redis.xrange(cur.stream, min=start, count=self.config.batch))
        if not raw:
            counter = await self.redis.get(counter_of(cur.stream))
            if cur.s > 0 and int(counter or 0) < cur.s:
                # Redis went back (restarted without its data): its new entries may carry
                # ids below the cursor, so start the stream over (repopulating Redis from
                # the archive is the restore's job)
                log.error("archiver: %s holds %d changes but %d were archived: Redis lost "
                          "data; archiving its stream from the start", cur.stream,
                          int(counter or 0), cur.s)
                return await self.ledger.commit(cur, "0-0", 0, fence, self.node_id, ())
            return cur
        support: list[SupportChange] = []
        room: list[RoomChange] = []
        erased_viewers, erased_convs = self._erased()
        prev = cur.s
        lost = malformed = 0
        last_id = cur.last_id
        for eid, fields in raw:
            last_id = _s(eid)
            seq = int(fields[b"s"]) if b"s" in fields else None
            if seq is not None:
                if prev and seq > prev + 1:
                    lost += seq - prev - 1
                elif prev and seq <= prev:
                    log.error("archiver: %s entry %s is change #%d after #%d: Redis lost data",
                              cur.stream, last_id, seq, prev)
                prev = seq
            try:
                for w in json.loads(fields[b"c"]):
                    ch = from_wire(w)
                    if erased_viewers and _about_erased(ch, erased_viewers, erased_convs):
                        continue
                    if isinstance(ch, OrderPlaced | StockSet | GiftClaimed | GiftQuotaSet):
                        room.append(ch)
                    else:
                        support.append(ch)
            except (ChangeFormatError, ValueError, KeyError) as e:
                malformed += 1
                log.error("archiver: %s entry %s is not a change list (%s); not archived",
                          cur.stream, last_id, e)
        at = id_key(last_id)[0] / 1000.0
        writes = [*writes_from_changes(support), *room_writes(room, at)]
        new = await self.ledger.commit(cur, last_id, prev, fence, self.node_id, writes)
        self.archived += len(raw)
        if self.metrics is not None:
            self.metrics.archiver_entries.inc(len(raw))
        if lost and not cur.fresh:
            self._lost(cur.stream, "trimmed", lost, cur.s)
        if malformed:
            self._lost(cur.stream, "malformed", malformed, cur.s)
        await self._trim(new)
        return new

    async def _trim(self, cur: Cursor) -> None:
        """Drop what is archived and older than ``keep_s`` (at most once a second a stream)."""
        now = time.time()
        if now - self._trimmed_at.get(cur.stream, 0.0) < 1.0:
            return
        self._trimmed_at[cur.stream] = now
        keep = (int((now - self.config.keep_s) * 1000), 0)
        upto = min(id_key(cur.last_id), keep)
        if upto <= (0, 0):
            return
        try:
            # MINID keeps every entry at or after ``upto``: never one not archived yet.
            # Exact, not ``~``: approximate trimming only drops whole radix-tree nodes (about
            # 100 entries), so a quiet stream would never shrink; once a second it is cheap
            await self.redis.xtrim(cur.stream, minid=f"{upto[0]}-{upto[1]}", approximate=False)
        except Exception as e:
            log.warning("archiver: trimming %s failed (%s)", cur.stream, e)

    # --- lag -----------------------------------------------------------------------------
    async def measure(self, cursors: dict[str, Cursor] | None = None) -> Lag:
        """How far the archive is behind Redis: entries (counter − archived number) and the
        age of the oldest entry not archived. ``cursors``: the leader's own; otherwise the
        stored ones."""
        streams = list(self.streams())
        if cursors is None or any(st not in cursors for st in streams):
            rows = await self.store.db.fetch("SELECT stream, last_id, s FROM archive_cursor")
            stored = {r[0]: Cursor(r[0], r[1], int(r[2])) for r in rows}
            cursors = {st: stored.get(st, Cursor(st)) for st in streams}
        lag = Lag()
        now_ms = time.time() * 1000
        for st in streams:
            cur = cursors[st]
            async with self.redis.pipeline(transaction=False) as p:
                p.get(counter_of(st))
                p.xrange(st, min="-" if cur.fresh else "(" + cur.last_id, count=1)
                seq, first = await p.execute()
            behind = int(seq or 0) - cur.s if not cur.fresh else (1 if first else 0)
            if first:
                lag.seconds = max(lag.seconds, max(0.0, (now_ms - id_key(_s(first[0][0]))[0])
                                                   / 1000.0))
                lag.entries += max(behind, 1)
        self.lag = lag
        if self.metrics is not None:
            self.metrics.archiver_lag_seconds.set(lag.seconds)
            self.metrics.archiver_lag_entries.set(lag.entries)
        return lag

    async def _measure_quietly(self, cursors: dict[str, Cursor] | None) -> None:
        now = time.monotonic()
        if now - self._measured_at < self.config.measure_every_s:
            return
        self._measured_at = now
        try:
            await self.measure(cursors)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.debug("archiver: lag not measured (%s)", e)

    # --- accounting ----------------------------------------------------------------------
    def _set_leader(self, on: bool) -> None:
        if self.metrics is not None:
            self.metrics.archiver_leader.set(1 if on else 0)

    def _refused(self, e: Exception) -> None:
        self.refusals += 1
        if self.metrics is not None:
            self.metrics.archiver_fence_refusals.inc()
        log.error("archiver: node %s: %s; it stops leading", self.node_id, e)

    def _lost(self, stream: str, reason: str, n: int, after: int) -> None:
        self.lost += n
        if self.metrics is not None:
            self.metrics.archiver_lost_entries.labels(reason=reason).inc(n)
        log.error("archiver: %d entries of %s after change #%d were %s before they were "
                  "archived", n, stream, after, "trimmed from Redis" if reason == "trimmed"
                  else "unreadable")
