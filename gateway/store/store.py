"""The durable store: one writer (group commit), searches, transcripts, erasure, retention
and the live state a node restarts from.

Writes arrive as batches of change records (:data:`~gateway.store.records.Write`; ``await store.apply(batch)``
returns once the batch is committed). Batches that arrive while a commit is running are
committed together in the next transaction, so the fsync is paid once per group, not per
message. A group that fails is retried batch by batch, so one bad batch fails only its own
caller. Erasure and retention sweeps go through the same queue: they see every write
submitted before them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..support.changes import AgentStatus
from . import terms as T
from .database import Database, Stmt, StoreError
from .query import SearchQuery
from .records import (
    ConversationRow,
    EraseReport,
    LiveState,
    MessageRow,
    OrderRow,
    QueueEntry,
    RecordRow,
    Retention,
    SearchHit,
    StoreInfo,
    SweepReport,
    Transcript,
    Write,
)
from .writes import dumps, statements

log = logging.getLogger(__name__)

MAX_GROUP_WRITES = 20_000  # writes committed in one transaction at most
MAX_SCAN = 20_000  # messages a text search examines at most (newest first)
FIRST_WINDOW = 20_000  # message ids a text search looks at first (then ×4 each time)
SNIPPET_CHARS = 120

_CONV_COLS = ("c.id, c.room, c.viewer, c.viewer_name, c.state, c.agent, c.agent_name, "
              "c.opened_at, c.escalated_at, c.assigned_at, c.first_agent_reply_at, "
              "c.resolved_at, c.resolved_by, c.escalation_reason, c.mood, c.viewer_nickname, "
              "c.extra")
_MSG_COLS = "conversation, n, role, author, author_name, text, cmid, kind, meta, ts"


@dataclass
class _Job:
    stmts: list[Stmt]
    future: asyncio.Future
    batch: list[Write] | None = None  # a write batch (may share a transaction)
    finish: Any = None
    after: Any = None  # coroutine function run after the commit (outside the transaction)


class Store:
    def __init__(self, db: Database, retention: Retention | None = None) -> None:
        self.db = db
        self.retention = retention or Retention()
        self.schema_version = 0
        self._jobs: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        self.commits = 0  # transactions of write batches (group commit makes it < batches)
        self.batches = 0

    @property
    def backend(self) -> str:
        return self.db.dialect.name

    async def start(self, target: int | None = None) -> Store:
        self.schema_version = await (self.db.open() if target is None
                                     else self.db.open(target))
        self._task = asyncio.get_running_loop().create_task(self._writer(),
                                                            name="store-writer")
        return self

    async def close(self) -> None:
        """Commit what was submitted, then close."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._wake.set()
            await self._task  # it returns once the queue is empty and committed
        await self.db.close()

    async def info(self) -> StoreInfo:
        return StoreInfo(self.backend, self.db.location, self.schema_version)

    # --- writes ------------------------------------------------------------------------------
    def submit(self, batch: Sequence[Write], at: float | None = None) -> asyncio.Future:
        """Queue ``batch`` now (so batches commit in the order they were submitted); the
        future is done when it is committed. ``at``: when it was written (default now;
        rows keep it as ``updated_at``)."""
        if self._closed:
            raise StoreError("the store is closed")
        batch = list(batch)
        fut = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(statements(batch, self.db.dialect,
                                          time.time() if at is None else at),
                               fut, batch=batch))
        self._wake.set()
        return fut

    async def apply(self, batch: Sequence[Write], at: float | None = None) -> None:
        """Record ``batch``; returns once it is durable (committed)."""
        await self.submit(batch, at)

    async def _job(self, stmts: list[Stmt], finish=None, after=None) -> list[int]:
        if self._closed:
            raise StoreError("the store is closed")
        fut = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(stmts, fut, finish=finish, after=after))
        self._wake.set()
        return await fut

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._jobs:
                job = self._jobs.popleft()
                if job.batch is None:
                    await self._run_one(job)
                    continue
                group, n = [job], len(job.batch)
                while (self._jobs and self._jobs[0].batch is not None
                       and n + len(self._jobs[0].batch or ()) <= MAX_GROUP_WRITES):
                    nxt = self._jobs.popleft()
                    group.append(nxt)
                    n += len(nxt.batch or ())
                await self._run_group(group)
            if self._closed:
                return

    async def _run_one(self, job: _Job) -> None:
        try:
            counts = await self.db.transact(job.stmts, job.finish)
            if job.after is not None:
                await job.after()
        except Exception as e:
            if not job.future.done():
                job.future.set_exception(e)
        else:
            if not job.future.done():
                job.future.set_result(counts)

    async def _run_group(self, group: list[_Job]) -> None:
        try:
            await self.db.transact(_coalesce([s for j in group for s in j.stmts]))
        except Exception:
            if len(group) == 1:
                log.exception("store: a write batch failed")
                if not group[0].future.done():
                    group[0].future.set_exception(StoreError("write batch failed"))
                return
            for j in group:  # find the bad batch; the others commit
                await self._run_group([j])
            return
        self.commits += 1
        self.batches += len(group)
        for j in group:
            if not j.future.done():
                j.future.set_result(None)

    # --- reads -------------------------------------------------------------------------------
    async def search(self, q: SearchQuery, only_agent: str | None = None) -> list[SearchHit]:
        """Conversations matching ``q``, newest first (by opening time; with text, by the
        newest matching message). ``only_agent``: only conversations that agent handled."""
        pairs: list[tuple[str, str]] = []
        if q.order:  # the order's viewer and room first: a plain filter the indexes serve
            pairs = [(r[0], r[1]) for r in await self.db.fetch(
                "SELECT viewer, room FROM orders WHERE order_id = ?", [q.order])]
            if not pairs:
                return []
        where, args = self._filters(q, only_agent, pairs)
        parts = q.parts
        if not parts:
            # the last message is looked up for the page only, not for every match
            sql = (f"SELECT p.id, p.viewer, p.room, p.state, p.opened_at, p.resolved_at, "
                   f"p.agent, (SELECT m.text FROM messages m WHERE m.conversation = p.id "
                   f"ORDER BY m.n DESC LIMIT 1) FROM (SELECT c.id, c.viewer, c.room, c.state, "
                   f"c.opened_at, c.resolved_at, c.agent FROM conversations c WHERE 1 = 1 "
                   f"{where} ORDER BY c.opened_at DESC LIMIT ?) p ORDER BY p.opened_at DESC")
            rows = await self.db.fetch(sql, [*args, q.limit])
            return [SearchHit(r[0], r[1], r[2], r[3], r[4], r[5],
                              T.snippet(r[7] or "", [], SNIPPET_CHARS), r[6]) for r in rows]
        match = self.db.dialect.match_param(parts, q.room)
        pre, pre_args = self.db.dialect.prefilter(parts)
        sql = self.db.dialect.text_candidates().format(where=pre + where)
        args = [*pre_args, *args]
        found: dict[str, str] = {}
        # newest first, in windows of message ids that grow ×4: each query's cost is bounded
        # by its window whatever plan the database picks (a common word on PostgreSQL was
        # a bitmap over every match, sorted, for each page: 600 ms at 1.45 million messages)
        top = (await self.db.fetch("SELECT MAX(id) FROM messages"))[0][0] or 0
        hi, span, scanned, page = top + 1, FIRST_WINDOW, 0, max(4 * q.limit, 200)
        while len(found) < q.limit and scanned < MAX_SCAN and hi > 0:
            lo = max(0, hi - span)
            rows = await self.db.fetch(sql, [match, hi, lo, *args, page])
            for mid, cid, text in rows:
                hi = mid
                scanned += 1
                if cid not in found and T.contains_all(text, parts):
                    found[cid] = T.snippet(text, parts, SNIPPET_CHARS)
                    if len(found) >= q.limit:
                        break
            if len(rows) < page:  # this window is done: the next one, larger
                hi, span = lo, span * 4
            page = min(page * 2, 2000)
        if not found:
            return []
        marks = ", ".join("?" * len(found))
        rows = await self.db.fetch(
            f"SELECT c.id, c.viewer, c.room, c.state, c.opened_at, c.resolved_at, c.agent "
            f"FROM conversations c WHERE c.id IN ({marks})", list(found))
        by_id = {r[0]: r for r in rows}
        return [SearchHit(cid, r[1], r[2], r[3], r[4], r[5], found[cid], r[6])
                for cid in found if (r := by_id.get(cid)) is not None]

    @staticmethod
    def _filters(q: SearchQuery, only_agent: str | None,
                 order_pairs: list[tuple[str, str]]) -> tuple[str, list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if q.user:
            where.append("c.viewer = ?")
            args.append(q.user)
        if q.room:
            where.append("c.room = ?")
            args.append(q.room)
        for agent in (q.agent, only_agent):
            if agent:
                where.append("c.id IN (SELECT h.conversation FROM handled h WHERE h.agent = ?)")
                args.append(agent)
        if order_pairs:
            where.append("(" + " OR ".join("(c.viewer = ? AND c.room = ?)"
                                            for _ in order_pairs) + ")")
            args.extend(x for pair in order_pairs for x in pair)
        if q.since is not None:
            where.append("c.opened_at >= ?")
            args.append(q.since)
        if q.until is not None:
            where.append("c.opened_at <= ?")
            args.append(q.until)
        return "".join(f" AND {w}" for w in where), args

    async def conversation(self, cid: str) -> ConversationRow | None:
        rows = await self.db.fetch(f"SELECT {_CONV_COLS} FROM conversations c WHERE c.id = ?",
                                   [cid])
        return _conv(rows[0]) if rows else None

    async def messages(self, cid: str) -> list[MessageRow]:
        rows = await self.db.fetch(f"SELECT {_MSG_COLS} FROM messages WHERE conversation = ? "
                                   f"ORDER BY n", [cid])
        return [_msg(r) for r in rows]

    async def transcript(self, cid: str) -> Transcript | None:
        conv = await self.conversation(cid)
        if conv is None:
            return None
        msgs = await self.messages(cid)
        agents = [r[0] for r in await self.db.fetch(
            "SELECT agent FROM handled WHERE conversation = ? ORDER BY at", [cid])]
        records = [RecordRow(r[0], r[1], json.loads(r[2]), r[3]) for r in await self.db.fetch(
            "SELECT namespace, key, value, updated_at FROM records WHERE conversation = ? "
            "ORDER BY updated_at, namespace, key", [cid])]
        orders = [_order(r) for r in await self.db.fetch(
            "SELECT room, order_id, viewer, sku, qty, body, at FROM orders "
            "WHERE viewer = ? AND room = ? ORDER BY at", [conv.viewer, conv.room])]
        return Transcript(conv, msgs, agents, records, orders)

    async def load_live_state(self, orders_since: float = 0.0) -> LiveState:
        """Everything a single node carries on with after a restart: open conversations with
        their messages, the queue (head first), assignments, agents' settings, room
        counters, order ids placed since ``orders_since`` and live workspace records."""
        convs = [_conv(r) for r in await self.db.fetch(
            f"SELECT {_CONV_COLS} FROM conversations c WHERE c.state <> 'resolved' "
            f"ORDER BY c.opened_at")]
        msgs: dict[str, list[MessageRow]] = {c.conversation: [] for c in convs}
        for r in await self.db.fetch(
                f"SELECT {_MSG_COLS} FROM messages WHERE conversation IN (SELECT id FROM "
                f"conversations WHERE state <> 'resolved') ORDER BY conversation, n"):
            if r[0] in msgs:
                msgs[r[0]].append(_msg(r))
        queue = [QueueEntry(r[0], r[1]) for r in await self.db.fetch(
            "SELECT conversation, since FROM queue ORDER BY pos")]
        assignments = {r[0]: r[1] for r in await self.db.fetch(
            "SELECT conversation, agent FROM assignments")}
        agents = [AgentStatus(user=r[0], name=r[1], status=r[2], capacity=int(r[3]),
                              paused=bool(r[4]), since=r[5], last_assigned=r[6])
                  for r in await self.db.fetch(
                      'SELECT "user", name, status, capacity, paused, since, last_assigned '
                      'FROM agents ORDER BY "user"')]
        stock: dict[str, dict[str, int]] = {}
        for room, sku, n in await self.db.fetch("SELECT room, sku, stock FROM room_stock"):
            stock.setdefault(room, {})[sku] = int(n)
        gifts: dict[str, dict[str, int]] = {}
        quotas: dict[str, dict[str, tuple[int, bool]]] = {}
        for room, p, n, quota, active in await self.db.fetch(
                "SELECT room, promotion, claimed, quota, active FROM room_gifts"):
            gifts.setdefault(room, {})[p] = int(n)
            if quota is not None:  # a host set it (schema v7)
                quotas.setdefault(room, {})[p] = (int(quota), bool(active))
        orders = [_order(r) for r in await self.db.fetch(
            "SELECT room, order_id, viewer, sku, qty, body, at FROM orders WHERE at >= ? "
            "ORDER BY at", [orders_since])]
        # live, and not past its TTL (a record that expired while no gateway ran)
        records = [RecordRow(r[0], r[1], json.loads(r[2]), r[3], r[4])
                   for r in await self.db.fetch(
                       "SELECT namespace, key, value, updated_at, expires_at FROM records "
                       "WHERE live = 1 AND (expires_at IS NULL OR expires_at > ?) "
                       "ORDER BY updated_at", [time.time()])]
        return LiveState([(c, msgs[c.conversation]) for c in convs], queue, assignments,
                         agents, stock, gifts, orders, records, quotas)

    # --- erasure and retention ---------------------------------------------------------------
    async def erase_viewer(self, viewer: str, by_role: str,
                           conversations: Sequence[str] = (),
                           tell_live: bool = False, tombstone: bool = True) -> EraseReport:
        """Delete everything of ``viewer`` (conversations, their messages and records, the
        viewer's orders and records about them) in one transaction, and keep a tombstone
        that says what was erased when, without the viewer's id or anything else personal.

        ``conversations``: ids of the viewer's conversations the caller knows of (a gateway's
        live state), erased too even where their row is gone already (a message written
        after an earlier erasure). ``tell_live`` (``livedesk erase``): also leave an
        ``erase_requests`` row, which the gateway running on this store picks up to erase
        the viewer from its live state, and then deletes. ``tombstone`` False: a follow-up
        of an erasure that has its tombstone already (the gateway's, after a request)."""
        own = "SELECT id FROM conversations WHERE viewer = ?"
        ids = list(dict.fromkeys(conversations))
        known = f" OR conversation IN ({', '.join('?' * len(ids))})" if ids else ""
        stmts = [
            Stmt(f"DELETE FROM messages WHERE conversation IN ({own}){known}", (viewer, *ids)),
            Stmt(f"DELETE FROM records WHERE viewer = ? OR conversation IN ({own}){known}",
                 (viewer, viewer, *ids)),
            Stmt("DELETE FROM orders WHERE viewer = ?", (viewer,)),
            Stmt(f"DELETE FROM queue WHERE conversation IN ({own}){known}", (viewer, *ids)),
            Stmt(f"DELETE FROM assignments WHERE conversation IN ({own}){known}",
                 (viewer, *ids)),
            Stmt(f"DELETE FROM handled WHERE conversation IN ({own}){known}", (viewer, *ids)),
            Stmt("DELETE FROM conversations WHERE viewer = ?", (viewer,)),
            # photos, stills, recordings (kept here with attachment_storage=database; the
            # local files go in the attachments sweep, their conversation being gone)
            Stmt(f"DELETE FROM attachments WHERE viewer = ?{known}", (viewer, *ids)),
        ]
        if tell_live:
            stmts.append(Stmt("INSERT INTO erase_requests (viewer, at) VALUES (?, ?) "
                              "ON CONFLICT (viewer) DO UPDATE SET at = excluded.at",
                              (viewer, time.time())))
        tomb = "tb_" + secrets.token_hex(8)
        at = time.time()
        names = ("messages", "records", "orders", "conversations")

        def stone(counts: list[int]) -> list[Stmt]:
            if not tombstone:
                return []
            c = dict(zip(names, (counts[0], counts[1], counts[2], counts[6]), strict=True))
            return [Stmt("INSERT INTO tombstones (id, kind, at, by_role, counts) "
                         "VALUES (?, 'viewer_erased', ?, ?, ?)", (tomb, at, by_role, dumps(c)))]

        deleted: list[int] = []

        def tombstone_and_note(counts: list[int]) -> list[Stmt]:
            deleted.append(counts[0])
            return stone(counts)

        async def scrub() -> None:  # only when messages went: it rewrites the text index
            if deleted and deleted[0] > 0:
                await self.db.after_erase()

        counts = await self._job(stmts, finish=tombstone_and_note, after=scrub)
        return EraseReport(tomb if tombstone else "", conversations=counts[6], messages=counts[0],
                           records=counts[1], orders=counts[2])

    async def erase_requests(self) -> list[str]:
        """Viewers ``livedesk erase`` erased that a running gateway has still to remove from
        its live state (oldest first)."""
        return [r[0] for r in await self.db.fetch(
            "SELECT viewer FROM erase_requests ORDER BY at")]

    async def erase_request_done(self, viewer: str) -> None:
        await self._job([Stmt("DELETE FROM erase_requests WHERE viewer = ?", (viewer,))])

    async def tombstones(self) -> list[dict[str, Any]]:
        return [{"id": r[0], "kind": r[1], "at": r[2], "by_role": r[3],
                 "counts": json.loads(r[4])} for r in await self.db.fetch(
                     "SELECT id, kind, at, by_role, counts FROM tombstones ORDER BY at")]

    async def sweep(self, now: float | None = None) -> SweepReport:
        """Delete what is past its retention (:class:`~gateway.store.records.Retention`):
        resolved conversations with their messages and non-audit records; workspace records
        and orders; the audit trail and tombstones. Open conversations are never swept."""
        now = time.time() if now is None else now
        r = self.retention
        stmts: list[Stmt] = []
        slots: dict[str, list[int]] = {"conversations": [], "messages": [], "records": [],
                                       "audit": []}

        def add(kind: str, s: Stmt) -> None:
            slots[kind].append(len(stmts))
            stmts.append(s)

        if r.messages > 0:
            old = "SELECT id FROM conversations WHERE state = 'resolved' AND resolved_at < ?"
            cut = now - r.messages
            add("messages", Stmt(f"DELETE FROM messages WHERE conversation IN ({old})", (cut,)))
            add("records", Stmt(f"DELETE FROM records WHERE audit = 0 AND conversation IN "
                                f"({old})", (cut,)))
            stmts.append(Stmt(f"DELETE FROM handled WHERE conversation IN ({old})", (cut,)))
            stmts.append(Stmt(f"DELETE FROM assignments WHERE conversation IN ({old})", (cut,)))
            stmts.append(Stmt(f"DELETE FROM attachments WHERE conversation IN ({old})",
                              (cut,)))
            add("conversations", Stmt("DELETE FROM conversations WHERE state = 'resolved' "
                                      "AND resolved_at < ?", (cut,)))
        if r.records > 0:
            cut = now - r.records
            add("records", Stmt("DELETE FROM records WHERE audit = 0 AND updated_at < ?",
                                (cut,)))
            stmts.append(Stmt("DELETE FROM orders WHERE at < ?", (cut,)))
        if r.audit > 0:
            cut = now - r.audit
            add("audit", Stmt("DELETE FROM records WHERE audit = 1 AND updated_at < ?", (cut,)))
            add("audit", Stmt("DELETE FROM tombstones WHERE at < ?", (cut,)))
        # an erase request no gateway picked up in a day: no gateway was running on the
        # store (its live state is gone with it); the row holds a viewer id, so it goes
        stmts.append(Stmt("DELETE FROM erase_requests WHERE at < ?", (now - 86400.0,)))
        if not stmts:
            return SweepReport()
        counts = await self._job(stmts)
        return SweepReport(**{k: sum(counts[i] for i in idx) for k, idx in slots.items()})

    async def backup(self, dest: Path) -> None:
        """A consistent copy of the store at ``dest`` while it is in use (SQLite)."""
        await self.db.backup(Path(dest))


def _coalesce(stmts: list[Stmt]) -> list[Stmt]:
    """Adjacent ``executemany`` statements of the same SQL as one (a group of single-message
    batches becomes one round trip to PostgreSQL instead of one per message)."""
    out: list[Stmt] = []
    for s in stmts:
        if out and s.many and out[-1].many and out[-1].sql == s.sql:
            out[-1] = Stmt(s.sql, [*out[-1].args, *s.args], many=True)
        else:
            out.append(s)
    return out


def _conv(r: tuple) -> ConversationRow:
    return ConversationRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                           r[11], r[12], r[13], r[14], r[15], json.loads(r[16] or "{}"))


def _msg(r: tuple) -> MessageRow:
    return MessageRow(r[0], int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7],
                      json.loads(r[8] or "{}"), r[9])


def _order(r: tuple) -> OrderRow:
    return OrderRow(r[0], r[1], r[2], r[3], int(r[4]), json.loads(r[5]), r[6])
