"""Replicated records written with a TTL are forgotten everywhere once it runs out.

Records that belong to a conversation (CSAT, outcomes, conversions) or to a viewer's recent
activity (browsing) get the retention as their TTL; before, they stayed in every node's
memory and in Redis's ``rec:<ns>`` hashes forever, and every node loaded all of them at
start-up. Both backends; with Redis, two backends on one Redis are two nodes. Also: an
outcome record written while Redis is away still reaches it.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from gateway.config import Config
from gateway.support.backend import MemoryBackend
from gateway.support.conversation import ConversationStore
from gateway.support.redis_backend import P, RedisBackend
from gateway.support.routing import Router
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.integration.test_conversations import escalated_pair

pytestmark = pytest.mark.parity


def _listen(backend, ns: str, log: list) -> None:
    backend.listen(ns, lambda k, v: log.append(("put", k)), forget=lambda k: log.append(("forget", k)))


async def _expiry_walk(writer, readers) -> None:
    """``writer`` writes; every backend in ``readers`` (``writer`` included) must follow."""
    logs = []
    for b in readers:
        logs.append([])
        _listen(b, "csat", logs[-1])
    await writer.put("csat", "c_ttl", {"rating": 5}, ttl_s=60)
    await writer.put("csat", "c_keep", {"rating": 4})
    await writer.put("csat", "c_cleared", {"rating": 3}, ttl_s=60)
    await writer.put("csat", "c_cleared", {"rating": 2})  # rewritten without a TTL: kept
    await writer.put("csat", "c_moved", {"rating": 1}, ttl_s=60)
    await writer.put("csat", "c_moved", {"rating": 1, "x": 1}, ttl_s=600)  # pushed back
    for b in readers:
        await b.sync()
    assert await writer.expire_records(time.time() + 30) == 0  # nothing due yet
    n = sum([await b.expire_records(time.time() + 120) for b in readers])
    assert n == 1  # every node may sweep: the record is forgotten once
    for b, log in zip(readers, logs, strict=False):
        await b.sync()
        assert b.get("csat", "c_ttl") is None
        assert b.get("csat", "c_keep") == {"rating": 4}
        assert b.get("csat", "c_cleared") == {"rating": 2}
        assert b.get("csat", "c_moved") == {"rating": 1, "x": 1}
        assert log.count(("forget", "c_ttl")) == 1 and len([e for e in log if e[0] == "forget"]) == 1
    assert sum([await b.expire_records(time.time() + 700) for b in readers]) == 1  # c_moved
    for b in readers:
        await b.sync()
        assert b.get("csat", "c_moved") is None and b.get("csat", "c_keep") == {"rating": 4}


async def test_records_expire_on_every_node_once_past_their_ttl(backend):
    """The same walk on both backends: one memory node, or two Redis nodes on one Redis
    (which must also leave Redis, and not be loaded by a node started afterwards)."""
    if backend.name == "memory":
        b = MemoryBackend(ConversationStore(), Router())
        b.sync = _no_sync
        await _expiry_walk(b, [b])
        return
    url = backend.redis_url
    clients = [aioredis.Redis.from_url(url) for _ in range(3)]
    nodes = [RedisBackend(c, ConversationStore(), Router(), url=url) for c in clients[:2]]
    try:
        for n in nodes:
            await n.start()
        await _expiry_walk(nodes[0], nodes)
        red = clients[2]
        assert set(await red.hkeys(P + "rec:csat")) == {b"c_keep", b"c_cleared"}
        assert await red.zcard(P + "recexp") == 0
        # a node started now loads what is left, not what expired
        late = RedisBackend(aioredis.Redis.from_url(url), ConversationStore(), Router(), url=url)
        await late.start()
        try:
            assert late.get("csat", "c_ttl") is None and late.get("csat", "c_keep") == {"rating": 4}
        finally:
            await late.close()
    finally:
        for n in nodes:
            await n.close()
        for c in clients:
            await c.aclose()


async def _no_sync() -> None:
    return None


async def test_resolved_conversations_records_leave_with_it(backend):
    """The whole chain in a gateway: the CSAT request and the outcome of a resolved
    conversation carry the retention as their TTL and are gone, with the conversation,
    from the records and from the workspace's maps."""
    r = await start_gateway(backend.config(resolved_retention_s=0.4))
    try:
        v, a, cid = await escalated_pair(r)
        await a.request("conversation.resolve", conversation=cid)
        backend = r.gw.support.backend
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while backend.get("outcome", cid) is None or backend.get("csat_req", cid) is None:
            assert loop.time() - t0 < 3, "outcome / CSAT request never recorded"
            await asyncio.sleep(0.02)
        ws = r.gw.workspace
        assert cid in ws.csat.requested and ws.outcomes.outcome_of(cid) is not None
        while backend.get("outcome", cid) is not None or backend.get("csat_req", cid) is not None:
            assert loop.time() - t0 < 5, "records of a forgotten conversation kept"
            await asyncio.sleep(0.05)
        assert cid not in ws.csat.requested and ws.outcomes.outcome_of(cid) is None
    finally:
        await stop_gateway(r)



@pytest.mark.redis
@pytest.mark.one_backend("redis", why="stops and restarts its own redis-server mid-write")
async def test_an_outcome_written_while_redis_is_down_reaches_it_when_it_is_back(redis_server):
    """A conversation's outcome is counted by every node from its replicated record. Redis
    away when the record is written: the node keeps trying (it used to give up at once,
    and the other nodes' dashboards never counted that conversation)."""
    assert redis_server.restart is not None, "needs a redis-server of its own (not REDIS_URL)"
    r = await start_gateway(Config(dev=True, port=free_port(), redis_url=redis_server.url))
    try:
        outcomes = r.gw.workspace.outcomes
        rec = {"outcome": "abandoned", "room": r.room_id, "agent": None, "ts": time.time(),
               "frt": None}
        redis_server.stop()
        share = asyncio.create_task(outcomes._share("outcome", "c_during_blip", rec))
        await asyncio.sleep(1.5)
        assert not share.done()  # still trying, not given up
        redis_server.start()
        assert await asyncio.wait_for(share, 20) is True
        red = aioredis.Redis.from_url(redis_server.url)
        try:
            assert await red.hexists(P + "rec:outcome", "c_during_blip")
        finally:
            await red.aclose()
    finally:
        await stop_gateway(r)


@pytest.mark.one_backend("memory", why="bounds MemoryBackend's due-time heap; Redis keeps one "
                         "sorted-set member per record by construction")
async def test_memory_backend_ttl_heap_stays_bounded_when_records_are_rewritten():
    """A browsing timeline is rewritten on every event: the due-time heap must not keep an
    entry per write for the whole retention, only about one per record."""
    b = MemoryBackend(ConversationStore(), Router())
    for i in range(5000):
        await b.put("browse", f"u{i % 3}", {"events": [i]}, ttl_s=3600)
    assert len(b._due) <= 2 * 3 + 1024
    assert await b.expire_records(time.time() + 3601) == 3
    assert b.get("browse", "u0") is None and b._expiry == {}
