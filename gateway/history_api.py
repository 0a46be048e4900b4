"""HTTP endpoints of the durable store: history search, a transcript with its context, its
export (JSON, CSV), and erasing a viewer. docs/storage.md has the parameters and limits.

Who may read: ``admin`` and ``supervisor`` (an account role, docs/accounts.md) see every
conversation; an ``agent`` sees only conversations they handled (were assigned at some
time); viewers, hosts and services get 403. Erasure is ``admin`` only. Same bearer tokens
as the rest of the REST API.
"""

from __future__ import annotations

import csv
import io
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from signaling import ErrorCode, ProtocolError
from signaling.auth import Claims

from .http_api import bearer_claims, json_body, json_error
from .store import QueryError, SearchQuery, Store
from .store.records import MessageRow, SearchHit, Transcript

if TYPE_CHECKING:
    from .wiring import Gateway

READERS = ("admin", "supervisor", "agent")
SEES_ALL = ("admin", "supervisor")
ERASERS = ("admin",)
FORMATS = ("json", "csv")
MAX_ID_CHARS = 128
# a CSV cell starting with one of these is a formula to a spreadsheet: written with a quote
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _store(gw: Gateway) -> Store:
    d = gw.durable
    if d is None:
        raise ProtocolError(ErrorCode.UNAVAILABLE,
                            "this gateway keeps no history: start it with --data-dir or "
                            "LIVEDESK_DATABASE_URL (docs/storage.md)")
    return d.store


def _id(request: web.Request, name: str) -> str:
    v = request.match_info[name]
    if not v or len(v) > MAX_ID_CHARS or not v.isprintable():
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"{name} must be 1–{MAX_ID_CHARS} printable characters")
    return v


def _format(request: web.Request) -> str:
    f = request.query.get("format", "json")
    if f not in FORMATS:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"format must be one of {FORMATS}")
    return f


def hit_wire(h: SearchHit) -> dict[str, Any]:
    return {"conversation": h.conversation, "user": h.user, "room": h.room, "state": h.state,
            "opened_at": h.opened_at, "resolved_at": h.resolved_at, "snippet": h.snippet,
            "agent": h.agent}


def message_wire(m: MessageRow) -> dict[str, Any]:
    d: dict[str, Any] = {"n": m.n, "ts": m.ts,
                         "from": {"role": m.role, "user": m.user, **({"name": m.name}
                                                                      if m.name else {})},
                         "text": m.text, "client_msg_id": m.cmid or None}
    if m.kind:
        d["kind"] = m.kind
    if m.meta:
        d["meta"] = m.meta
    if m.meta.get("attachments"):
        # as message.send's relay carries them (docs/protocol.md#attachments): the pages show
        # thumbnails from the same field everywhere; ``meta`` keeps the record as stored
        d["attachments"] = m.meta["attachments"]
    return d


def transcript_wire(t: Transcript) -> dict[str, Any]:
    c = t.conversation
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for r in t.records:
        by_ns.setdefault(r.namespace, []).append({"key": r.key, "value": r.value,
                                                  "updated_at": r.updated_at})
    latest = {ns: rs[-1]["value"] for ns, rs in by_ns.items()}
    return {
        "conversation": c.conversation, "user": c.viewer, "viewer_name": c.viewer_name,
        "nickname": c.viewer_nickname, "room": c.room, "state": c.state, "agent": c.agent,
        "agent_name": c.agent_name, "agents": t.agents, "opened_at": c.opened_at,
        "escalated_at": c.escalated_at, "assigned_at": c.assigned_at,
        "first_agent_reply_at": c.first_agent_reply_at, "resolved_at": c.resolved_at,
        "resolved_by": c.resolved_by, "escalation_reason": c.escalation_reason,
        "mood": c.mood, "pinned": c.extra.get("pinned") or [],
        "messages": [message_wire(m) for m in t.messages],
        "csat": latest.get("csat"), "outcome": latest.get("outcome"),
        "actions": [r["value"] for r in by_ns.get("audit", [])],
        "records": [{"namespace": r.namespace, "key": r.key, "value": r.value,
                     "updated_at": r.updated_at} for r in t.records],
        "orders": [{"order_id": o.order_id, "sku": o.sku, "qty": o.qty, "at": o.at,
                    "result": o.body} for o in t.orders],
    }


