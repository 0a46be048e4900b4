"""Wires the durable store into one node: which database the configuration names, the feed
from the replica's applied changes and the rooms' orders, and the retention sweep.

Kept out of :mod:`gateway.wiring` so the composition root only says "this node has a store"
(``attach_store``) and lists it first among the resources (started first, closed last).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from signaling.events import Events

from .config import Config
from .store import Retention, Store, database_for
from .store.ingest import StoreFeed
from .support.events import ChangesApplied, OrderPlaced

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 3600.0
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


def attach_store(config: Config, events: Events, feed: bool = True) -> Durable | None:
    """The configured store, fed from the node's events: every change list a replica applies
    (``ChangesApplied``) and every accepted order (``OrderPlaced``); None when the
    configuration names no store. ``feed=False``: the node does not write what it applies
    (with Redis, the one archiver copies the shared change log: ``gateway/archiver.py``)."""
    store = store_for(config)
    if store is None:
        return None
    store_feed = StoreFeed(store)
    if feed:
        events.subscribe(ChangesApplied, lambda e: store_feed.on_changes(list(e.changes)))
        events.subscribe(OrderPlaced,
                         lambda e: store_feed.on_order(e.room, e.order, e.outcome))
    return Durable(store, store_feed)
