"""One in-process event mechanism: typed events, published to the handlers of their type.

Why one: the gateway's parts used to hear of each other through string-keyed listener
lists (``hub.on("live")``, ``support.on("resolved")``, ``order_listeners``, callback
attributes assigned after construction). A typo there fails silently and a reader cannot
find who listens. Here an event is a frozen dataclass; ``subscribe(SessionLive, handler)``
names the type, so a reader (and mypy) finds every publisher and every subscriber of it.

Rules:

* Handlers run synchronously, in subscription order, inside :meth:`Events.publish`; the
  publisher's state is therefore settled and consistent when they run (e.g. a chat message
  is in the replica before any handler delivers it).
* A handler that returns a coroutine has it run as a task owned by this object (and
  cancelled by :meth:`close`), so a slow subscriber never holds up the publisher.
* A failing handler is logged and does not stop the others or the publisher.
* Dispatch is on the exact type (no subclass matching): one event class, one meaning.

This module is domain-free: the session events below belong to signaling; the support
plane declares its own (``gateway/support/events.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)

E = TypeVar("E")
Handler = Callable[[E], None | Coroutine[Any, Any, Any]]


class Events:
    """Subscribers by event type; owned by the composition root, shared by every part."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Callable[[Any], Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def subscribe(self, kind: type[E], handler: Handler[E]) -> None:
        self._handlers.setdefault(kind, []).append(handler)

    def subscribers(self, kind: type) -> int:
        """How many handlers ``kind`` has (for tests and for start-up checks)."""
        return len(self._handlers.get(kind, ()))

    def publish(self, event: object) -> None:
        for handler in self._handlers.get(type(event), ()):
            try:
                r = handler(event)
                if asyncio.iscoroutine(r):
                    self._spawn(r)
            except Exception:
                log.exception("handler of %s failed", type(event).__name__)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task[Any]) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("event handler task failed", exc_info=t.exception())

    async def close(self) -> None:
        """Cancel handler tasks still running (shutdown)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- session lifecycle (published by the hub) --------------------------------------------

@dataclass(frozen=True)
class SessionLive:
    """A session has a socket and is subscribed: it was just created or restored here."""
    session: Session


@dataclass(frozen=True)
class SessionDetached:
    """A session lost its socket; it may resume within the retention window."""
    session: Session


@dataclass(frozen=True)
class SessionResumed:
    """A detached session of this node got a socket again."""
    session: Session


@dataclass(frozen=True)
class SessionExpired:
    """A session ended for good (retention over, or closed)."""
    session: Session


@dataclass(frozen=True)
class SessionFenced:
    """Another node claimed this session: this node must stop writing to it."""
    session: Session
