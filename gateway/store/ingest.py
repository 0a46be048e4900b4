"""The one place that turns what the support plane decided into store writes.

The replicas apply typed change records (``gateway/support/changes.py``), published after
each step as ``ChangesApplied``; rooms report accepted orders as ``OrderPlaced``
(``gateway/durable.py`` subscribes this feed to both). The store records the change records
themselves (``gateway/store/writes.py`` dispatches on their class, as ``Replica.apply``
does), so no record class and no rule is written a second time; an accepted order becomes
the two store-only rows :class:`~.records.OrderRecorded` and :class:`~.records.RoomCounters`.

:class:`StoreFeed` sends each applied change list to the store in order (group commit). For
now a step does not wait for it (making a step durable before it is acknowledged is the next
step; ``Store.apply`` already returns only once a batch is committed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from ..support.changes import SupportChange
from .records import (
    OrderRecorded,
    RoomCounters,
    Write,
)
from .store import Store

log = logging.getLogger(__name__)


def writes_from_changes(changes: Sequence[SupportChange]) -> list[Write]:
    """The store writes for one applied change list: the records themselves."""
    return list(changes)


def writes_from_order(room: Any, order: Any, outcome: Any,
                      now: float | None = None) -> list[Write]:
    """An accepted order (``RoomService.order_listeners``): its id (the replay check) and the
    room's counters after it."""
    now = time.time() if now is None else now
    if getattr(outcome, "status", 0) != 200 or getattr(outcome, "repeated", False):
        return []
    counters = room.counters()
    return [OrderRecorded(room.id, order.order_id, order.user, order.sku, int(order.qty),
                          dict(outcome.body), now),
            RoomCounters(room.id, tuple((k, int(v)) for k, v in counters["stock"].items()),
                         tuple((k, int(g.get("claimed") or 0))
                               for k, g in counters["gifts"].items()), now)]


class StoreFeed:
    """Feeds the store from the replica's applied changes and the rooms' orders, in order.

    A failed write is logged and counted (``failures``); the gateway goes on serving from
    memory, as it did before there was a store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.failures = 0
        self.pending: set[asyncio.Future] = set()

    def on_changes(self, changes: Sequence[SupportChange]) -> None:
        self._submit(writes_from_changes(changes))

    def on_order(self, room: Any, order: Any, outcome: Any) -> None:
        self._submit(writes_from_order(room, order, outcome))

    def _submit(self, batch: list[Write]) -> None:
        if not batch:
            return
        try:
            fut = self.store.submit(batch)
        except Exception:
            self.failures += 1
            log.exception("store feed: could not submit")
            return
        self.pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future) -> None:
        self.pending.discard(fut)
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self.failures += 1
            log.error("store feed: a batch was not recorded: %s", fut.exception())

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (tests, shutdown)."""
        if self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)
