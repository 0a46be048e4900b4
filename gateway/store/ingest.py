"""The one place that turns what the support plane decided into store writes.

The replicas apply typed change records (``gateway/support/changes.py``), published after
each step as ``ChangesApplied``; rooms report accepted orders as ``OrderPlaced``
(``gateway/durable.py`` subscribes this feed to both). :func:`writes_from_changes` reads
each record through its wire form (``to_wire()``: the arrays the Redis change log carries,
``["conv", {...}]``, ``["set", cid, {...}]``, ``["msg", rec, origin]``, ``["q_add", cid,
since, front]``, ``["q_del", cid]``, ``["attach", cid, agent, at]``, ``["release", cid,
agent]``, ``["rec", ns, key, value]``, ``["rec_del", ns, key]``, ``["agent", {...}]``), so
the store depends on that stable format and not on the support plane's classes; no rule is
decided here, only copied.

:class:`StoreFeed` sends each applied change list to the store in order (group commit). For
now a step does not wait for it (making a step durable before it is acknowledged is the next
step; ``Store.apply`` already returns only once a batch is committed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from .records import (
    AgentSettings,
    Attached,
    ConversationOpened,
    ConversationSet,
    Dequeued,
    MessageAdded,
    OrderRecorded,
    Queued,
    RecordExpired,
    RecordPut,
    Released,
    RoomCounters,
    Write,
)
from .store import Store

log = logging.getLogger(__name__)

# Workspace record namespaces kept under the audit retention (docs/storage.md#retention)
AUDIT_NAMESPACES = frozenset({"audit", "approval", "granted"})
# namespaces whose key is, or starts with, the viewer it is about ("<viewer>|<day>")
_VIEWER_KEYED = {"browse": False, "authority_day": True}
# namespaces whose key is the conversation it belongs to
_CONVERSATION_KEYED = frozenset({"csat", "csat_req", "outcome"})
# "<agent>|<conversation>": an agent's authority used on one conversation
_AGENT_CONVERSATION_KEYED = frozenset({"authority"})


def writes_from_changes(changes: list[Any], now: float | None = None) -> list[Write]:
    """The store writes for one applied change list (unknown kinds are skipped with a log
    line, so a new change kind never stops the feed)."""
    now = time.time() if now is None else now
    out: list[Write] = []
    for change in changes:
        ch = change.to_wire() if hasattr(change, "to_wire") else change
        kind = ch[0]
        if kind == "conv":
            d = ch[1]
            out.append(ConversationOpened(d["cid"], d["room"], d["viewer"],
                                          d.get("viewer_name") or "", float(d["created_at"])))
        elif kind == "set":
            out.append(ConversationSet(ch[1], tuple(ch[2].items()), now))
        elif kind == "msg":
            r = ch[1]
            a = r["author"]
            out.append(MessageAdded(r["cid"], int(r["n"]), a["role"], a["user"],
                                    a.get("name") or "", r["text"], r.get("cmid") or "",
                                    r.get("kind") or "", r.get("meta") or {}, float(r["ts"])))
        elif kind == "q_add":
            out.append(Queued(ch[1], float(ch[2]), bool(ch[3])))
        elif kind == "q_del":
            out.append(Dequeued(ch[1]))
        elif kind == "attach":
            out.append(Attached(ch[1], ch[2], float(ch[3])))
        elif kind == "release":
            if ch[2]:
                out.append(Released(ch[1], ch[2]))
        elif kind == "rec":
            value = json.loads(ch[3]) if isinstance(ch[3], str) else ch[3]
            out.append(record_put(ch[1], ch[2], value, now))
        elif kind == "rec_del":
            out.append(RecordExpired(ch[1], ch[2]))
        elif kind == "agent":
            d = ch[1]
            out.append(AgentSettings(d["user"], d.get("name") or d["user"], d["status"],
                                     int(d["capacity"]), bool(d.get("paused")),
                                     float(d["since"]), float(d.get("last_assigned") or 0)))
        else:
            log.warning("store feed: change kind %r not recorded", kind)
    return out


def record_put(namespace: str, key: str, value: Any, now: float) -> RecordPut:
    """A workspace record, with whom it is about found from its namespace, key and fields
    (``viewer`` / ``user``; ``conversation`` / ``cid``)."""
    viewer = conversation = None
    if namespace in _VIEWER_KEYED:
        viewer = key.split("|", 1)[0] if _VIEWER_KEYED[namespace] else key
    if namespace in _CONVERSATION_KEYED:
        conversation = key
    if namespace in _AGENT_CONVERSATION_KEYED and "|" in key:
        conversation = key.split("|", 1)[1]
    if isinstance(value, dict):
        v = value.get("viewer")
        if viewer is None and isinstance(v, str):
            viewer = v
        if viewer is None and namespace == "conversion" and isinstance(value.get("user"), str):
            viewer = value["user"]
        c = value.get("conversation") or value.get("cid")
        if conversation is None and isinstance(c, str):
            conversation = c
    return RecordPut(namespace, key, value, now, viewer=viewer, conversation=conversation,
                     audit=namespace in AUDIT_NAMESPACES)


def writes_from_order(room: Any, order: Any, outcome: Any,
                      now: float | None = None) -> list[Write]:
    """An accepted order (``RoomService.order_listeners``): its id (the replay check) and the
    room's counters after it."""
    now = time.time() if now is None else now
    if getattr(outcome, "status", 0) != 200 or getattr(outcome, "repeated", False):
        return []
    counters = room.counters()
    return [OrderRecorded(room.id, order.order_id, order.user, order.sku, int(order.qty),
                          dict(outcome.body), now),
            RoomCounters(room.id, tuple((k, int(v)) for k, v in counters["stock"].items()),
                         tuple((k, int(g.get("claimed") or 0))
                               for k, g in counters["gifts"].items()), now)]


class StoreFeed:
    """Feeds the store from the replica's applied changes and the rooms' orders, in order.

    A failed write is logged and counted (``failures``); the gateway goes on serving from
    memory, as it did before there was a store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.failures = 0
        self.pending: set[asyncio.Future] = set()

    def on_changes(self, changes: list[Any]) -> None:
        self._submit(writes_from_changes(changes))

    def on_order(self, room: Any, order: Any, outcome: Any) -> None:
        self._submit(writes_from_order(room, order, outcome))

    def _submit(self, batch: list[Write]) -> None:
        if not batch:
            return
        try:
            fut = self.store.submit(batch)
        except Exception:
            self.failures += 1
            log.exception("store feed: could not submit")
            return
        self.pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future) -> None:
        self.pending.discard(fut)
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self.failures += 1
            log.error("store feed: a batch was not recorded: %s", fut.exception())

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (tests, shutdown)."""
        if self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)
