"""Which node hosts which call, and what happens to calls when a node dies.

A call's peer connections live on one node (media can't move between processes). With
several nodes the :class:`RedisCallDirectory` records ``call → node`` (plus the users to tell
if that node vanishes), picks the node for a new call by load, and lets any node find where
to forward a call's signaling. One node (whoever wins a short lock) ends the calls of a dead
node with reason ``node_lost``.

Layout, hash tag ``{calls}``: ``ld:{calls}:call:<id>`` JSON {node, conversation, users};
``ld:{calls}:node:<node>`` set of call ids; ``ld:{calls}:lost:<node>`` the clean-up lock.
:class:`LocalCallDirectory` is the one-process version (every call is local).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)

K = "ld:{calls}:"


class CallDirectory(Protocol):
    """Where calls live; the media service is given one when it is built."""

    async def pick_node(self, local: str) -> str: ...

    async def record(self, call_id: str, node: str, conversation: str,
                     users: list[str]) -> None: ...

    async def lookup(self, call_id: str) -> dict | None: ...

    async def remove(self, call_id: str, node: str) -> None: ...

    async def dead_nodes_with_calls(self) -> list[str]: ...

    async def claim_dead(self, node: str) -> list[dict]: ...


class LocalCallDirectory:
    async def pick_node(self, local: str) -> str:
        return local

    async def record(self, call_id: str, node: str, conversation: str, users: list[str]) -> None:
        return None

    async def lookup(self, call_id: str) -> dict | None:
        return None

    async def remove(self, call_id: str, node: str) -> None:
        return None

    async def dead_nodes_with_calls(self) -> list[str]:
        return []

    async def claim_dead(self, node: str) -> list[dict]:
        return []


class RedisCallDirectory:
    def __init__(self, redis, presence) -> None:
        self.redis = redis
        self.presence = presence

    async def pick_node(self, local: str) -> str:
        """The least-loaded live node (calls, then sessions); this node wins ties."""
        try:
            nodes = await self.presence.nodes()
        except Exception:
            return local
        nodes = {n: i for n, i in nodes.items() if not i.get("draining")} or nodes
        if not nodes:
            return local

        def load(item: tuple[str, dict[str, Any]]):
            nid, info = item
            return (int(info.get("calls", 0)), int(info.get("sessions", 0)) // 50, nid != local)
        return min(nodes.items(), key=load)[0]

    async def record(self, call_id: str, node: str, conversation: str, users: list[str]) -> None:
        p = self.redis.pipeline(transaction=True)
        p.set(K + f"call:{call_id}", json.dumps({"node": node, "conversation": conversation,
                                                  "users": users}))
        p.sadd(K + f"node:{node}", call_id)
        p.sadd(K + "nodes", node)
        await p.execute()

    async def lookup(self, call_id: str) -> dict | None:
        raw = await self.redis.get(K + f"call:{call_id}")
        return json.loads(raw) if raw else None

    async def remove(self, call_id: str, node: str) -> None:
        p = self.redis.pipeline(transaction=True)
        p.delete(K + f"call:{call_id}")
        p.srem(K + f"node:{node}", call_id)
        await p.execute()

    async def dead_nodes_with_calls(self) -> list[str]:
        nodes = [n.decode() for n in await self.redis.smembers(K + "nodes")]
        dead = []
        for n in nodes:
            if not await self.presence.node_alive(n):
                dead.append(n)
        return dead

    async def claim_dead(self, node: str) -> list[dict]:
        """Take over the clean-up of a dead node's calls; [] if another node has it."""
        if not await self.redis.set(K + f"lost:{node}", "1", nx=True, ex=60):
            return []
        ids = [i.decode() for i in await self.redis.smembers(K + f"node:{node}")]
        out = []
        for cid in ids:
            rec = await self.lookup(cid)
            if rec:
                rec["call"] = cid
                out.append(rec)
            await self.redis.delete(K + f"call:{cid}")
        await self.redis.delete(K + f"node:{node}")
        await self.redis.srem(K + "nodes", node)
        await self.redis.delete(K + f"lost:{node}")
        return out
