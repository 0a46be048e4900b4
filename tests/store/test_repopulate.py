"""A Redis that lost its data is repopulated from the archive (gateway/restore.py,
``RedisBackend.ensure_populated``): two nodes' support backends on a real redis-server, the
archiver writing into the machine's real PostgreSQL, Redis flushed mid-conversation → one
node writes the archive back through the commit path, the other waits, both replicas hold
the same conversation (messages, assignment), the room's counters and order ids are back,
and the conversation carries on. Also: a first start on an intact Redis writes nothing but
the marker, and the lock fences out a node that lost it."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from gateway.archiver import SUPPORT_STREAM, Archiver, ArchiverConfig, room_stream
from gateway.metrics import Metrics
from gateway.restore import RedisRepopulation, restore_units
from gateway.support.changes import AgentStatus, ConversationOpened
from gateway.support.conversation import Author, ConversationStore
from gateway.support.knowledge import Knowledge, demo_room_path
from gateway.support.orders import Order
from gateway.support.redis_backend import (
    POPULATED,
    REPOPULATING,
    RedisBackend,
    RepopulationLockLost,
)
from gateway.support.redis_room import RedisRoomStore, k
from gateway.support.room import RoomRegistry
from gateway.support.routing import Router
from tests.redis_server import RedisServer
from tests.store.conftest import Backends

pytestmark = pytest.mark.redis
BOT = Author("bot", "bot", "小助手")


@pytest.fixture(scope="module")
def redis_srv():
    srv = RedisServer(durable=False).start()
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture
async def pg(tmp_path, pg_database):
    b = Backends("postgresql", tmp_path, pg_database)
    try:
        yield b
    finally:
        await b.close()


class NodeUnderTest:
    """One node's support backend, room store and archiver candidate, in this process."""

    def __init__(self, url: str, store, agents: set[str]) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.rooms = RoomRegistry()
        self.room = self.rooms.add(Knowledge.load(demo_room_path()))
        self.room_store = RedisRoomStore(self.redis, change_log=True)
        self.metrics = Metrics()
        self.backend = RedisBackend(self.redis, ConversationStore(), Router(), url=url,
                                    local_agents=lambda: agents, metrics=self.metrics)
        self.backend.repopulate = RedisRepopulation(store, self.rooms, self.room_store, 0.0,
                                                    self.metrics)
        self.archiver = Archiver(self.redis, store,
                                 lambda: [SUPPORT_STREAM, room_stream(self.room.id)], "n",
                                 ArchiverConfig(lease_ttl_s=1.0, poll_s=0.02,
                                                measure_every_s=0.05))

    async def start(self) -> None:
        await self.backend.start()
        await self.room_store.seed_or_load(self.room)
        await self.archiver.start()

    async def close(self) -> None:
        await self.archiver.close()
        await self.backend.close()
        await self.redis.aclose()


