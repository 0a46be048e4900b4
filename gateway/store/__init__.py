"""The durable store (SQLite by default, PostgreSQL by URL): history, search, export,
erasure, retention, backups, and the live state a node restarts from. docs/storage.md.

This package knows nothing of conversations' rules, HTTP or media: it records the support
plane's typed change records (``gateway/support/changes.py``, the one thing of that plane it
imports) as they are, plus an accepted order's rows (:mod:`gateway.store.records`);
:mod:`gateway.store.ingest` feeds them in, in order.
"""

from __future__ import annotations

from pathlib import Path

from .database import SQLITE_FILE, PostgresDatabase, SQLiteDatabase, StoreError
from .query import QueryError, SearchQuery
from .records import Retention
from .store import Store

__all__ = ["Store", "StoreError", "SearchQuery", "QueryError", "Retention", "open_store",
           "database_for", "SQLITE_FILE"]


def database_for(*, data_dir: Path | str | None = None,
                 database_url: str | None = None) -> PostgresDatabase | SQLiteDatabase:
    """PostgreSQL when ``database_url`` is given, else SQLite in ``data_dir`` (not opened)."""
    if database_url:
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise StoreError("LIVEDESK_DATABASE_URL must be a postgresql:// URL")
        return PostgresDatabase(database_url)
    if data_dir is not None:
        return SQLiteDatabase(Path(data_dir) / SQLITE_FILE)
    raise StoreError("no store: give a data directory or a database URL")


async def open_store(*, data_dir: Path | str | None = None, database_url: str | None = None,
                     retention: Retention | None = None) -> Store:
    """Open (and migrate) the store. Raises :class:`StoreError` when it cannot."""
    return await Store(database_for(data_dir=data_dir, database_url=database_url),
                       retention).start()
