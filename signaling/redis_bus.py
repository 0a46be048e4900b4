"""RedisBus: the Bus across nodes, on Redis pub/sub.

Same contract as :class:`~signaling.bus.MemoryBus`: synchronous callbacks, per-topic order,
at-most-once. Two details make it behave like the in-memory bus for local traffic:

* ``publish`` delivers to this node's subscribers *immediately* (no round trip), and the copy
  that comes back from Redis is skipped by origin id. Local order and latency are therefore
  those of the memory bus; only cross-node hops pay Redis.
* An envelope published inside a recorded span carries its W3C ``traceparent`` (``t``); the
  receiving node delivers it in a ``bus.deliver`` span continuing that trace.
* Subscriptions are local first; the Redis SUBSCRIBE follows in the listener task. Anything
  that must not be lost does not depend on pub/sub (Streams and resume recover it).

The connection pool is a ``BlockingConnectionPool``: under bursts callers wait for a
connection instead of failing (redis-py's default asyncio pool raises on exhaustion).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import BlockingConnectionPool

from .bus import Bus, Callback
from .tasks import stop_task
from .tracing import span, traceparent

log = logging.getLogger(__name__)

PREFIX = "ld:bus:"


def make_pool(url: str, max_connections: int = 64) -> BlockingConnectionPool:
    """A blocking pool whose commands survive a stale connection (e.g. after a Redis
    restart): a connection error is retried, with backoff, on a fresh connection.

    A retry can repeat a command that did run when the connection broke after sending it.
    Our scripts are keyed so that this is harmless (orders by order id, viewer messages by
    client_msg_id, state steps by their state checks), except a server-authored chat line
    (bot answer, notice), which could then be stored twice: a visible duplicate, never a
    lost or reordered message."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RConnectionError
    from redis.exceptions import TimeoutError as RTimeoutError

    return BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, socket_connect_timeout=1.0,
        health_check_interval=5, decode_responses=False,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        retry_on_error=[RConnectionError, RTimeoutError])


def as_text(v: bytes | str) -> str:
    """A key or value read through :func:`make_pool` as text. The pool answers bytes; redis-py
    types every reply ``bytes | str`` (it cannot know the pool's ``decode_responses``)."""
    return v.decode() if isinstance(v, bytes) else v


class RedisBus(Bus):
    def __init__(self, url: str, node_id: str, redis: aioredis.Redis | None = None):
        self.url = url
        self.node_id = node_id
        self.redis = redis or aioredis.Redis(connection_pool=make_pool(url))
        self._subs: dict[str, list[Callback]] = defaultdict(list)
        self._remote: set[str] = set()  # channels subscribed at Redis
        self._wanted = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._closing = False
        self.connected = False

    async def start(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(self._listen(), name="redis-bus")

    async def close(self) -> None:
        self._closing = True  # a listener whose cancellation was swallowed ends at its next turn
        # the listener may be inside a subscribe that swallows the cancellation
        await stop_task(self._listener, self.redis.connection_pool.disconnect)
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except Exception:
                pass
        await self.redis.aclose()

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self._deliver(topic, payload)
        env: dict[str, Any] = {"o": self.node_id, "p": payload}
        tp = traceparent()
        if tp:  # the receiving node delivers in a span continuing this one
            env["t"] = tp
        data = json.dumps(env, ensure_ascii=False, separators=(",", ":"))
        await self.redis.publish(PREFIX + topic, data)

    def _deliver(self, topic: str, payload: dict[str, Any]) -> None:
        for cb in list(self._subs.get(topic, ())):
            try:
                cb(payload)
            except Exception:
                log.exception("bus subscriber for %s failed", topic)

    def subscribe(self, topic: str, callback: Callback) -> None:
        self._subs[topic].append(callback)
        if topic not in self._remote:
            self._wanted.set()

    def unsubscribe(self, topic: str, callback: Callback) -> None:
        subs = self._subs.get(topic)
        if subs and callback in subs:
            subs.remove(callback)
            if not subs:
                del self._subs[topic]
                self._wanted.set()

    async def settle(self, timeout: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (set(self._subs) - self._remote) and loop.time() < deadline:
            self._wanted.set()
            await asyncio.sleep(0.002)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), 1.0))
        except Exception:
            return False

    async def _sync_subscriptions(self, pubsub: PubSub) -> None:
        want = set(self._subs)
        add = want - self._remote
        drop = self._remote - want
        if add:
            await pubsub.subscribe(*[PREFIX + t for t in add])
            self._remote |= add
        if drop:
            await pubsub.unsubscribe(*[PREFIX + t for t in drop])
            self._remote -= drop

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            try:
                self._pubsub = pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                self._remote = set()
                await pubsub.subscribe(PREFIX + "__node__:" + self.node_id)
                self.connected = True
                backoff = 0.1
                while True:
                    if self._wanted.is_set():
                        self._wanted.clear()
                        await self._sync_subscriptions(pubsub)
                    msg = await pubsub.get_message(timeout=0.01)
                    if msg is None:
                        continue
                    try:
                        env = json.loads(msg["data"])
                    except (ValueError, TypeError):
                        continue
                    if env.get("o") == self.node_id:
                        continue
                    ch = msg["channel"]
                    topic = as_text(ch)[len(PREFIX):]
                    tp = env.get("t")
                    if isinstance(tp, str) and tp:
                        with span("bus.deliver", parent=tp,
                                  attributes={"livedesk.node": self.node_id,
                                              "livedesk.topic": topic.split(":", 1)[0]}):
                            self._deliver(topic, env["p"])
                    else:
                        self._deliver(topic, env["p"])
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.connected = False
                if self._closing:
                    return
                log.warning("redis bus connection lost (%s); retrying in %.1fs", e, backoff)
                try:
                    if self._pubsub is not None:
                        await self._pubsub.aclose()
                except Exception:
                    pass
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
