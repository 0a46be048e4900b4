"""The two ways to reach a database, behind one small interface the store uses.

:class:`Database` runs a *transaction* (a list of statements, all or nothing; returns the
row count of each) and *reads* (one query, all rows). SQL is shared, written with ``?``;
each database asks its :class:`~gateway.store.dialect.Dialect` for its placeholders.
Neither blocks the event loop: SQLite runs in its own threads (one writer, a few readers,
each with its own connection; WAL lets readers go on while the writer commits), PostgreSQL
through an asyncpg pool.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import migrations as M
from . import terms as T
from .dialect import Dialect, PostgresDialect, SQLiteDialect


class StoreError(RuntimeError):
    """The store cannot do what was asked (unreachable, misconfigured, schema too new)."""


@dataclass(frozen=True)
class Stmt:
    sql: str
    args: Sequence[Any] = ()
    many: bool = False  # args is a list of argument rows (executemany)


class Database(ABC):
    dialect: Dialect

    @abstractmethod
    async def open(self, target: int = M.LATEST) -> int:
        """Connect and migrate up to ``target``; returns the schema version."""

    @abstractmethod
    async def transact(self, stmts: Sequence[Stmt],
                       finish: Callable[[list[int]], Sequence[Stmt]] | None = None) -> list[int]:
        """Run ``stmts`` in one transaction; ``finish(row counts)`` gives statements to run
        last in the same transaction (a tombstone that counts what was deleted)."""

    @abstractmethod
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def after_erase(self) -> None:
        """Make what an erasure deleted unreadable in the files too, where the database
        allows it cheaply (SQLite: merge the text index, checkpoint the WAL)."""
        return None

    async def backup(self, dest: Path) -> None:
        raise StoreError(f"online backup from the store is for SQLite; for {self.dialect.name} "
                         f"use its own tools (docs/operations.md)")

    @property
    @abstractmethod
    def location(self) -> str: ...


# --- SQLite ----------------------------------------------------------------------------------

SQLITE_FILE = "livedesk.db"
READERS = 2


class SQLiteDatabase(Database):
    """A file in WAL mode. ``synchronous=FULL``: a commit is on disk when it returns (a
    power cut keeps it, not only a crash of this process); group commit pays the fsync once
    per batch. ``secure_delete``: erased rows are overwritten in the file, not just freed."""

    dialect = SQLiteDialect()

    def __init__(self, path: Path, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-sqlite-w")
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="store-sqlite-r")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return str(self.path)

    def _conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000,
                                isolation_level=None, check_same_thread=False)
            c.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            c.execute("PRAGMA journal_mode = WAL")
            c.execute("PRAGMA synchronous = FULL")
            c.execute("PRAGMA secure_delete = ON")
            self._local.conn = c
            with self._lock:
                self._conns.append(c)
        return c

    async def _run(self, pool: ThreadPoolExecutor, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def open(self, target: int = M.LATEST) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return await self._run(self._writer, self._migrate, target)
        except BaseException as e:
            await self.close()
            if isinstance(e, sqlite3.Error | OSError):
                raise StoreError(f"cannot open SQLite store {self.path}: {e}") from e
            raise

    def _migrate(self, target: int) -> int:
        c = self._conn()
        c.execute(M.VERSION_TABLE)
        c.execute("BEGIN IMMEDIATE")  # one migrator at a time (another process waits)
        try:
            have = c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            for m in M.to_apply(have, target):
                before, after = M.statements(m, "sqlite", self.dialect.id_column)
                for s in before:
                    c.execute(s)
                if m.backfill_terms:
                    rows = c.execute("SELECT id, text FROM messages").fetchall()
                    room = self.dialect.room_term_sql("room")
                    c.executemany(
                        f"UPDATE messages SET terms = ?, scope = COALESCE((SELECT {room} FROM "
                        f"conversations WHERE conversations.id = messages.conversation), '') "
                        f"WHERE id = ?", [(T.terms_text(text), i) for i, text in rows])
                for s in after:
                    c.execute(s)
                c.execute("INSERT INTO schema_version (version, name, applied_at) "
                          "VALUES (?, ?, ?)", (m.version, m.name, time.time()))
                have = m.version
            c.execute("COMMIT")
            return have
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _transact(self, stmts: Sequence[Stmt], finish) -> list[int]:
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            counts = []
            for s in stmts:
                cur = c.executemany(s.sql, s.args) if s.many else c.execute(s.sql, s.args)
                counts.append(cur.rowcount)
            for s in (finish(counts) if finish is not None else ()):
                c.executemany(s.sql, s.args) if s.many else c.execute(s.sql, s.args)
            c.execute("COMMIT")
            return counts
        except BaseException:
            c.execute("ROLLBACK")
            raise

    async def transact(self, stmts, finish=None):
        return await self._run(self._writer, self._transact, stmts, finish)

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[tuple]:
        return self._conn().execute(sql, args).fetchall()

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return await self._run(self._readers, self._fetch, sql, args)

    def _after_erase(self) -> None:
        c = self._conn()
        # deleted index entries linger in FTS5 segments until merged: merge them all
        c.execute("INSERT INTO message_fts (message_fts) VALUES ('optimize')")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def after_erase(self) -> None:
        await self._run(self._writer, self._after_erase)

    def _backup(self, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        tmp.unlink(missing_ok=True)
        target = sqlite3.connect(tmp)
        try:
            # SQLite's online backup API in one step: it reads inside one read transaction,
            # so the copy is the database as of one commit, while the writer goes on (WAL);
            # copying in several steps would restart whenever another connection commits
            self._conn().backup(target, pages=-1)
        finally:
            target.close()
        tmp.replace(dest)

    async def backup(self, dest: Path) -> None:
        await self._run(self._readers, self._backup, Path(dest))

    async def close(self) -> None:
        def close_all():
            with self._lock:
                for c in self._conns:
                    try:
                        c.close()
                    except sqlite3.Error:
                        pass
                self._conns.clear()
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        close_all()


# --- PostgreSQL ------------------------------------------------------------------------------

ADVISORY_LOCK = 0x4C44_5354  # "LDST": one migrator at a time


class PostgresDatabase(Database):
    dialect = PostgresDialect()

    def __init__(self, url: str, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.pool: Any = None

    @property
    def location(self) -> str:
        from urllib.parse import urlsplit

        u = urlsplit(self.url)
        host = u.hostname or ""
        netloc = (f"{u.username}@" if u.username else "") + host + (f":{u.port}" if u.port else "")
        return f"{u.scheme}://{netloc}{u.path}"

    async def open(self, target: int = M.LATEST) -> int:
        import asyncpg

        try:
            # force_custom_plan: asyncpg prepares every statement, and after five runs
            # PostgreSQL may switch to a generic plan that cannot see the search terms; for
            # a rare term that plan walks the whole messages table newest-first (0.2 ms
            # became 700 ms, measured). Planning each search again costs ~1 ms.
            self.pool = await asyncpg.create_pool(
                self.url, min_size=self.min_size, max_size=self.max_size, command_timeout=60,
                server_settings={"plan_cache_mode": "force_custom_plan"})
        except (OSError, asyncpg.PostgresError) as e:
            raise StoreError(f"cannot reach PostgreSQL at {self.location}: {e}") from e
        try:
            return await self._migrate(target)
        except BaseException:
            await self.close()
            raise

    async def _migrate(self, target: int) -> int:
        async with self.pool.acquire() as c, c.transaction():
            await c.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK)
            await c.execute(M.VERSION_TABLE)
            have = await c.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            for m in M.to_apply(have, target):
                before, after = M.statements(m, "postgresql", self.dialect.id_column)
                for s in before:
                    await c.execute(s)
                if m.backfill_terms:
                    rows = await c.fetch("SELECT id, conversation, text FROM messages")
                    await c.executemany(
                        self.dialect.sql(f"UPDATE messages SET terms = "
                                         f"{self.dialect.terms_sql()} WHERE id = ?"),
                        [(self.dialect.terms_param(r["text"]), r["conversation"], r["id"])
                         for r in rows])
                for s in after:
                    await c.execute(s)
                await c.execute("INSERT INTO schema_version (version, name, applied_at) "
                                "VALUES ($1, $2, $3)", m.version, m.name, time.time())
                have = m.version
        return have

    async def transact(self, stmts, finish=None):
        counts: list[int] = []
        async with self.pool.acquire() as c, c.transaction():
            for s in stmts:
                counts.append(await self._exec(c, s))
            for s in (finish(counts) if finish is not None else ()):
                await self._exec(c, s)
        return counts

    async def _exec(self, c, s: Stmt) -> int:
        sql = self.dialect.sql(s.sql)
        if s.many:
            await c.executemany(sql, s.args)
            return len(s.args)
        status = await c.execute(sql, *s.args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        async with self.pool.acquire() as c:
            return [tuple(r) for r in await c.fetch(self.dialect.sql(sql), *args)]

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
