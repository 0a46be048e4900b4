"""Bus contract: both implementations deliver in order, to the right topics only."""

from __future__ import annotations

import asyncio

import pytest

from signaling import MemoryBus
from signaling.redis_bus import RedisBus


@pytest.fixture(params=["memory", "redis"])
async def buses(request, redis_server):
    if request.param == "memory":
        b = MemoryBus()
        await b.start()
        yield b, b
        await b.close()
    else:
        a, b = RedisBus(redis_server.url, "node-a"), RedisBus(redis_server.url, "node-b")
        await a.start()
        await b.start()
        yield a, b
        await a.close()
        await b.close()


async def wait_until(pred, timeout=3.0):
    t = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < t, "timed out"
        await asyncio.sleep(0.01)


async def test_publish_reaches_subscribers_in_order_on_every_node(buses):
    a, b = buses
    got_a, got_b, other = [], [], []
    a.subscribe("user:u1", got_a.append)
    b.subscribe("user:u1", got_b.append)
    b.subscribe("user:u2", other.append)
    await asyncio.sleep(0.2)  # let remote SUBSCRIBE settle
    for i in range(200):
        await a.publish("user:u1", {"n": i})
    await wait_until(lambda: len(got_b) == 200)
    assert [p["n"] for p in got_a] == list(range(200))
    assert [p["n"] for p in got_b] == list(range(200))
    assert other == []
    assert await a.ping() and await b.ping()


async def test_unsubscribe_stops_delivery(buses):
    a, b = buses
    got = []
    b.subscribe("room:r", got.append)
    await asyncio.sleep(0.2)
    await a.publish("room:r", {"n": 1})
    await wait_until(lambda: len(got) == 1)
    b.unsubscribe("room:r", got.append)
    await asyncio.sleep(0.2)
    await a.publish("room:r", {"n": 2})
    await asyncio.sleep(0.2)
    assert [p["n"] for p in got] == [1]


async def test_failing_subscriber_does_not_starve_others(buses):
    a, b = buses
    got = []

    def boom(_):
        raise RuntimeError("boom")
    a.subscribe("t", boom)
    a.subscribe("t", got.append)
    await a.publish("t", {"x": 1})
    assert got == [{"x": 1}]
