"""The Bus: how anything that another node must see leaves this node.

Topics are plain strings (``user:<id>``, ``room:<id>``, ``node:<id>``...). A subscriber's
callback is synchronous and is called in publish order for a topic, which is what keeps
per-session sequence numbers in the order events were produced. Delivery is at-most-once
(like Redis pub/sub): state that must survive lives in a store, not on the Bus.

:class:`MemoryBus` is the embedded default (one process). The Redis implementation lives
beside it and passes the same contract tests.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Callback = Callable[[dict[str, Any]], None]


class Bus(ABC):
    """Publish/subscribe between the nodes of one LiveDesk deployment."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Deliver ``payload`` to every subscriber of ``topic`` on every node."""

    @abstractmethod
    def subscribe(self, topic: str, callback: Callback) -> None: ...

    @abstractmethod
    def unsubscribe(self, topic: str, callback: Callback) -> None: ...

    @abstractmethod
    async def ping(self) -> bool:
        """True when the bus can deliver right now (``/readyz``)."""

    async def settle(self, timeout: float = 1.0) -> None:
        """Wait until every subscription made so far is effective on every node's path.

        Pub/sub is at-most-once: a message published before a remote SUBSCRIBE is in place
        is not delivered. The edge settles after a session goes live or watches a topic, so
        "I asked, then it happened" never loses the event."""
        return None


class MemoryBus(Bus):
    """One-process bus: publish calls the subscribers directly, in order."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Callback]] = defaultdict(list)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._subs.clear()

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.publish_nowait(topic, payload)

    def publish_nowait(self, topic: str, payload: dict[str, Any]) -> None:
        for cb in list(self._subs.get(topic, ())):
            try:
                cb(payload)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("bus subscriber for %s failed", topic)

    def subscribe(self, topic: str, callback: Callback) -> None:
        self._subs[topic].append(callback)

    def unsubscribe(self, topic: str, callback: Callback) -> None:
        subs = self._subs.get(topic)
        if subs and callback in subs:
            subs.remove(callback)
            if not subs:
                del self._subs[topic]

    async def ping(self) -> bool:
        return True