def _cell(v: Any) -> str:
    s = "" if v is None else str(v)
    return "'" + s if s.startswith(_FORMULA) else s


def _iso(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _csv(header: list[str], rows: list[list[Any]], filename: str) -> web.Response:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        w.writerow([_cell(v) for v in r])
    return web.Response(body=("\ufeff" + buf.getvalue()).encode("utf-8"),  # BOM: Excel + 中文
                        content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                 "Cache-Control": "no-store"})


def _may_read(claims: Claims, t: Transcript) -> None:
    if claims.role not in SEES_ALL and claims.user not in t.agents:
        raise ProtocolError(ErrorCode.FORBIDDEN,
                            "agents may read only conversations they handled")


def setup_history_routes(app: web.Application, gw: Gateway) -> None:
    async def search(request: web.Request) -> web.Response:
        claims = bearer_claims(gw, request, READERS)
        params = {k: v for k, v in request.query.items() if k != "format"}
        fmt = _format(request)
        if any(len(request.query.getall(k)) > 1 for k in params):
            return json_error(ErrorCode.BAD_REQUEST, "each parameter may be given once")
        try:
            q = SearchQuery.parse(params)
        except QueryError as e:
            return json_error(ErrorCode.BAD_REQUEST, e.message, field=e.field)
        only = None if claims.role in SEES_ALL else claims.user
        hits = await _store(gw).search(q, only_agent=only)
        if fmt == "csv":
            return _csv(["conversation", "user", "room", "state", "agent", "opened_at",
                         "resolved_at", "snippet"],
                        [[h.conversation, h.user, h.room, h.state, h.agent or "",
                          _iso(h.opened_at), _iso(h.resolved_at), h.snippet] for h in hits],
                        "conversations.csv")
        return json_body({"conversations": [hit_wire(h) for h in hits]})

    async def transcript(request: web.Request) -> Transcript:
        claims = bearer_claims(gw, request, READERS)
        cid = _id(request, "cid")
        t = await _store(gw).transcript(cid)
        if t is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown conversation {cid!r}")
        _may_read(claims, t)
        return t

    async def get_conversation(request: web.Request) -> web.Response:
        return json_body(transcript_wire(await transcript(request)))

    async def export(request: web.Request) -> web.Response:
        fmt = _format(request)
        t = await transcript(request)
        cid = t.conversation.conversation
        if fmt == "csv":
            return _csv(["conversation", "n", "ts", "role", "user", "name", "kind", "text"],
                        [[cid, m.n, _iso(m.ts), m.role, m.user, m.name, m.kind, m.text]
                         for m in t.messages], f"{_safe(cid)}.csv")
        resp = json_body(transcript_wire(t))
        resp.headers["Content-Disposition"] = f'attachment; filename="{_safe(cid)}.json"'
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def erase(request: web.Request) -> web.Response:
        claims = bearer_claims(gw, request, ERASERS)
        viewer = _id(request, "viewer")
        store = _store(gw)
        # everywhere this node reaches: live state, sockets, store (gateway/durable.py)
        r = await (gw.eraser.erase(viewer, claims.role) if gw.eraser is not None
                   else store.erase_viewer(viewer, by_role=claims.role))
        return json_body({"erased": True, "tombstone": r.tombstone,
                          "conversations": r.conversations, "messages": r.messages,
                          "records": r.records, "orders": r.orders})

    app.router.add_get("/api/conversations", search)
    app.router.add_get("/api/conversations/{cid}", get_conversation)
    app.router.add_get("/api/conversations/{cid}/export", export)
    app.router.add_delete("/api/users/{viewer}", erase)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:80]
