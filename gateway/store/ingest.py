"""The one place that turns what the support plane decided into store writes.

The replicas apply typed change records (``gateway/support/changes.py``), published after
each step as ``ChangesApplied``; rooms report accepted orders as ``OrderPlaced``
(``gateway/durable.py`` subscribes this feed to both). The store records the change records
themselves (``gateway/store/writes.py`` dispatches on their class, as ``Replica.apply``
does), so no record class and no rule is written a second time; an accepted order becomes
the two store-only rows :class:`~.records.OrderRecorded` and :class:`~.records.RoomCounters`.

:class:`StoreFeed` sends each change list to the store in order (group commit); on a single
node every step waits for its commit (the durability port the composition root passes to
the memory backend and order ledger).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
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


def writes_from_room_edit(room: Any, now: float | None = None) -> list[Write]:
    """A host's edit of a room (stock, a promotion): the room's counters after it, with each
    first-N gift's quota (limit, active)."""
    now = time.time() if now is None else now
    counters = room.counters()
    gifts = counters["gifts"]
    return [RoomCounters(room.id, tuple((k, int(v)) for k, v in counters["stock"].items()),
                         tuple((k, int(g.get("claimed") or 0)) for k, g in gifts.items()),
                         now, tuple((k, int(g.get("limit") or 0), bool(g.get("active")))
                                    for k, g in gifts.items()))]


class StoreFeed:
    """Feeds the store, in order, from the support plane's changes and the rooms' orders.

    Two ways in: the durability port a single node's memory backend and order ledger await
    (:meth:`commit`, :meth:`order_placed`: return once committed, raise when not), and the
    node's events (:meth:`on_changes`, :meth:`on_order`: with Redis, where each node
    records what it applies and nothing waits).

    A batch the store fails to commit is logged, counted (``failures``, the
    ``livedesk_store_write_failures_total`` metric) and **held**: it is written again every
    ``retry_s`` seconds, oldest first, and while any is held :meth:`refusing` says why, so
    the backend refuses every new step before it changes anything. The node therefore never
    acknowledges a step the store has not got, and never drifts further from the store than
    the failed batches themselves, which it keeps until they are written."""

    def __init__(self, store: Store, retry_s: float = 1.0, metrics: Any = None) -> None:
        self.store = store
        self.retry_s = retry_s
        self.metrics = metrics
        self.failures = 0
        self.pending: set[asyncio.Future] = set()
        self.held: deque[tuple[list[Write], float]] = deque()  # failed, oldest first
        self._retry: asyncio.Task | None = None

    # --- the durability port (single node: a step returns once committed) -----------------
    def refusing(self) -> str | None:
        if self.held:
            return f"the store has not committed {len(self.held)} earlier write(s) yet"
        return None

    async def commit(self, changes: Sequence[SupportChange]) -> None:
        fut = self._submit(writes_from_changes(changes))
        if fut is not None:
            await fut

    async def order_placed(self, room: Any, order: Any, outcome: Any) -> None:
        fut = self._submit(writes_from_order(room, order, outcome))
        if fut is not None:
            await fut

    async def room_edited(self, room: Any) -> None:
        """A host's edit of ``room``: returns once its counters are committed (the host is
        answered only then)."""
        fut = self._submit(writes_from_room_edit(room))
        if fut is not None:
            await fut

    # --- the events (Redis: each node records what it applied; nothing waits) --------------
    def on_changes(self, changes: Sequence[SupportChange]) -> None:
        self._submit(writes_from_changes(changes))

    def on_order(self, room: Any, order: Any, outcome: Any) -> None:
        self._submit(writes_from_order(room, order, outcome))

    # --- the queue --------------------------------------------------------------------------
    def _submit(self, batch: list[Write]) -> asyncio.Future | None:
        """Queue ``batch`` now (before any ``await``: batches commit in the order their
        steps applied); its future is done once committed."""
        if not batch:
            return None
        at = time.time()
        try:
            fut = self.store.submit(batch, at)
        except Exception as e:
            self._failed(batch, at, e)
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(e)
            fut.exception()  # retrieved: the caller may not await it (the events path)
            return fut
        self.pending.add(fut)
        fut.add_done_callback(lambda f: self._done(f, batch, at))
        return fut

    def _done(self, fut: asyncio.Future, batch: list[Write], at: float) -> None:
        self.pending.discard(fut)
        if fut.cancelled():
            return
        e = fut.exception()
        if e is not None:
            self._failed(batch, at, e)

    def _failed(self, batch: list[Write], at: float, e: BaseException) -> None:
        self.failures += 1
        if self.metrics is not None:
            self.metrics.store_write_failures.inc()
        log.error("store feed: a batch of %d writes was not committed (%s); held for a "
                  "retry every %.1f s, steps are refused until it is written",
                  len(batch), e, self.retry_s)
        self.held.append((batch, at))
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._rewrite(),
                                                                 name="store-feed-retry")

    async def _rewrite(self) -> None:
        while self.held:
            await asyncio.sleep(self.retry_s)
            batch, at = self.held[0]
            try:
                await self.store.apply(batch, at)
            except Exception as e:
                log.warning("store feed: held batch still not committed: %s", e)
                continue
            self.held.popleft()
            if not self.held:
                log.info("store feed: every held batch is written; steps are accepted again")

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (tests, shutdown)."""
        if self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)

    async def close(self) -> None:
        """Stop rewriting held batches (shutdown; what is still held was never
        acknowledged)."""
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
        if self.held:
            log.error("store feed: %d batch(es) never committed at shutdown", len(self.held))
