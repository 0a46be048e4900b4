"""Stopping a Redis-backed node's change-log follower, whatever it is doing."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.support.conversation import ConversationStore
from gateway.support.redis_backend import RedisBackend
from gateway.support.routing import Router


@pytest.mark.redis
async def test_a_backend_closed_right_after_it_started_stops(redis_server):
    """Cancelling the change-log tail while its first blocking XREAD is still connecting
    used to hang ``close()`` for ever (redis-py swallows that cancellation): a node told to
    stop at once, e.g. by a failed start-up, never did."""
    for _ in range(3):
        client = aioredis.Redis.from_url(redis_server.url)
        b = RedisBackend(client, ConversationStore(), Router(), url=redis_server.url)
        try:
            await asyncio.wait_for(b.start(), 5)
            await asyncio.wait_for(asyncio.sleep(0), 5)
            await asyncio.wait_for(b.close(), 5)
            assert b._tail.done()
        finally:
            await client.aclose()
