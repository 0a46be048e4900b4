"""Each write → the statements that record it. Idempotent: every statement is an upsert
with absolute values or an insert that ignores a row already there.

The support plane's change records are read by dispatch on their class (as
``Replica.apply`` does); the store adds only what a row needs beyond the record: when it
was written (``at``, the batch's time) and, for a workspace record, whom it is about
(``record_about``, the support plane's one rule for it: for erasure and a transcript's
context)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..support.changes import (
    AgentStatus,
    Attached,
    ConversationOpened,
    Dequeued,
    FieldsSet,
    MessageAppended,
    Queued,
    RecordDeleted,
    RecordPut,
    Released,
    ViewerErased,
    record_about,
)
from .database import Stmt
from .dialect import Dialect
from .records import CONVERSATION_COLUMNS, OrderRecorded, RoomCounters, Write

# Workspace record namespaces kept under the audit retention (docs/storage.md#retention)
AUDIT_NAMESPACES = frozenset({"audit", "approval", "granted"})


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def statements(batch: Sequence[Write], d: Dialect, at: float) -> list[Stmt]:
    """The statements for ``batch`` (written at ``at``), in its order; consecutive messages
    become one ``executemany`` (a bulk load is mostly messages)."""
    out: list[Stmt] = []
    rows: list[tuple] = []

    def flush() -> None:
        if rows:
            out.append(Stmt(d.message_insert(), list(rows), many=True))
            rows.clear()

    for w in batch:
        if isinstance(w, MessageAppended):
            a = w.author
            rows.append((w.cid, w.n, a.role, a.user, a.name or "", w.text,
                         w.client_msg_id or "", w.kind or "", dumps(w.meta), w.ts,
                         d.terms_param(w.text), w.cid))
            continue
        flush()
        out.extend(_one(w, d, at))
    flush()
    return out


def _one(w: Write, d: Dialect, at: float) -> list[Stmt]:
    match w:
        case ConversationOpened():
            return [Stmt("INSERT INTO conversations (id, room, viewer, viewer_name, opened_at, "
                         "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                         (w.cid, w.room, w.viewer, w.viewer_name, w.created_at,
                          w.created_at))]
        case FieldsSet():
            cols = [(k, v) for k, v in w.fields.items() if k in CONVERSATION_COLUMNS]
            extra = {k: v for k, v in w.fields.items() if k not in CONVERSATION_COLUMNS}
            sets = [f"{k} = ?" for k, _ in cols] + ["updated_at = ?"]
            args: list[Any] = [_column_value(k, v) for k, v in cols] + [at]
            if extra:
                sets.append(f"extra = {d.json_merge('extra')}")
                args.append(dumps(extra))
            return [Stmt(f"UPDATE conversations SET {', '.join(sets)} WHERE id = ?",
                         (*args, w.cid))]
        case Queued():
            edge = "MIN(pos) - 1" if w.front else "MAX(pos) + 1"
            return [Stmt(f"INSERT INTO queue (conversation, since, pos) VALUES (?, ?, "
                         f"(SELECT COALESCE({edge}, 0) FROM queue)) ON CONFLICT (conversation) "
                         f"DO UPDATE SET since = excluded.since, pos = excluded.pos",
                         (w.cid, w.since))]
        case Dequeued():
            return [Stmt("DELETE FROM queue WHERE conversation = ?", (w.cid,))]
        case Attached():
            return [Stmt("INSERT INTO assignments (conversation, agent, at) VALUES (?, ?, ?) "
                         "ON CONFLICT (conversation) DO UPDATE SET agent = excluded.agent, "
                         "at = excluded.at", (w.cid, w.agent, w.at)),
                    Stmt("INSERT INTO handled (conversation, agent, at) VALUES (?, ?, ?) "
                         "ON CONFLICT (conversation, agent) DO NOTHING",
                         (w.cid, w.agent, w.at))]
        case Released():
            if not w.agent:
                return []
            return [Stmt("DELETE FROM assignments WHERE conversation = ? AND agent = ?",
                         (w.cid, w.agent))]
        case AgentStatus():
            return [Stmt('INSERT INTO agents ("user", name, status, capacity, paused, since, '
                         'last_assigned) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT ("user") DO '
                         'UPDATE SET name = excluded.name, status = excluded.status, '
                         'capacity = excluded.capacity, paused = excluded.paused, '
                         'since = excluded.since, last_assigned = excluded.last_assigned',
                         (w.user, w.name, w.status, w.capacity, int(w.paused), w.since,
                          w.last_assigned))]
        case RecordPut():
            viewer, conversation = record_about(w.namespace, w.key, w.value)
            return [Stmt("INSERT INTO records (namespace, key, value, viewer, conversation, "
                         "audit, live, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) "
                         "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                         "viewer = excluded.viewer, conversation = excluded.conversation, "
                         "audit = excluded.audit, live = 1, updated_at = excluded.updated_at, "
                         "expires_at = excluded.expires_at",
                         (w.namespace, w.key, dumps(w.value), viewer, conversation,
                          int(w.namespace in AUDIT_NAMESPACES), at, w.expires_at))]
        case RecordDeleted():
            # the live state forgot it (its TTL ran out); history keeps it until retention
            return [Stmt("UPDATE records SET live = 0 WHERE namespace = ? AND key = ?",
                         (w.namespace, w.key))]
        case ViewerErased():
            # the store's erasure is its own transaction with its tombstone
            # (Store.erase_viewer), run by whoever erased; nothing to write here
            return []
        case OrderRecorded():
            return [Stmt("INSERT INTO orders (room, order_id, viewer, sku, qty, body, at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room, order_id) DO NOTHING",
                         (w.room, w.order_id, w.viewer, w.sku, w.qty, dumps(w.body), w.at))]
        case RoomCounters():
            out = []
            if w.stock:
                out.append(Stmt("INSERT INTO room_stock (room, sku, stock, at) "
                                "VALUES (?, ?, ?, ?) ON CONFLICT (room, sku) DO UPDATE SET "
                                "stock = excluded.stock, at = excluded.at",
                                [(w.room, sku, int(n), w.at) for sku, n in w.stock], many=True))
            if w.gifts:
                out.append(Stmt("INSERT INTO room_gifts (room, promotion, claimed, at) "
                                "VALUES (?, ?, ?, ?) ON CONFLICT (room, promotion) DO UPDATE "
                                "SET claimed = excluded.claimed, at = excluded.at",
                                [(w.room, p, int(n), w.at) for p, n in w.gifts], many=True))
            if w.quotas:  # a host's edit: the claimed count stays the orders' own
                out.append(Stmt("INSERT INTO room_gifts (room, promotion, claimed, quota, "
                                "active, at) VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (room, "
                                "promotion) DO UPDATE SET quota = excluded.quota, "
                                "active = excluded.active, at = excluded.at",
                                [(w.room, p, int(n), int(bool(a)), w.at)
                                 for p, n, a in w.quotas], many=True))
            return out
    raise TypeError(f"not a store write: {w!r}"[:200])


_FLOATS = {"escalated_at", "assigned_at", "first_agent_reply_at", "resolved_at"}


def _column_value(k: str, v: Any) -> Any:
    if v in ("", None):
        return None
    if k in _FLOATS:
        return float(v)
    return str(v)
