"""Stopping a background task that talks to Redis, even when redis-py will not let it stop.

redis-py's asyncio client can swallow a cancellation that lands while a connection is being
set up or a blocking read (XREAD, a pub/sub subscribe) is in flight (redis/redis-py#2028,
#2579): the task then waits for a reply that never comes, and whoever awaited it on shutdown
hangs with it (a node asked to stop right after it started never did). Owners of such
tasks stop them here: cancel, wait a moment, and if the task is still there, drop its
connections (``unstick``) so the read fails, and cancel again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def stop_task(task: asyncio.Task[object] | None,
                    unstick: Callable[[], Awaitable[object]] | None = None,
                    wait_s: float = 1.0) -> bool:
    """Cancel ``task`` and wait for it; ``True`` once it has ended. An exception it ended
    with is marked retrieved (its owner logged it when it happened)."""
    if task is None:
        return True
    task.cancel()
    await asyncio.wait([task], timeout=wait_s)
    if not task.done() and unstick is not None:
        try:
            await unstick()
        except Exception as e:  # the connection is going away anyway
            log.debug("unsticking %s: %s", task.get_name(), e)
        task.cancel()
        await asyncio.wait([task], timeout=wait_s)
    if not task.done():
        log.warning("task %s did not stop when cancelled", task.get_name())
        return False
    if not task.cancelled():
        task.exception()
    return True
