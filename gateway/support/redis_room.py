"""Room state in Redis: seeding, the atomic order step (one Lua script), and cross-node sync.

Layout (all keys of one room share the hash tag ``{r:<room>}`` so every script runs on one
Redis Cluster slot):

* ``ld:{r:R}:kb``       the room's knowledge JSON (authoritative once seeded)
* ``ld:{r:R}:stock``    hash sku → stock (the live counter; wins over the JSON)
* ``ld:{r:R}:gifts``    list of first_n_gift promotion ids, in KB order
* ``ld:{r:R}:gift:<id>`` hash limit, claimed, sku, active
* ``ld:{r:R}:orders``   hash order_id → JSON {order, body} (idempotency record)
* ``ld:{r:R}:orders_ts`` sorted set order_id → when placed (order retention)
* ``ld:{r:R}:version``  counter bumped by every change

A node seeds a room only when ``kb`` is absent; afterwards it *loads* from Redis. Every change
is published as ``roomsync:<room>`` so the other nodes update their in-memory copy (which is
what their bot reads); a periodic refresh repairs anything pub/sub dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis

from .knowledge import Knowledge
from .room import Order, OrderOutcome, Room

log = logging.getLogger(__name__)


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def k(room: str, name: str) -> str:
    return f"ld:{{r:{room}}}:{name}"


# KEYS: stock, gifts, orders, version, orders_ts ;
# ARGV: order_id, user, sku, qty, gift key prefix, now, forget-before ('' = keep all)
ORDER_LUA = """
if ARGV[7] ~= '' then
  -- retention: each order forgets up to 20 order ids older than the cutoff
  local old = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[7], 'LIMIT', 0, 20)
  for _, id in ipairs(old) do
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[5], id)
  end
end
local prev = redis.call('HGET', KEYS[3], ARGV[1])
if prev then
  local rec = cjson.decode(prev)
  if rec.user == ARGV[2] and rec.sku == ARGV[3] and tonumber(rec.qty) == tonumber(ARGV[4]) then
    return {'repeat', prev}
  end
  return {'conflict', prev}
end
local stock = redis.call('HGET', KEYS[1], ARGV[3])
if not stock then return {'no_sku', ''} end
stock = tonumber(stock)
local qty = tonumber(ARGV[4])
if qty > stock then return {'out_of_stock', tostring(stock)} end
stock = stock - qty
redis.call('HSET', KEYS[1], ARGV[3], stock)
local gift, rank, promo = false, cjson.null, cjson.null
local ids = redis.call('LRANGE', KEYS[2], 0, -1)
for _, id in ipairs(ids) do
  local g = ARGV[5] .. id
  local active = redis.call('HGET', g, 'active')
  local sku = redis.call('HGET', g, 'sku')
  if active == '1' and (sku == false or sku == '' or sku == ARGV[3]) then
    local limit = tonumber(redis.call('HGET', g, 'limit') or '0')
    local claimed = tonumber(redis.call('HGET', g, 'claimed') or '0')
    if claimed < limit then
      claimed = redis.call('HINCRBY', g, 'claimed', 1)
      gift, rank, promo = true, claimed, id
      break
    end
  end
