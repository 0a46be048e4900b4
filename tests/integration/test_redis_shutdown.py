"""Stopping what follows Redis (the support state's change-log tail, the bus listener) right
after it started. redis-py can swallow a cancellation that lands while a connection is set
up or a blocking read is in flight; ``close()`` used to wait for such a task for ever, so a
node asked to stop at once (a failed start-up, a test) never did (``signaling.tasks``)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.support.conversation import ConversationStore
from gateway.support.redis_backend import RedisBackend
from gateway.support.routing import Router
from signaling.redis_bus import RedisBus

pytestmark = [pytest.mark.redis, pytest.mark.parity]


@pytest.mark.one_backend("redis", why="the stop under test is the Redis tail task's; the memory "
                         "backend has no task to stop")
async def test_a_backend_closed_right_after_it_started_stops(backend):
    for _ in range(3):
        client = aioredis.Redis.from_url(backend.redis_url)
        b = RedisBackend(client, ConversationStore(), Router(), url=backend.redis_url)
        try:
            await asyncio.wait_for(b.start(), 5)
            await asyncio.wait_for(asyncio.sleep(0), 5)
            await asyncio.wait_for(b.close(), 5)
            assert b._tail.done()
        finally:
            await client.aclose()


@pytest.mark.one_backend("redis", why="RedisBus's listener task; the memory bus has none")
async def test_a_bus_closed_right_after_it_started_stops(backend):
    for _ in range(3):
        bus = RedisBus(backend.redis_url, "n1")
        await asyncio.wait_for(bus.start(), 5)
        await asyncio.wait_for(asyncio.sleep(0), 5)
        bus.subscribe("room:x", lambda p: None)
        await asyncio.wait_for(bus.close(), 5)
        assert bus._listener.done()
