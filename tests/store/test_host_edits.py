"""A host's edits of stock and gift quotas are durable: on one node (SQLite) the host is
answered only once the room's counters are committed, and a restarted gateway has them;
with Redis + PostgreSQL the edit goes through the room's stream to the archive, and a Redis
that restarted empty gets it back."""

from __future__ import annotations

import redis.asyncio as aioredis

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.store.test_repopulate import pg, redis_srv, until

__all__ = ["pg", "redis_srv"]  # fixtures

GIFT = "PD1"  # the demo room's first-N gift on D001 (limit 100, 68 claimed)


async def edit(gw, stock: int, limit: int) -> None:
    host = await gw.client("host", "host-1", room=gw.room_id, name="小鹿")
    r = await host.request("room.stock", room=gw.room_id, sku="D001", stock=stock)
    assert r["type"] == "ack", r
    r = await host.request("room.promo.upsert", room=gw.room_id,
                           promotion={"id": GIFT, "limit": limit})
    assert r["type"] == "ack", r
    r = await host.request("room.promo.stop", room=gw.room_id, promotion=GIFT)
    assert r["type"] == "ack", r


def counters(gw) -> tuple[int, int | None, bool]:
    kb = gw.gw.rooms.get(gw.room_id).knowledge
    promo = kb.promotion(GIFT)
    return kb.product("D001").stock, promo.limit, promo.active


async def test_a_restarted_node_has_the_hosts_edits(tmp_path):
    gw = await start_gateway(Config(dev=True, port=free_port(), data_dir=tmp_path))
    try:
        assert counters(gw) == (48, 100, True)
        await edit(gw, stock=7, limit=120)
        assert counters(gw) == (7, 120, False)
        # answered once committed: the store has it now, before any order
        rows = await gw.gw.durable.store.db.fetch(
            "SELECT quota, active, claimed FROM room_gifts WHERE room = ? AND promotion = ?",
            ["demo", GIFT])
        assert rows == [(120, 0, 68)]
    finally:
        await stop_gateway(gw)
    again = await start_gateway(Config(dev=True, port=free_port(), data_dir=tmp_path))
    try:
        assert counters(again) == (7, 120, False)
    finally:
        await stop_gateway(again)


async def test_with_redis_the_edit_reaches_the_archive_and_a_repopulated_redis(redis_srv, pg):
    r = aioredis.Redis.from_url(redis_srv.url)
    await r.flushall()
    url = await pg.url("hostedits")
    gws = [await start_gateway(Config(dev=True, port=free_port(), redis_url=redis_srv.url,
                                      database_url=url, node_id=f"h{i}",
                                      archiver_lease_ttl_s=1.0)) for i in range(2)]
    try:
        await edit(gws[0], stock=9, limit=110)
        store = gws[1].gw.durable.store

        async def archived():
            return await store.db.fetch(
                "SELECT s.stock, g.quota, g.active FROM room_stock s, room_gifts g WHERE "
                "s.room = 'demo' AND s.sku = 'D001' AND g.room = 'demo' AND g.promotion = ?",
                [GIFT]) == [(9, 110, 0)]
        await until(archived, 10, "the host's edit archived")

        await r.flushall()  # Redis restarted empty

        async def repopulated():  # (a node whose replica was empty has nothing to resync)
            return await r.exists("ld:{ld}:populated") and await r.exists("ld:{r:demo}:kb")
        await until(repopulated, 15, "Redis repopulated")
        assert int(await r.hget("ld:{r:demo}:stock", "D001")) == 9
        gift = await r.hgetall(f"ld:{{r:demo}}:gift:{GIFT}")
        assert gift[b"limit"] == b"110" and gift[b"active"] == b"0"
        await until(lambda: all(counters(g) == (9, 110, False) for g in gws), 10,
                    "both nodes' copies of the room")
    finally:
        for g in gws:
            await stop_gateway(g)
        await r.aclose()
