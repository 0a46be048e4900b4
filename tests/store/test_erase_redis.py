"""Erasure reaches Redis (``RedisBackend.erase_viewer``) and the archive never gets the
viewer back: two nodes' backends on a real redis-server, the archiver writing into the
machine's real PostgreSQL. The viewer's last messages are still unarchived (the archiver is
stopped) when it is erased; once an archiver runs again and has caught up, nothing of the
viewer is in Redis (every key's name *and* value scanned), in either replica, in
PostgreSQL — nor after a node starts afresh or Redis is repopulated from the archive."""

from __future__ import annotations

import secrets

import pytest
import redis.asyncio as aioredis

from gateway.archiver import SUPPORT_STREAM, Archiver, ArchiverConfig, room_stream
from gateway.durable import ViewerEraser
from gateway.support.conversation import Author, ConversationStore
from gateway.support.orders import Order
from gateway.support.redis_backend import ERASING, RedisBackend
from gateway.support.routing import Router
from tests.store.test_repopulate import BOT, NodeUnderTest, pg, redis_srv, until

pytestmark = pytest.mark.redis
__all__ = ["pg", "redis_srv"]  # fixtures


class NoSockets:
    def user_sessions(self, user):
        return []


async def everything_in(r: aioredis.Redis) -> dict[bytes, bytes]:
    """Every key of Redis with its whole value, as bytes (names and contents searchable)."""
    out: dict[bytes, bytes] = {}
    async for key in r.scan_iter(count=1000):
        t = (await r.type(key)).decode()
        parts: list[bytes] = []
        if t == "string":
            parts = [await r.get(key) or b""]
        elif t == "hash":
            parts = [x for kv in (await r.hgetall(key)).items() for x in kv]
        elif t == "list":
            parts = await r.lrange(key, 0, -1)
        elif t == "set":
            parts = list(await r.smembers(key))
        elif t == "zset":
            parts = list(await r.zrange(key, 0, -1))
        elif t == "stream":
            parts = [x for _, f in await r.xrange(key) for kv in f.items() for x in kv]
        out[key] = b"\x00".join(parts)
    return out


def archiver_for(node: NodeUnderTest, store) -> Archiver:
    return Archiver(node.redis, store, lambda: [SUPPORT_STREAM, room_stream(node.room.id)],
                    "n2", ArchiverConfig(lease_ttl_s=1.0, poll_s=0.02, measure_every_s=0.05))


async def test_an_erased_viewer_is_nowhere_once_the_archiver_caught_up(redis_srv, pg):
    store = await pg.open()
    r = aioredis.Redis.from_url(redis_srv.url)
    await r.flushall()
    a = NodeUnderTest(redis_srv.url, store, {"ag1"})
    b = NodeUnderTest(redis_srv.url, store, set())
    a.backend.archived = b.backend.archived = True  # as wiring sets it with an archiver
    viewer = "vx" + secrets.token_hex(6)
    other = "vy" + secrets.token_hex(6)
    late = None
    try:
        await a.start()
        await b.start()
        await a.backend.set_status("ag1", "available", "Agent One", 5)
        conv, _ = await a.backend.open("demo", viewer, "Erase Me", (BOT, "hi"))
        keep, _ = await b.backend.open("demo", other, "Stay", (BOT, "hi"))
        await a.backend.append(conv, Author("viewer", viewer, "Erase Me"), "我的地址是某处", "m1")
        await b.backend.append(keep, Author("viewer", other, "Stay"), "留下", "k1")
        await a.backend.put("csat_req", conv.id, {"conversation": conv.id, "viewer": viewer})
        sku = a.room.knowledge.products[0].sku
        assert (await a.room_store.place(a.room, Order("ord-" + viewer, viewer, sku, 1))
                ).status == 200

        async def caught_up(arch):
            return (await arch.measure()).entries == 0
        await until(lambda: caught_up(a.archiver), 10, "the archive to catch up")
        assert (await store.load_live_state()).conversations
        await a.archiver.close()  # what follows is not archived when the viewer is erased
        await a.backend.escalate(conv, "wants a human")
        await a.backend.append(conv, Author("viewer", viewer, "Erase Me"), "电话 13800000000",
                               "m2")
        await b.backend.sync()

        eraser = ViewerEraser(store, b.backend, NoSockets(),  # type: ignore[arg-type]
                              forget_orders=lambda v: b.room_store.erase_viewer(
                                  [b.room.id], v))
        report = await eraser.erase(viewer, "admin")
        assert report.conversations == 1 and report.orders == 1
        await a.backend.sync()
        for node in (a, b):  # both replicas dropped the viewer
            assert node.backend.store.get(conv.id) is None
            assert node.backend.get("csat_req", conv.id) is None
            assert node.backend.store.get(keep.id) is not None
        assert await r.hexists(ERASING, viewer)  # until the archiver has caught up

        arch = archiver_for(a, store)  # another leader, from the archive's cursor
        await arch.start()
        try:
            await until(lambda: caught_up(arch), 10, "the new leader to catch up")
            async def finished():
                return await r.hlen(ERASING) == 0
            await until(finished, 10, "the erasure finished")
            await until(lambda: caught_up(arch), 10, "the archive to catch up again")
        finally:
            await arch.close()

        dump = await everything_in(r)
        for needle in (viewer.encode(), conv.id.encode(), b"13800000000",
                       "某处".encode()):
            hits = [k for k, v in dump.items() if needle in k or needle in v]
            assert not hits, (needle, hits)
        assert any(keep.id.encode() in k for k in dump)  # the other viewer is untouched

        db = store.db
        assert await db.fetch("SELECT id FROM conversations WHERE viewer = ?", (viewer,)) == []
        assert await db.fetch("SELECT n FROM messages WHERE conversation = ?", (conv.id,)) == []
        assert await db.fetch("SELECT key FROM records WHERE conversation = ? OR viewer = ?",
                              (conv.id, viewer)) == []
        assert await db.fetch("SELECT order_id FROM orders WHERE viewer = ?", (viewer,)) == []
        assert await db.fetch("SELECT n FROM messages WHERE conversation = ?", (keep.id,))

        # a node started afresh, and a Redis repopulated from the archive, know nothing of it
        late = RedisBackend(aioredis.Redis.from_url(redis_srv.url), ConversationStore(),
                            Router(), url=redis_srv.url)
        await late.start()
        assert late.store.get(conv.id) is None and late.store.get(keep.id) is not None
        await r.flushall()
        await until(lambda: a.backend.resyncs >= 1 and b.backend.resyncs >= 1, 15,
                    "the nodes to resync with the repopulated Redis")
        dump = await everything_in(r)
        assert not [k for k, v in dump.items() if viewer.encode() in k + v
                    or conv.id.encode() in k + v]
        assert any(keep.id.encode() in k for k in dump)
    finally:
        if late is not None:
            await late.close()
        await a.close()
        await b.close()
        await r.aclose()