async def until(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def counted(m: Metrics, kind: str) -> float:
    return m.redis_repopulated.labels(kind=kind)._value.get()


async def test_two_nodes_carry_on_in_the_same_conversation_after_redis_lost_everything(
        redis_srv, pg):
    store = await pg.open()
    r = aioredis.Redis.from_url(redis_srv.url)
    await r.flushall()
    a = NodeUnderTest(redis_srv.url, store, {"ag1"})
    b = NodeUnderTest(redis_srv.url, store, set())
    try:
        await a.start()
        await b.start()
        assert await r.exists(POPULATED)  # a first start on an empty archive: just the marker
        assert counted(a.metrics, "conversations") + counted(b.metrics, "conversations") == 0

        await a.backend.set_status("ag1", "available", "Agent One", 5)
        conv, _ = await a.backend.open("demo", "v1", "Vee", (BOT, "你好"))
        for i in range(5):
            await a.backend.append(conv, Author("viewer", "v1", "Vee"), f"问题 {i}", f"c{i}")
        await a.backend.escalate(conv, "asked for a human")
        got = await a.backend.assign_next()
        assert got is not None and got[1].user == "ag1"
        room = a.room
        sku = room.knowledge.products[0].sku
        before = room.knowledge.product(sku).stock
        out = await a.room_store.place(room, Order("o-1", "v1", sku, 2))
        assert out.status == 200
        n_before = len(conv.messages)

        async def caught_up():
            lag = await a.archiver.measure()
            return lag.entries == 0 and (await store.load_live_state()).conversations
        await until(caught_up, 10, "the archive to catch up")

        await r.flushall()  # Redis restarted empty

        for node in (a, b):
            await until(lambda n=node: n.backend.resyncs >= 1, 15, "both nodes to resync")
        assert await r.exists(POPULATED)
        assert sum(counted(n.metrics, "conversations") for n in (a, b)) == 1
        assert sum(counted(n.metrics, "messages") for n in (a, b)) == n_before
        assert sum(counted(n.metrics, "rooms") for n in (a, b)) == 1
        for node in (a, b):
            c = node.backend.store.get(conv.id)
            assert c is not None and c.state == "assigned" and c.agent == "ag1"
            assert [m.text for m in c.messages] == [m.text for m in conv.messages]
            assert conv.id in node.backend.router.agents["ag1"].conversations
        # ag1's console is on a: registered again with its status, not left offline
        await until(lambda: b.backend.router.agents["ag1"].status == "available", 5,
                    "the agent available again")
        assert int(await r.hget(k(room.id, "stock"), sku)) == before - 2
        assert await r.hexists(k(room.id, "orders"), "o-1")  # a replay is a repeat

        # the conversation carries on from the other node, and the first sees it
        cb = b.backend.store.get(conv.id)
        m, _ = await b.backend.append(cb, Author("agent", "ag1", "Agent One"), "我来帮你", "a1")
        assert m.n == n_before + 1
        await a.backend.sync()
        assert a.backend.store.get(conv.id).messages[-1].text == "我来帮你"
        # the archiver archived the repopulation's entries again: nothing twice in the store
        await until(lambda: caught_up_for(a, store)(), 10, "the archive to catch up")
        assert await store.db.fetch("SELECT COUNT(*), COUNT(DISTINCT n) FROM messages WHERE "
                                    "conversation = ?", [conv.id]) == [(n_before + 1,) * 2]
        assert await store.db.fetch("SELECT COUNT(*) FROM conversations") == [(1,)]
        assert await store.db.fetch("SELECT agent FROM assignments") == [("ag1",)]
        assert await store.db.fetch("SELECT COUNT(*) FROM orders") == [(1,)]
    finally:
        await a.close()
        await b.close()
        await r.aclose()


async def test_an_intact_redis_without_the_marker_gets_only_the_marker(redis_srv, pg):
    """A first start of this release on a Redis that never lost anything: what Redis holds
    wins (the units are skipped as present), nothing is written twice."""
    store = await pg.open()
    r = aioredis.Redis.from_url(redis_srv.url)
    await r.flushall()
    a = NodeUnderTest(redis_srv.url, store, set())
    try:
        await a.start()
        conv, _ = await a.backend.open("demo", "v2", "Vee", (BOT, "hi"))
        await a.backend.append(conv, Author("viewer", "v2", "Vee"), "one", "c1")
        await until(lambda: a.archiver.measure(), 5, "a lag figure")
        await until(caught_up_for(a, store), 10, "the archive to catch up")
        await r.delete(POPULATED)
        log_len = await r.xlen(f"ld:{{ld}}:log:{conv.id}")
        assert await a.backend.ensure_populated() is True
        assert await r.xlen(f"ld:{{ld}}:log:{conv.id}") == log_len  # not appended twice
        assert a.metrics.redis_unrestored.labels(reason="present")._value.get() >= 1
        assert counted(a.metrics, "conversations") == 0
    finally:
        await a.close()
        await r.aclose()


def caught_up_for(node: NodeUnderTest, store):
    async def check():
        lag = await node.archiver.measure()
        return lag.entries == 0 and bool((await store.load_live_state()).conversations)
    return check


async def test_a_node_that_lost_the_lock_writes_nothing(redis_srv):
    r = aioredis.Redis.from_url(redis_srv.url)
    await r.flushall()
    b = RedisBackend(r, ConversationStore(), Router(), url=redis_srv.url)
    try:
        await r.set(REPOPULATING, "someone-else")
        unit = [ConversationOpened("c_x", "demo", "v9", "Vee", 1.0)]
        with pytest.raises(RepopulationLockLost):
            await b.restore_unit(unit, token="mine")
        assert not await r.exists("ld:{ld}:conv:c_x")
        assert await b.restore_unit([AgentStatus("ag", "A", "offline", 1.0, 5)],
                                    token="someone-else") == "restored"
        assert await b.restore_unit([AgentStatus("ag", "A", "offline", 1.0, 5)],
                                    token="someone-else") == "present"
    finally:
        await r.aclose()


def test_restore_units_keep_each_conversation_whole_and_the_queue_in_order():
    from gateway.support.changes import FieldsSet, MessageAppended, Queued

    changes = [AgentStatus("ag", "A", "offline", 1.0, 5),
               ConversationOpened("c1", "r", "v1", "V", 1.0), FieldsSet("c1", {"state": "bot"}),
               ConversationOpened("c2", "r", "v2", "V", 1.0),
               MessageAppended("c2", 1, Author("viewer", "v2", "V"), "x", 2.0),
               ConversationOpened("c3", "r", "v3", "V", 1.0),
               Queued("c3", 5.0), Queued("c2", 6.0)]
    units = restore_units(changes)
    assert [type(u[0]).__name__ for u in units] == ["AgentStatus", "ConversationOpened",
                                                    "ConversationOpened", "ConversationOpened"]
    assert [u[0].cid for u in units[1:]] == ["c3", "c2", "c1"]  # queued first, head first
    assert [type(c).__name__ for c in units[2]] == ["ConversationOpened", "MessageAppended",
                                                    "Queued"]
