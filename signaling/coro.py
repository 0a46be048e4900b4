"""Driving a coroutine by hand: its first step on the caller's stack, the rest in a task.

Two hot paths call a coroutine that almost never has to wait: a session writing a frame to
a socket that takes it at once, and the media fast path handing a packet to an aiortc
handler. Wrapping each call in a task would cost a task, a queue entry and a loop wake-up
per frame or packet. So the caller sends the coroutine its first step itself; only when
the coroutine suspends (the socket is behind, a TURN send awaits) does a task take it
over, and that task resumes it exactly as the task that would have run it from the start:
when what it waits on is done, with the coroutine itself reading that result or exception.

This is the one place that knows how asyncio's ``Task`` hands a suspended coroutine's
future back to it: a coroutine awaiting a future yields that future with its
``_asyncio_future_blocking`` flag set, and the task clears the flag before it waits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


async def finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
    """Run ``coro`` to completion after a first step driven by hand suspended with
    ``yielded``. Whatever ``coro`` raises is raised here; if this task is cancelled,
    ``coro`` is closed (it never resumes after its owner gave up on it)."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            if asyncio.isfuture(yielded):
                yielded._asyncio_future_blocking = False  # what Task.__step does
                if not yielded.done():
                    w: asyncio.Future[None] = loop.create_future()
                    yielded.add_done_callback(functools.partial(_wake, w))
                    await w
            else:  # a bare yield (sleep(0)): one turn of the loop
                await asyncio.sleep(0)
            yielded = coro.send(None)
    except StopIteration:
        return
    except BaseException:
        coro.close()
        raise


def _wake(waiter: asyncio.Future[None], _done: object) -> None:
    """Done callback of the future a driven coroutine awaits: wake the task that waits for it."""
    if not waiter.done():
        waiter.set_result(None)


def drive(coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` now, on this stack, as far as it goes without waiting; if it does wait,
    a task finishes it. Fire and forget: what it raises is logged at debug level (a send on
    a transport that is closing, which the caller could not have told in advance)."""
    try:
        yielded = coro.send(None)
    except StopIteration:
        return
    except Exception:
        log.debug("driven coroutine %s failed", getattr(coro, "__qualname__", coro),
                  exc_info=True)
        return
    asyncio.ensure_future(finish(coro, yielded)).add_done_callback(retrieve)


def retrieve(fut: asyncio.Future[Any]) -> None:
    """Done callback of a fire-and-forget future: its exception counts as retrieved (nobody
    waits for it, and asyncio would otherwise log it when the future is collected)."""
    if not fut.cancelled():
        fut.exception()