end
local body = {gift = gift, rank = rank, stock_left = stock}
local rec = {user = ARGV[2], sku = ARGV[3], qty = qty, body = body, promo = promo, ts = ARGV[6]}
local enc = cjson.encode(rec)
redis.call('HSET', KEYS[3], ARGV[1], enc)
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
local version = redis.call('INCR', KEYS[4])
return {'ok', enc, version}
"""


class RedisRoomStore:
    """Seeds/loads rooms and applies remote changes to the local :class:`Room` copies."""

    def __init__(self, redis: aioredis.Redis, order_retention_s: float = 0.0):
        self.redis = redis
        self.order_retention_s = order_retention_s  # 0: order ids are kept for ever
        self._order = redis.register_script(ORDER_LUA)

    async def seed_or_load(self, room: Room) -> bool:
        """Seed ``room`` into Redis if absent (returns True), else load Redis into it."""
        rid = room.id
        kb_json = json.dumps(room.knowledge.to_dict(), ensure_ascii=False)
        created = await self.redis.set(k(rid, "kb"), kb_json, nx=True)
        if created:
            await self._write_counters(room)
            return True
        await self.refresh(room)
        return False

    async def _write_counters(self, room: Room) -> None:
        rid, kb = room.id, room.knowledge
        p = self.redis.pipeline(transaction=True)
        p.delete(k(rid, "stock"), k(rid, "gifts"))
        if kb.products:
            p.hset(k(rid, "stock"), mapping={x.sku: x.stock for x in kb.products})
        for promo in kb.promotions:
            if promo.kind == "first_n_gift":
                p.rpush(k(rid, "gifts"), promo.id)
                p.hset(k(rid, f"gift:{promo.id}"), mapping={
                    "limit": promo.limit or 0, "claimed": promo.claimed or 0,
                    "sku": promo.sku or "", "active": "1" if promo.active else "0"})
        await p.execute()

    async def refresh(self, room: Room) -> None:
        """Load the authoritative state from Redis into the local copy."""
        rid = room.id
        version = int(await self.redis.get(k(rid, "version")) or 0)
        raw = await self.redis.get(k(rid, "kb"))
        if raw:
            fresh = Knowledge.from_dict(json.loads(raw))
            room.knowledge.products = fresh.products
            room.knowledge.promotions = fresh.promotions
            room.knowledge.on_screen = fresh.on_screen
        stock = await self.redis.hgetall(k(rid, "stock"))
        for sku, v in stock.items():
            prod = room.knowledge.product(sku.decode() if isinstance(sku, bytes) else sku)
            if prod:
                prod.stock = int(v)
        for promo in room.knowledge.promotions:
            if promo.kind == "first_n_gift":
                g = await self.redis.hgetall(k(rid, f"gift:{promo.id}"))
                if g:
                    promo.claimed = int(g.get(b"claimed", promo.claimed or 0))
                    promo.limit = int(g.get(b"limit", promo.limit or 0))
                    promo.active = g.get(b"active", b"1") == b"1"
        room.redis_version = max(getattr(room, "redis_version", 0), version)

    async def save(self, room: Room, change: dict[str, Any]) -> None:
        """After a host edit: write the knowledge JSON and only the counter the host set.

        Live counters (stock, gifts claimed) move with orders on every node; rewriting them
        from this node's copy (which may lag) could hand out more gifts than the limit. So
        a stock edit sets just that sku's stock, a promotion edit sets limit/sku/active and
        never ``claimed`` (only a new promotion gets its initial ``claimed``)."""
        rid = room.id
        listed = {_s(x) for x in await self.redis.lrange(k(rid, "gifts"), 0, -1)}
        p = self.redis.pipeline(transaction=True)
        p.set(k(rid, "kb"), json.dumps(room.knowledge.to_dict(), ensure_ascii=False))
        kind = change.get("kind")
        if kind == "stock":
            p.hset(k(rid, "stock"), change["sku"], change["stock"])
        elif kind == "promotion":
            promo = room.knowledge.promotion(change["promotion"]["id"])
            if promo is not None and promo.kind == "first_n_gift":
                g = k(rid, f"gift:{promo.id}")
                p.hset(g, mapping={"limit": promo.limit or 0, "sku": promo.sku or "",
                                   "active": "1" if promo.active else "0"})
                p.hsetnx(g, "claimed", promo.claimed or 0)
                if promo.id not in listed:  # keep the KB order of existing promotions
                    p.rpush(k(rid, "gifts"), promo.id)
        p.incr(k(rid, "version"))
        await p.execute()

    async def place(self, room: Room, order: Order) -> OrderOutcome:
        rid = room.id
        now = time.time()
        cutoff = repr(now - self.order_retention_s) if self.order_retention_s > 0 else ""
        res = await self._order(
            keys=[k(rid, "stock"), k(rid, "gifts"), k(rid, "orders"), k(rid, "version"),
                  k(rid, "orders_ts")],
            args=[order.order_id, order.user, order.sku, order.qty, k(rid, "gift:"), now,
                  cutoff])
        status, payload = res[0], res[1]
        version = int(res[2]) if len(res) > 2 else None
        status = status.decode() if isinstance(status, bytes) else status
        payload = payload.decode() if isinstance(payload, bytes) else payload
        if status == "no_sku":
            from signaling import ErrorCode, ProtocolError
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown sku {order.sku!r}")
        if status == "out_of_stock":
            return OrderOutcome(409, {"error": "out_of_stock",
                                      "message": f"only {payload} of {order.sku} left",
                                      "stock_left": int(payload)})
        rec = json.loads(payload)
        if status == "conflict":
            return OrderOutcome(409, {"error": "conflict",
                                      "message": f"order {order.order_id!r} was already placed "
                                                 f"with different sku, qty or user"})
        body = _body(rec["body"])
        if status == "repeat":
            return OrderOutcome(200, body, repeated=True)
        self.apply_order(room, order.sku, body["stock_left"], rec.get("promo"), body["rank"],
                         version)
        change = {"kind": "order", "sku": order.sku, "qty": order.qty,
                  "stock": body["stock_left"], "gift_promotion": rec.get("promo"),
                  "rank": body["rank"], "ts": time.time(), "redis_version": version}
        return OrderOutcome(200, body, change=change)

    @staticmethod
    def apply_order(room: Room, sku: str, stock: int, promo_id: str | None,
                    rank: int | None, version: int | None = None) -> None:
        """Apply an order's outcome; a stale one (older Redis version) never moves stock back."""
        prod = room.knowledge.product(sku)
        known = getattr(room, "redis_version", 0)
        if prod is not None and (version is None or version > known):
            prod.stock = stock
        if version is not None and version > known:
            room.redis_version = version
        if promo_id and rank is not None:
            promo = room.knowledge.promotion(promo_id)
            if promo is not None and (promo.claimed or 0) < rank:
                promo.claimed = rank
        room.version += 1


