"""Shared by the archiver tests and ``benchmarks/archiver.py``: appending change lists to the
Redis streams with the gateway's own commit script (so the entries are exactly what nodes
write: a numbered ``s``, the wire arrays in ``c``), and making typed change records."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from gateway.support.changes import (
    ConversationOpened,
    GiftClaimed,
    MessageAppended,
    OrderPlaced,
    StockSet,
    list_to_json,
)
from gateway.support.conversation import Author
from gateway.support.redis_commit import COMMIT

SUPPORT_PREFIX = "ld:{ld}:"


def room_prefix(room: str) -> str:
    return f"ld:{{r:{room}}}:"


class Appender:
    """Appends change lists as one node's commit would (``redis_commit.COMMIT``: bump the
    counter, append ``{c, s}`` to ``<prefix>ops``, capped by ``MAXLEN ~``)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._commit = redis.register_script(COMMIT)

    async def append(self, changes, prefix: str = SUPPORT_PREFIX) -> str:
        res = await self._commit(args=[prefix, "[]", "[]", list_to_json(list(changes)), ""])
        assert res[0] == b"ok", res
        return res[1].decode()


def opened(cid: str, room: str = "r1", viewer: str | None = None, at: float = 1_780_000_000.0):
    return ConversationOpened(cid, room, viewer or f"v-{cid}", "Vee", at)


def message(cid: str, n: int, text: str | None = None, at: float = 1_780_000_000.0):
    return MessageAppended(cid, n, Author("viewer", f"v-{cid}", "Vee"),
                           text if text is not None else f"{cid} message {n}", at + n)


def order(room: str, order_id: str, stock_left: int, rank: int | None = None,
          at: float = 1_780_000_000.0):
    changes = [StockSet(room, "S1", stock_left)]
    if rank is not None:
        changes.append(GiftClaimed(room, "G1", rank))
    changes.append(OrderPlaced(room, order_id, f"buyer-{order_id}", "S1", 1, stock_left,
                               "G1" if rank is not None else None, rank, at))
    return changes


def decode(fields) -> list:
    return json.loads(fields[b"c"])
