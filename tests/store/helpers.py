"""Write batches for store tests: a conversation's life as the support plane records it
(its own typed change records, ``gateway/support/changes.py``)."""

from __future__ import annotations

from gateway.store.records import OrderRecorded, Write
from gateway.support.changes import (
    Attached,
    ConversationOpened,
    Dequeued,
    FieldsSet,
    MessageAppended,
    Queued,
    RecordPut,
    Released,
)
from gateway.support.conversation import Author


def msg(cid: str, n: int, role: str, user: str, text: str, ts: float) -> MessageAppended:
    return MessageAppended(cid, n, Author(role, user, user.upper()), text, ts, f"m{n}")


def conversation(cid: str, viewer: str, room: str, at: float, texts: list[str],
                 agent: str | None = None, resolved: bool = False) -> list[Write]:
    """Open, the viewer's messages, optionally escalated and assigned to ``agent`` (who
    answers once) and resolved."""
    out: list[Write] = [ConversationOpened(cid, room, viewer, viewer.title(), at)]
    n = 0
    for i, t in enumerate(texts):
        n += 1
        out.append(msg(cid, n, "viewer", viewer, t, at + i + 1))
    if agent:
        out += [FieldsSet(cid, {"state": "queued", "escalated_at": at + 10,
                                "escalation_reason": "asked"}),
                Queued(cid, at + 10, False), Dequeued(cid), Attached(cid, agent, at + 11),
                FieldsSet(cid, {"state": "assigned", "agent": agent,
                                "agent_name": agent.upper(), "assigned_at": at + 11}),
                msg(cid, n + 1, "agent", agent, "您好，我来帮您处理", at + 12)]
    if resolved:
        if agent:
            out.append(Released(cid, agent))
        out.append(FieldsSet(cid, {"state": "resolved", "resolved_at": at + 20,
                                   "resolved_by": "agent"}))
    return out


def order(room: str, order_id: str, viewer: str, at: float) -> OrderRecorded:
    return OrderRecorded(room, order_id, viewer, "sku-1", 1, {"gift": False, "rank": None,
                                                            "stock_left": 9}, at)


def csat(cid: str, viewer: str, score: int) -> RecordPut:
    return RecordPut("csat", cid, {"score": score, "viewer": viewer})
