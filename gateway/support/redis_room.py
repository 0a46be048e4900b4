"""Room state in Redis: seeding, the atomic order step, and cross-node sync.

Layout (all keys of one room share the hash tag ``{r:<room>}`` so every script runs on one
Redis Cluster slot):

* ``ld:{r:R}:kb``       the room's knowledge JSON (authoritative once seeded)
* ``ld:{r:R}:stock``    hash sku → stock (the live counter; wins over the JSON)
* ``ld:{r:R}:gifts``    list of first_n_gift promotion ids, in KB order
* ``ld:{r:R}:gift:<id>`` hash limit, claimed, sku, active
* ``ld:{r:R}:orders``   hash order_id → JSON {user, sku, qty, body, promo, ts} (repeats)
* ``ld:{r:R}:orders_ts`` sorted set order_id → when placed (order retention)
* ``ld:{r:R}:version``  counter bumped by every change
* ``ld:{r:R}:kbv``      counter bumped by every host edit (what orders read beyond counters)
* ``ld:{r:R}:ops``, ``ld:{r:R}:opseq`` with an archiver only: the room's change stream (each
  accepted order's records, numbered ``s`` like the support stream), read by
  ``gateway/archiver.py``

An order is decided by ``orders.place_order`` against this node's copy of the room (the same
rule the memory ledger runs) and committed with the generic guarded script
(``redis_commit.COMMIT``): only if the order id still has no record, no host edit came
since the copy was loaded (``kbv``), and the sku's stock and the gifts the rule looked at
are still what the copy holds; otherwise the commit's refusal carries Redis's values, the
copy takes them and the order is decided again (a host edit: the copy is reloaded).

A node seeds a room only when ``kb`` is absent; afterwards it *loads* from Redis. Every change
is published as ``roomsync:<room>`` so the other nodes update their in-memory copy (which is
what their bot reads); a periodic refresh repairs anything pub/sub dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from signaling import ErrorCode, ProtocolError, tracing

from .changes import (
    Change,
    GiftClaimed,
    GiftQuotaSet,
    OrderPlaced,
    RoomChange,
    StockSet,
    list_to_json,
)
from .knowledge import Knowledge
from .orders import (
    Order,
    OrderOutcome,
    Placement,
    PriorOrder,
    apply_room_change,
    place_order,
)
from .redis_commit import COMMIT
from .room import Room

log = logging.getLogger(__name__)


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def k(room: str, name: str) -> str:
    return f"ld:{{r:{room}}}:{name}"


class RedisRoomStore:
    """Seeds/loads rooms and applies remote changes to the local :class:`Room` copies."""

    def __init__(self, redis: aioredis.Redis, order_retention_s: float = 0.0,
                 change_log: bool = False):
        self.redis = redis
        self.order_retention_s = order_retention_s  # 0: order ids are kept for ever
        # with an archiver (docs/storage.md): each accepted order's change records are also
        # appended to the room's stream ``ld:{r:R}:ops``, in the same script as the order
        self.change_log = change_log
        self._commit = redis.register_script(COMMIT)
        self._locks: dict[str, asyncio.Lock] = {}
        self.conflicts = 0  # orders decided again because this node's copy was behind

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

    async def repopulate(self, room: Room, stock: dict[str, int], gifts: dict[str, int],
                         orders: list[tuple[Order, dict[str, Any], float]],
                         edit: Callable[[Room], None] | None = None) -> bool:
        """Put a room back into a Redis that lost its data, with the counters and order ids
        the archive holds (``gateway/restore.py``; ``edit`` applies the rest of it, a host's
        gift quotas, to this node's copy first); False (nothing written) if Redis holds
        the room already (a node seeded it since, or Redis never lost it).

        The counters are applied to this node's copy as the room change records that set
        them (as a single node's restore does) and written from it, like a seed; the
        order ids with their answers and times, so a replayed order is a repeat. ``version``
        and ``kbv`` are bumped: orders other nodes decided on their older copies are refused
        and decided again on this one."""
        rid = room.id
        kb_json = json.dumps(room.knowledge.to_dict(), ensure_ascii=False)
        if not await self.redis.set(k(rid, "kb"), kb_json, nx=True):
            return False
        if edit is not None:  # what else the archive holds of the room (a host's quotas)
            edit(room)
        for sku, n in stock.items():
            apply_room_change(room.knowledge, StockSet(rid, sku, int(n)))
        for promo, n in gifts.items():
            apply_room_change(room.knowledge, GiftClaimed(rid, promo, int(n)))
        await self._write_counters(room)
        p = self.redis.pipeline(transaction=True)
        p.set(k(rid, "kb"), json.dumps(room.knowledge.to_dict(), ensure_ascii=False))
        for order, body, at in orders:
            rec = {"user": order.user, "sku": order.sku, "qty": order.qty, "body": body,
                   "promo": None, "ts": repr(at)}
            p.hset(k(rid, "orders"), order.order_id, json.dumps(rec, ensure_ascii=False))
            p.zadd(k(rid, "orders_ts"), {order.order_id: at})
        p.incr(k(rid, "version"))
        p.incr(k(rid, "kbv"))
        await p.execute()
        await self.refresh(room, exact=True)
        room.version += 1
        return True

    async def erase_viewer(self, room_ids: list[str], viewer: str) -> int:
        """Forget ``viewer``'s order ids in these rooms (erasure: the store erases the
        viewer's orders too); returns how many. The stock they took stays taken."""
        n = 0
        for rid in room_ids:
            gone = []
            async for oid, raw in self.redis.hscan_iter(k(rid, "orders")):
                try:
                    if json.loads(raw).get("user") == viewer:
                        gone.append(oid)
                except ValueError:
                    continue
            if gone:
                p = self.redis.pipeline(transaction=True)
                p.hdel(k(rid, "orders"), *gone)
                p.zrem(k(rid, "orders_ts"), *gone)
                await p.execute()
                n += len(gone)
        return n

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

    async def refresh(self, room: Room, exact: bool = False) -> None:
        """Load the authoritative state from Redis into the local copy. ``exact``: take
        Redis's version even if it is lower than the copy's (Redis lost data); otherwise a
        refresh never moves the version back (a pub/sub update may be newer)."""
        rid = room.id
        version = int(await self.redis.get(k(rid, "version")) or 0)
        kbv = int(await self.redis.get(k(rid, "kbv")) or 0)
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
        room.redis_version = version if exact else max(room.redis_version, version)
        room.redis_kb_version = kbv if exact else max(room.redis_kb_version, kbv)

    async def save(self, room: Room, change: dict[str, Any]) -> None:
        """After a host edit: write the knowledge JSON and only the counter the host set.

        Live counters (stock, gifts claimed) move with orders on every node; rewriting them
        from this node's copy (which may lag) could hand out more gifts than the limit. So
        a stock edit sets just that sku's stock, a promotion edit sets limit/sku/active and
        never ``claimed`` (only a new promotion gets its initial ``claimed``).

        With an archiver (``change_log``), the edit's room change records (``StockSet``;
        ``GiftQuotaSet``, and a new promotion's ``GiftClaimed``) are appended to the room's
        stream by the same script, so the store has the edit without waiting for an order."""
        rid = room.id
        listed = {_s(x) for x in await self.redis.lrange(k(rid, "gifts"), 0, -1)}
        w: list[list[Any]] = [["SET", k(rid, "kb"),
                               json.dumps(room.knowledge.to_dict(), ensure_ascii=False)]]
        logged: list[Change] = []  # with an archiver: what the store is to record
        kind = change.get("kind")
        if kind == "stock":
            w.append(["HSET", k(rid, "stock"), change["sku"], str(change["stock"])])
            logged.append(StockSet(rid, change["sku"], int(change["stock"])))
        elif kind == "promotion":
            promo = room.knowledge.promotion(change["promotion"]["id"])
            if promo is not None and promo.kind == "first_n_gift":
                g = k(rid, f"gift:{promo.id}")
                w += [["HSET", g, "limit", str(promo.limit or 0), "sku", promo.sku or "",
                       "active", "1" if promo.active else "0"],
                      ["HSETNX", g, "claimed", str(promo.claimed or 0)]]
                if promo.id not in listed:  # keep the KB order of existing promotions
                    w.append(["RPUSH", k(rid, "gifts"), promo.id])
                logged.append(GiftQuotaSet(rid, promo.id, int(promo.limit or 0),
                                           bool(promo.active)))
                if change.get("created"):
                    logged.append(GiftClaimed(rid, promo.id, int(promo.claimed or 0)))
        w += [["INCR", k(rid, "version")],
              ["INCR", k(rid, "kbv")]]  # orders decided on a copy from before this edit: refused
        log_it = self.change_log and bool(logged)
        await self._commit(args=[k(rid, "") if log_it else "", "[]",
                                 json.dumps(w, ensure_ascii=False),
                                 list_to_json(logged) if log_it else "", ""])

    DEADLINE_S = 10.0  # an order still not committed after this long: unavailable

    async def place(self, room: Room, order: Order) -> OrderOutcome:
        """Run ``orders.place_order`` against this node's copy of the room and commit its
        changes if Redis still holds what it read (else take Redis's values, returned with
        the refusal, and decide again). One order at a time per room on a node: orders from
        the same node then never overtake each other."""
        lock = self._locks.setdefault(room.id, asyncio.Lock())
        async with lock:
            return await self._place(room, order)

    async def _place(self, room: Room, order: Order) -> OrderOutcome:
        rid = room.id
        orders = k(rid, "orders")
        seen = ""  # the order id's record as Redis holds it ('' = none)
        deadline = time.monotonic() + self.DEADLINE_S
        attempt = 0
        while attempt == 0 or time.monotonic() < deadline:
            attempt += 1
            now = time.time()
            cutoff = now - self.order_retention_s if self.order_retention_s > 0 else None
            prior = _prior(order.order_id, seen, cutoff)
            if prior is not None:  # a repeat or a conflict, as Redis holds it
                return place_order(room.knowledge, order, prior, now).outcome
            try:
                placed: Placement | None = place_order(room.knowledge, order, None, now)
            except ProtocolError:
                placed = None  # an unknown sku: refused once the copy is known to be current
            kb = room.knowledge
            gifts = [p for p in kb.promotions if p.kind == "first_n_gift"
                     and p.sku in (None, "", order.sku)]
            guards: list[list[Any]] = [
                ["H", orders, [order.order_id], [seen]],
                ["G", k(rid, "kbv"), str(room.redis_kb_version) if room.redis_kb_version else ""]]
            reads: list[list[Any]] = [["HGET", orders, order.order_id], ["GET", k(rid, "kbv")],
                                      ["GET", k(rid, "version")]]
            prod = kb.product(order.sku)
            if prod is not None:
                guards.append(["H", k(rid, "stock"), [order.sku], [str(prod.stock)]])
                reads.append(["HGET", k(rid, "stock"), order.sku])
                for p in gifts:  # what the rule read of each gift, up to the one it chose
                    guards.append(["H", k(rid, f"gift:{p.id}"), ["claimed", "limit", "active"],
                                   [str(p.claimed or 0), str(p.limit or 0),
                                    "1" if p.active else "0"]])
                    reads.append(["HMGET", k(rid, f"gift:{p.id}"), "claimed", "limit", "active"])
                    if placed is not None and placed.outcome.body.get("gift") \
                            and (placed.outcome.change or {}).get("gift_promotion") == p.id:
                        break
            writes: list[list[Any]] = []
            if placed is not None and placed.changes:
                writes = self._writes(rid, placed.changes, cutoff)
            logged = self.change_log and bool(writes) and placed is not None
            with tracing.span("redis.commit", attributes={"livedesk.attempt": attempt,
                                                          "livedesk.room": rid}):
                res = await self._commit(args=[
                    k(rid, "") if logged else "", json.dumps(guards, ensure_ascii=False),
                    json.dumps(writes, ensure_ascii=False) if writes else "",
                    list_to_json(placed.changes) if logged and placed is not None else "",
                    json.dumps(reads, ensure_ascii=False)])
            if _s(res[0]) == "ok":
                if placed is None:
                    raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown sku {order.sku!r}")
                if not placed.changes:
                    return placed.outcome  # out of stock, on a current copy
                version = int(res[3])
                for ch in placed.changes:
                    apply_room_change(room.knowledge, ch)
                room.redis_version = max(room.redis_version, version)
                room.version += 1
                change = dict(placed.outcome.change or {}, redis_version=version)
                return OrderOutcome(placed.outcome.status, placed.outcome.body, change=change)
            self.conflicts += 1
            fresh = res[4:]
            seen = _s(fresh[0]) if fresh[0] is not None else ""
            kbv = int(fresh[1] or 0)
            if kbv != room.redis_kb_version:  # a host edit: reload the whole room
                await self.refresh(room, exact=True)
                continue
            room.redis_version = max(room.redis_version, int(fresh[2] or 0))
            if prod is not None:
                if fresh[3] is not None:
                    prod.stock = int(fresh[3])
                for p, g in zip(gifts, fresh[4:], strict=False):
                    claimed, limit, active = g
                    if claimed is not None:
                        p.claimed = int(claimed)
                    if limit is not None:
                        p.limit = int(limit)
                    if active is not None:
                        p.active = active == b"1"
        raise ProtocolError(ErrorCode.UNAVAILABLE, "room state store is busy; retry")

    @staticmethod
    def _writes(rid: str, changes: tuple[RoomChange, ...], cutoff: float | None) -> list[list[Any]]:
        """The Redis writes that store an accepted order's changes (storage only)."""
        w: list[list[Any]] = []
        if cutoff is not None:  # retention: each order forgets up to 20 expired order ids
            w.append(["ZTRIM", k(rid, "orders_ts"), k(rid, "orders"), repr(cutoff), "20"])
        for ch in changes:
            match ch:
                case StockSet():
                    w.append(["HSET", k(rid, "stock"), ch.sku, str(ch.stock)])
                case GiftClaimed():
                    w.append(["HSET", k(rid, f"gift:{ch.promotion}"), "claimed", str(ch.claimed)])
                case OrderPlaced():
                    rec = {"user": ch.user, "sku": ch.sku, "qty": ch.qty, "body": ch.body(),
                           "promo": ch.gift_promotion, "ts": repr(ch.ts)}
                    w += [["HSET", k(rid, "orders"), ch.order_id,
                           json.dumps(rec, ensure_ascii=False)],
                          ["ZADD", k(rid, "orders_ts"), repr(ch.ts), ch.order_id]]
        w.append(["INCR", k(rid, "version")])
        return w

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


def _prior(order_id: str, raw: str, cutoff: float | None) -> PriorOrder | None:
    """The order id's earlier record (``raw``, as Redis holds it), unless it is older than
    the retention ``cutoff`` (then the id is free again)."""
    if not raw:
        return None
    rec = json.loads(raw)
    if cutoff is not None and float(rec.get("ts") or 0) <= cutoff:
        return None
    return PriorOrder(Order(order_id, rec["user"], rec["sku"], int(rec["qty"])),
                      _body(rec["body"]))


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
