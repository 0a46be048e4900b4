"""Wires the durable store into one node: which database the configuration names, the feed
from the replica's applied changes and the rooms' orders, and the retention sweep.

Kept out of :mod:`gateway.wiring` so the composition root only says "this node has a store"
(``attach_store``) and lists it first among the resources (started first, closed last).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from signaling import Hub
from signaling.events import Events

from .config import Config
from .store import Retention, Store, database_for
from .store.ingest import StoreFeed
from .store.records import EraseReport
from .support.backend import SupportBackend
from .support.events import ChangesApplied, OrderPlaced

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 3600.0
ERASED_CLOSE_CODE = 4410  # docs/protocol.md: the viewer was erased
FIRST_SWEEP_S = 60.0


def retention_of(config: Config) -> Retention:
    return Retention(messages=config.store_retention_messages_s,
                     records=config.store_retention_records_s,
                     audit=config.store_retention_audit_s)


def store_for(config: Config) -> Store | None:
    """The store the configuration names (not opened yet), or None without one."""
    if not (config.database_url or config.data_dir):
        return None
    return Store(database_for(data_dir=config.data_dir, database_url=config.database_url),
                 retention_of(config))


@dataclass
class Durable:
    """A node's store with its feed and sweep."""

    store: Store
    feed: StoreFeed
    _sweeper: asyncio.Task | None = field(default=None, repr=False)

    async def start(self) -> None:
        await self.store.start()
        info = await self.store.info()
        log.info("store: %s at %s (schema v%d)", info.backend, info.location,
                 info.schema_version)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop(),
                                                               name="store-retention")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.feed.drain()
        await self.feed.close()
        await self.store.close()

    async def _sweep_loop(self) -> None:
        await asyncio.sleep(FIRST_SWEEP_S)
        while True:
            try:
                r = await self.store.sweep()
                if any((r.conversations, r.messages, r.records, r.audit)):
                    log.info("store retention: %s", r)
            except Exception:
                log.exception("store retention sweep failed")
            await asyncio.sleep(SWEEP_EVERY_S)


class ViewerEraser:
    """Erases a viewer everywhere this node reaches: its live state (a ``ViewerErased``
    change through the support backend, so every replica drops the viewer), the viewer's
    sockets (their sessions end: a page cannot resume one), and the store (one transaction
    with its tombstone, also deleting rows of the conversations the live state had).

    It also serves ``livedesk erase`` run against the same store while this node runs: the
    CLI erases the store and leaves an ``erase_requests`` row; this polls the table every
    ``poll_s`` seconds, erases the viewer from the live state, deletes what the live state
    wrote for the viewer since (no second tombstone) and then the row."""

    def __init__(self, store: Store, backend: SupportBackend, hub: Hub, metrics: Any = None,
                 poll_s: float = 1.0,
                 forget_orders: Callable[[str], Awaitable[int]] | None = None) -> None:
        self.store = store
        # with Redis: the rooms' order ids of the viewer (``RedisRoomStore.erase_viewer``)
        self.forget_orders = forget_orders
        self.backend = backend
        self.hub = hub
        self.metrics = metrics
        self.poll_s = poll_s
        self._task: asyncio.Task | None = None

    async def erase(self, viewer: str, by_role: str) -> EraseReport:
        ids = await self._erase_live(viewer)
        return await self.store.erase_viewer(viewer, by_role, conversations=ids)

    async def _erase_live(self, viewer: str) -> list[str]:
        try:
            ids = await self.backend.erase_viewer(viewer)
        except NotImplementedError:
            log.warning("erase: this backend cannot erase a viewer from the live state yet; "
                        "the store is erased (docs/storage.md#erasure)")
            ids = []
        if self.forget_orders is not None:
            await self.forget_orders(viewer)
        for s in list(self.hub.user_sessions(viewer)):
            if s.role == "viewer":  # closed 4410 and forgotten: nothing to resume
                s.detach(close_code=ERASED_CLOSE_CODE, reason="viewer erased")
                self.hub.end_session(s)
        if self.metrics is not None:
            self.metrics.erased_viewers.inc()
        return ids

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll(),
                                                            name="erase-requests")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while True:
            try:
                for viewer in await self.store.erase_requests():
                    ids = await self._erase_live(viewer)
                    await self.store.erase_viewer(viewer, "cli", conversations=ids,
                                                  tombstone=False)
                    await self.store.erase_request_done(viewer)
                    log.info("erase: a viewer erased by `livedesk erase` left the live state "
                             "(%d conversations)", len(ids))
            except Exception:
                log.exception("erase requests: could not serve them (retrying)")
            await asyncio.sleep(self.poll_s)


def attach_store(config: Config, events: Events, metrics: Any = None,
                 follow_events: bool = True) -> Durable | None:
    """The configured store (None when the configuration names none) with its feed.

    ``follow_events`` (several nodes on Redis without a shared database, so each keeps its
    own): the feed records every change list a replica applies (``ChangesApplied``) and
    every accepted order (``OrderPlaced``) as they happen; nothing waits for it. With Redis
    and PostgreSQL the one archiver writes the shared change log instead
    (``gateway/archiver.py``) and no node's feed follows events. Otherwise (one node, memory) the composition root passes
    ``durable.feed`` to the memory backend and order ledger as their durability port: each
    step and order is answered only once committed (docs/storage.md#durable-before-
    acknowledged)."""
    store = store_for(config)
    if store is None:
        return None
    feed = StoreFeed(store, metrics=metrics)
    if follow_events:
        events.subscribe(ChangesApplied, lambda e: feed.on_changes(list(e.changes)))
        events.subscribe(OrderPlaced, lambda e: feed.on_order(e.room, e.order, e.outcome))
    return Durable(store, feed)
