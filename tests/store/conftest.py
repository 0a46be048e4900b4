"""One ``store`` fixture over both backends: SQLite in a temporary directory, and the
machine's real PostgreSQL (``LIVEDESK_TEST_PG``, default ``postgresql://postgres@127.0.0.1:5432``)
in a database made for this test run and dropped after it. PostgreSQL unreachable is a
failure, never a skip."""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from gateway.store import Store
from gateway.store.database import PostgresDatabase, SQLiteDatabase
from gateway.store.records import Retention

PG_SERVER = os.environ.get("LIVEDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


async def _admin(sql: str) -> None:
    import asyncpg

    try:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=10)
    except (OSError, asyncpg.PostgresError) as e:
        pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER} ({e}); the store tests need "
                    f"it (set LIVEDESK_TEST_PG to another server)", pytrace=False)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _in_thread(coro_fn, *args) -> None:
    """Run ``coro_fn(*args)`` to completion on a loop of its own (fixtures that set up the
    session run while a test's loop is running)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(coro_fn(*args))).result()


@pytest.fixture(scope="session")
def pg_database():
    """A database for this test run: ``livedesk_test_<random>``, dropped at the end."""
    name = f"livedesk_test_{secrets.token_hex(6)}"
    _in_thread(_admin, f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        _in_thread(_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Backends:
    """Makes fresh stores of one backend: each SQLite store in its own file, each
    PostgreSQL store in its own schema of the run's database (dropped by the run)."""

    def __init__(self, kind: str, tmp_path, pg_database: str | None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.pg_database = pg_database
        self.opened: list[Store] = []
        self.n = 0
        self.token = secrets.token_hex(4)

    async def database(self, name: str | None = None) -> SQLiteDatabase | PostgresDatabase:
        """A database not opened yet: the same ``name`` twice is the same database."""
        self.n += 1
        name = name or f"s{self.n}"
        if self.kind == "sqlite":
            return SQLiteDatabase(self.tmp_path / name / "livedesk.db")
        return PostgresDatabase(await self.url(name), max_size=4)

    async def url(self, name: str) -> str:
        """A URL whose connections use schema ``name`` of the run's database."""
        schema = f"{name}_{self.token}"
        await _admin_in(self.pg_database, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        return f"{PG_SERVER}/{self.pg_database}?options=-csearch_path%3D{schema}"

    async def open(self, name: str | None = None, retention: Retention | None = None,
                   target: int | None = None) -> Store:
        store = await Store(await self.database(name), retention).start(target)
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for s in self.opened:
            await s.close()


async def _admin_in(database: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/{database}", timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def backends(request, tmp_path):
    pg = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    b = Backends(request.param, tmp_path, pg)
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
async def store(backends) -> Store:
    return await backends.open()
