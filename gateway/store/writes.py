"""Each write record → the statements that record it. Idempotent: every statement is an
upsert with absolute values or an insert that ignores a row already there."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .database import Stmt
from .dialect import Dialect
from .records import (
    CONVERSATION_COLUMNS,
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


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def statements(batch: Sequence[Write], d: Dialect) -> list[Stmt]:
    """The statements for ``batch``, in its order; consecutive messages become one
    ``executemany`` (a bulk load is mostly messages)."""
    out: list[Stmt] = []
    rows: list[tuple] = []

    def flush() -> None:
        if rows:
            out.append(Stmt(d.message_insert(), list(rows), many=True))
            rows.clear()

    for w in batch:
        if isinstance(w, MessageAdded):
            rows.append((w.conversation, w.n, w.role, w.user, w.name, w.text, w.cmid, w.kind,
                         dumps(w.meta), w.ts, d.terms_param(w.text), w.conversation))
            continue
        flush()
        out.extend(_one(w, d))
    flush()
    return out


def _one(w: Write, d: Dialect) -> list[Stmt]:
    if isinstance(w, ConversationOpened):
        return [Stmt("INSERT INTO conversations (id, room, viewer, viewer_name, opened_at, "
                     "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                     (w.conversation, w.room, w.viewer, w.viewer_name, w.opened_at,
                      w.opened_at))]
    if isinstance(w, ConversationSet):
        cols = [(k, v) for k, v in w.fields if k in CONVERSATION_COLUMNS]
        extra = {k: v for k, v in w.fields if k not in CONVERSATION_COLUMNS}
        sets = [f"{k} = ?" for k, _ in cols] + ["updated_at = ?"]
        args: list[Any] = [_column_value(k, v) for k, v in cols] + [w.at]
        if extra:
            sets.append(f"extra = {d.json_merge('extra')}")
            args.append(dumps(extra))
        return [Stmt(f"UPDATE conversations SET {', '.join(sets)} WHERE id = ?",
                     (*args, w.conversation))]
    if isinstance(w, Queued):
        edge = "MIN(pos) - 1" if w.front else "MAX(pos) + 1"
        return [Stmt(f"INSERT INTO queue (conversation, since, pos) VALUES (?, ?, "
                     f"(SELECT COALESCE({edge}, 0) FROM queue)) ON CONFLICT (conversation) "
                     f"DO UPDATE SET since = excluded.since, pos = excluded.pos",
                     (w.conversation, w.since))]
    if isinstance(w, Dequeued):
        return [Stmt("DELETE FROM queue WHERE conversation = ?", (w.conversation,))]
    if isinstance(w, Attached):
        return [Stmt("INSERT INTO assignments (conversation, agent, at) VALUES (?, ?, ?) "
                     "ON CONFLICT (conversation) DO UPDATE SET agent = excluded.agent, "
                     "at = excluded.at", (w.conversation, w.agent, w.at)),
                Stmt("INSERT INTO handled (conversation, agent, at) VALUES (?, ?, ?) "
                     "ON CONFLICT (conversation, agent) DO NOTHING",
                     (w.conversation, w.agent, w.at))]
    if isinstance(w, Released):
        return [Stmt("DELETE FROM assignments WHERE conversation = ? AND agent = ?",
                     (w.conversation, w.agent))]
    if isinstance(w, AgentSettings):
        return [Stmt('INSERT INTO agents ("user", name, status, capacity, paused, since, '
                     'last_assigned) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT ("user") DO '
                     'UPDATE SET name = excluded.name, status = excluded.status, '
                     'capacity = excluded.capacity, paused = excluded.paused, '
                     'since = excluded.since, last_assigned = excluded.last_assigned',
                     (w.user, w.name, w.status, w.capacity, int(w.paused), w.since,
                      w.last_assigned))]
    if isinstance(w, RecordPut):
        return [Stmt("INSERT INTO records (namespace, key, value, viewer, conversation, audit, "
                     "live, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?) "
                     "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                     "viewer = excluded.viewer, conversation = excluded.conversation, "
                     "audit = excluded.audit, live = 1, updated_at = excluded.updated_at",
                     (w.namespace, w.key, dumps(w.value), w.viewer, w.conversation,
                      int(w.audit), w.at))]
    if isinstance(w, RecordExpired):
        return [Stmt("UPDATE records SET live = 0 WHERE namespace = ? AND key = ?",
                     (w.namespace, w.key))]
    if isinstance(w, OrderRecorded):
        return [Stmt("INSERT INTO orders (room, order_id, viewer, sku, qty, body, at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room, order_id) DO NOTHING",
                     (w.room, w.order_id, w.viewer, w.sku, w.qty, dumps(w.body), w.at))]
    if isinstance(w, RoomCounters):
        out = []
        if w.stock:
            out.append(Stmt("INSERT INTO room_stock (room, sku, stock, at) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT (room, sku) DO UPDATE SET stock = excluded.stock, "
                            "at = excluded.at",
                            [(w.room, sku, int(n), w.at) for sku, n in w.stock], many=True))
        if w.gifts:
            out.append(Stmt("INSERT INTO room_gifts (room, promotion, claimed, at) "
                            "VALUES (?, ?, ?, ?) ON CONFLICT (room, promotion) DO UPDATE SET "
                            "claimed = excluded.claimed, at = excluded.at",
                            [(w.room, p, int(n), w.at) for p, n in w.gifts], many=True))
        return out
    raise TypeError(f"not a store write: {w!r}")


_FLOATS = {"escalated_at", "assigned_at", "first_agent_reply_at", "resolved_at"}


def _column_value(k: str, v: Any) -> Any:
    if v in ("", None):
        return None
    if k in _FLOATS:
        return float(v)
    return str(v)