def _body(b: dict[str, Any]) -> dict[str, Any]:
    rank = b.get("rank")
    return {"gift": bool(b.get("gift")), "rank": None if rank in (None, False) else int(rank),
            "stock_left": int(b["stock_left"])}


class RoomSync:
    """Follows room changes made on other nodes (pub/sub + periodic refresh)."""

    def __init__(self, store: RedisRoomStore, rooms, bus, node_id: str, interval_s: float = 2.0):
        self.store = store
        self.rooms = rooms
        self.bus = bus
        self.node_id = node_id
        self.interval_s = interval_s
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        for room in self.rooms:
            await self.store.seed_or_load(room)
            self.bus.subscribe(f"roomsync:{room.id}", lambda p, r=room: self._on_change(r, p))
        self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()

    async def announce(self, room: Room, change: dict[str, Any]) -> None:
        await self.bus.publish(f"roomsync:{room.id}", {"node": self.node_id, "change": change})

    def _on_change(self, room: Room, payload: dict) -> None:
        if payload.get("node") == self.node_id:
            return
        ch = payload.get("change") or {}
        if ch.get("kind") == "order":
            self.store.apply_order(room, ch["sku"], ch["stock"], ch.get("gift_promotion"),
                                   ch.get("rank"), ch.get("redis_version"))
        else:
            asyncio.get_running_loop().create_task(self.store.refresh(room))

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            for room in self.rooms:
                try:
                    await self.store.refresh(room)
                except Exception as e:
                    log.debug("room refresh failed: %s", e)
