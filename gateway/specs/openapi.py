"""The OpenAPI 3.1 document of every HTTP route the gateway registers.

What comes from the code: the error codes (:class:`signaling.ErrorCode` and the attachment
refusals' ``STATUS``), each error's HTTP status (``http_api._STATUS``), the history search's
query parameters (:class:`gateway.store.query.SearchQuery`), the request bodies that have a
typed request class (:mod:`gateway.rest_bodies`), the dashboard and radar bodies (the same
Event classes the WebSocket pushes), the radar windows, the roles of each endpoint. What is
written here by hand — the table :data:`OPERATIONS` of paths, summaries and the remaining
response shapes — is checked against the running handlers by the schemathesis run
(``tests/integration/test_schemathesis.py``: every operation, responses must match), and
:func:`registered_routes` against the app's router (a route missing here fails
``tests/unit/test_specs_drift.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gateway import rest_bodies
from gateway.attachments.records import STATUS as ATTACHMENT_STATUS
from gateway.attachments_api import CALLERS as ATTACHMENT_CALLERS
from gateway.auth.routes import COOKIE
from gateway.history_api import ERASERS, FORMATS, READERS
from gateway.http_api import _STATUS, DEV_TOKEN_MAX_TTL_S
from gateway.radar_api import READERS as RADAR_READERS
from gateway.store.query import MAX_LIMIT, SearchQuery
from gateway.support.dashboard import DashboardEvent
from gateway.support.radar import WINDOWS
from signaling.errors import ErrorCode
from signaling.protocol import ROLES

from .jsonschema import schema_of
from .protocol import SCHEMA_ID

JSON = "application/json"
TEXT = "text/plain"
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    where: str = "query"
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Op:
    """One operation. ``roles``: the bearer token roles it accepts (empty: no bearer);
    ``cookie``: it reads the sign-in session cookie; ``errors``: the statuses it may answer
    with the JSON error body besides the success."""

    method: str
    path: str
    summary: str
    tag: str
    ok: int = 200
    ok_schema: dict[str, Any] | None = None
    ok_type: str = JSON
    roles: tuple[str, ...] = ()
    cookie: bool = False
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    body_type: str = JSON
    errors: tuple[int, ...] = ()
    plain_errors: tuple[int, ...] = ()  # aiohttp's own answers, not JSON (404 of a file)
    plain_type: str = TEXT
    dev_only: bool = False
    websocket: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None,
         closed: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object",
                           "properties": {**required, **(optional or {})},
                           "required": list(required)}
    if closed:
        out["additionalProperties"] = False
    return out


S, I, N, B = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
NS = {"type": ["string", "null"]}
NN = {"type": ["number", "null"]}
OBJ: dict[str, Any] = {"type": "object"}
HTML = "text/html"
ROOM = Param("room", {"type": "string"}, "path", required=True)
PAGES = ("agent", "host", "dashboard", "admin", "login", "history")
BEARER_ERRORS = (401, 403)
BODY_ERRORS = (400, 408, 413)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _search_params() -> tuple[Param, ...]:
    """The history search's parameters: the fields of :class:`SearchQuery` (its parser is
    the rule)."""
    types = {"since": "time: ISO 8601 or epoch seconds", "until": "time: ISO 8601 or epoch "
             "seconds", "limit": f"1–{MAX_LIMIT}", "q": "words to search for (Chinese too)"}
    out = [Param(f.name, {"type": "string"}, description=types.get(f.name, "an id"))
           for f in dataclasses.fields(SearchQuery)]
    return (*out, Param("format", {"type": "string", "enum": list(FORMATS)}))


ACCOUNT = _obj({"user": S, "name": S, "roles": {"type": "array", "items": S},
                "disabled": B, "failed_logins": I, "locked": B,
                "locked_until": {"type": ["integer", "null"]}})
OPERATIONS: tuple[Op, ...] = (
    # health and metrics
    Op("get", "/healthz", "Liveness: the process answers", "health",
       ok_schema=_obj({"status": {"const": "ok"}, "node": S})),
    Op("get", "/readyz", "Readiness: the bus answers and the node is not draining", "health",
       ok_schema=_obj({"ready": B, "node": S, "draining": B}),
       extra={"503": {"description": "not ready (bus down or draining)",
                      "content": {JSON: {"schema": _obj({"ready": B, "node": S,
                                                          "draining": B})}}}}),
    Op("get", "/metrics", "Prometheus metrics (text exposition format)", "health",
       ok_type="text/plain; version=0.0.4; charset=utf-8", ok_schema=S),
    Op("get", "/ws", "The WebSocket (protocol v1: protocol.schema.json)", "signaling",
       ok=101, websocket=True),
    # the specs themselves
    Op("get", "/api/openapi.json", "This document", "specs", ok_schema=OBJ),
    Op("get", "/api/protocol.schema.json", "The JSON Schema of every WebSocket frame",
       "specs", ok_schema=OBJ),
    # rooms, orders, notices, dashboard
    Op("get", "/api/rooms", "The rooms this gateway serves", "rooms",
       ok_schema=_obj({"rooms": {"type": "array", "items": _obj({"id": S, "title": S,
                                                                 "host": S})}})),
    Op("post", "/api/rooms/{room}/orders", "A shop reports an order (idempotent by order_id)",
       "rooms", roles=("service",), params=(ROOM,),
       body=_ref("OrderRequest"), ok_schema=OBJ,
       errors=(*BEARER_ERRORS, *BODY_ERRORS, 404, 409, 503)),
    Op("post", "/api/rooms/{room}/notices", "A shop notifies the viewers an event affects",
       "rooms", roles=("service",), params=(ROOM,), body=_ref("NoticeRequest"),
       ok_schema=_obj({"notified": I, "conversations": {"type": "array", "items": S}}),
       errors=(*BEARER_ERRORS, *BODY_ERRORS, 404, 503)),
    Op("get", "/api/dashboard", "The live dashboard figures (as the dashboard event)",
       "rooms", roles=("admin",), ok_schema=_ref("Dashboard"), errors=BEARER_ERRORS),
    Op("get", "/api/rooms/{room}/radar", "The question radar of a room", "radar",
       roles=RADAR_READERS, params=(ROOM, Param("window", {"type": "string", "enum": [
           str(w) for w in WINDOWS]}, description="seconds")),
       ok_schema=_obj({"room": S, "window": I, "groups": {"type": "array"},
                       "flags": {"type": "array"}, "surge": OBJ}),
       errors=(*BEARER_ERRORS, 400, 404)),
    Op("get", "/api/rooms/{room}/radar/report", "Per-day, per-product figures (CSV)", "radar",
       roles=RADAR_READERS, params=(ROOM,), ok_type="text/csv", ok_schema=S,
       errors=(*BEARER_ERRORS, 404)),
    Op("get", "/api/webhooks/deliveries", "The last webhook deliveries, newest first",
       "radar", roles=("admin",), ok_schema=_obj({"deliveries": {"type": "array"}}),
       errors=BEARER_ERRORS),
    # dev tokens
    Op("get", "/api/dev/token", "A demo token for any role (only with --dev, only to a "
       "direct loopback client)", "dev", dev_only=True,
       params=(Param("role", {"type": "string", "enum": list(ROLES)}),
               Param("user", S), Param("room", S), Param("name", S),
               Param("ttl", S, description=f"seconds, 1–{DEV_TOKEN_MAX_TTL_S}")),
       ok_schema=_obj({"token": S, "user": S, "role": S, "room": NS}),
       errors=(400, 403)),
    # history
    Op("get", "/api/conversations", "Search the stored conversations (JSON or CSV)",
       "history", roles=READERS, params=_search_params(),
       ok_schema=_obj({"conversations": {"type": "array", "items": _obj(
           {"conversation": S, "user": S, "room": S, "state": S, "opened_at": N,
            "resolved_at": NN, "snippet": S, "agent": NS})}}),
       errors=(*BEARER_ERRORS, 400, 503), extra={"x-csv": True}),
    Op("get", "/api/conversations/{cid}", "One stored conversation with its history",
       "history", roles=READERS, params=(Param("cid", S, "path", required=True),),
       ok_schema=_ref("Transcript"), errors=(*BEARER_ERRORS, 400, 404, 503)),
    Op("get", "/api/conversations/{cid}/export", "Export one conversation (JSON or CSV)",
       "history", roles=READERS, params=(Param("cid", S, "path", required=True),
                                         Param("format", {"type": "string",
                                                          "enum": list(FORMATS)})),
       ok_schema=_ref("Transcript"), errors=(*BEARER_ERRORS, 400, 404, 503),
       extra={"x-csv": True}),
    Op("delete", "/api/users/{viewer}", "Erase a viewer everywhere (GDPR/PIPL erasure)",
       "history", roles=ERASERS, params=(Param("viewer", S, "path", required=True),),
       ok_schema=_obj({"erased": B, "tombstone": S, "conversations": I, "messages": I,
                       "records": I, "orders": I}),
       errors=(*BEARER_ERRORS, 400, 503)),
    # attachments
    Op("post", "/api/conversations/{cid}/attachments", "Upload a photo (raw body or "
       "multipart field 'file')", "attachments", ok=201, roles=ATTACHMENT_CALLERS,
       params=(Param("cid", S, "path", required=True),
               Param("source", {"type": "string", "enum": ["upload", "call"]}),
               Param("taken_at", S, description="seconds since the epoch")),
       body={"type": "string", "format": "binary"}, body_type="application/octet-stream",
       ok_schema=_obj({"attachment": S, "content_type": S, "width": I, "height": I,
                       "bytes": I, "kind": S, "source": S}, {"taken_at": N}),
       errors=(*BEARER_ERRORS, 400, 403, 404, 413, 415, 429, 503)),
    Op("get", "/api/attachments/{id}", "An attachment's bytes (or its thumbnail)",
       "attachments", roles=ATTACHMENT_CALLERS,
       params=(Param("id", S, "path", required=True), Param("thumb", S), Param("inline", S)),
       ok_type="application/octet-stream", ok_schema={"type": "string", "format": "binary"},
       errors=(*BEARER_ERRORS, 400, 404, 503)),
    # sign-in and accounts
    Op("get", "/.well-known/jwks.json", "The gateway's public signing keys", "auth",
       ok_schema=_obj({"keys": {"type": "array", "items": OBJ}})),
    Op("post", "/api/auth/login", "Sign in with a password: a session cookie", "auth",
       body=_ref("LoginRequest"),
       ok_schema=_obj({"user": S, "name": S, "roles": {"type": "array", "items": S},
                       "expires_at": I}),
       errors=(*BODY_ERRORS, 401, 429, 503)),
    Op("post", "/api/auth/token", "A socket token (≤ 10 min) for the signed-in session",
       "auth", cookie=True, body=_ref("TokenRequest"),
       ok_schema=_obj({"token": S, "expires_at": I, "role": S}),
       errors=(*BODY_ERRORS, 401, 403, 503)),
    Op("post", "/api/auth/logout", "End the signed-in session", "auth", cookie=True,
       ok_schema=_obj({"signed_out": B}), errors=(400, 503)),
    Op("get", "/api/admin/users", "Accounts with their lockout state", "auth",
       roles=("admin",), ok_schema=_obj({"users": {"type": "array", "items": ACCOUNT}}),
       errors=(*BEARER_ERRORS, 503)),
    Op("post", "/api/admin/users", "Add an account", "auth", ok=201, roles=("admin",),
       body=_ref("NewUserRequest"), ok_schema=ACCOUNT, errors=(*BEARER_ERRORS, *BODY_ERRORS, 409, 503)),
    Op("patch", "/api/admin/users/{user}", "Disable, enable, change roles or reset the "
       "password", "auth", roles=("admin",), params=(Param("user", S, "path", required=True),),
       body=_ref("UserChangeRequest"), ok_schema=ACCOUNT, errors=(*BEARER_ERRORS, *BODY_ERRORS, 404, 409, 503)),
    Op("get", "/auth/oidc", "Whether single sign-on is on", "auth",
       ok_schema=_obj({"enabled": B})),
    Op("get", "/auth/oidc/start", "Go to the identity provider", "auth", ok=302,
       params=(Param("next", S),), plain_errors=(404,)),
    Op("get", "/auth/oidc/callback", "Back from the identity provider", "auth", ok=302,
       plain_errors=(404,)),
    # embedding
    Op("get", "/widget.js", "The embeddable widget's loader script", "embed",
       ok_type="application/javascript", ok_schema=S),
    Op("get", "/embed", "The widget page a shop's page frames", "embed", ok_type=HTML,
       ok_schema=S, params=(Param("room", S, required=True), Param("shop", S)),
       errors=(400, 404)),
    Op("get", "/api/embed/config", "The room's embedding settings", "embed",
       params=(Param("room", S, required=True), Param("shop", S)),
       ok_schema=_obj({"room": S, "shop": NS, "anonymous": B}), errors=(400, 404)),
    Op("post", "/api/embed/anonymous", "An anonymous viewer identity for the widget",
       "embed", body=_ref("AnonymousRequest"),
       ok_schema=_obj({"token": S, "expires_at": I, "user": S, "shop": NS, "new": B}),
       errors=(*BODY_ERRORS, 403, 404, 429)),
    # pages
    Op("get", "/", "The viewer page (demo live stream with the support widget)", "pages",
       ok_type=HTML, ok_schema=S),
    *(Op("get", f"/{p}", f"The {p} page", "pages", ok_type=HTML, ok_schema=S) for p in PAGES),
    Op("get", "/favicon.ico", "The icon (SVG)", "pages", ok_type="image/svg+xml",
       ok_schema=S),
    Op("get", "/static/{path}", "The pages' scripts, styles and images", "pages",
       params=(Param("path", S, "path", required=True),), ok_type="*/*", ok_schema=S,
       plain_errors=(403, 404), plain_type="*/*"),
    Op("get", "/sdk/{path}", "The JavaScript SDK's modules (sdk/js/src)", "pages",
       params=(Param("path", S, "path", required=True),),
       ok_type="application/javascript", ok_schema=S, plain_errors=(403, 404), plain_type="*/*"),
)


def error_codes() -> list[str]:
    return sorted({c.value for c in ErrorCode} | set(ATTACHMENT_STATUS))


def _status_text(code: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(code).phrase


def _operation(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                           "operationId": _op_id(op)}
    params = [{"name": p.name, "in": p.where, "required": p.required or p.where == "path",
               "schema": p.schema, **({"description": p.description} if p.description else {})}
              for p in op.params]
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": op.method != "post" or op.path != "/api/auth/token",
                              "content": {op.body_type: {"schema": op.body}}}
    security: list[dict[str, list[str]]] = []
    if op.roles:
        security.append({"bearerAuth": []})
        out["x-roles"] = list(op.roles)
    if op.cookie:
        security.append({"sessionCookie": []})
    if security:
        out["security"] = security
    if op.dev_only:
        out["x-dev-only"] = True
    ok: dict[str, Any] = {"description": _status_text(op.ok)}
    if op.ok_schema is not None:
        ok["content"] = {op.ok_type: {"schema": op.ok_schema}}
        if op.extra.get("x-csv"):
            ok["content"]["text/csv"] = {"schema": S}
    if op.ok == 302:
        ok["headers"] = {"Location": {"schema": S}}
    responses: dict[str, Any] = {str(op.ok): ok}
    if op.websocket:
        responses["400"] = {"description": "not a WebSocket upgrade",
                            "content": {TEXT: {"schema": S}}}
    for code in sorted(set(op.errors)):
        responses[str(code)] = {"description": _status_text(code),
                                "content": {JSON: {"schema": ERROR_REF}}}
    for code in op.plain_errors:
        responses[str(code)] = {"description": _status_text(code),
                                "content": {op.plain_type: {"schema": S}}}
    for k, v in op.extra.items():
        if not k.startswith("x-"):
            responses[k] = v
    out["responses"] = responses
    return out


def _op_id(op: Op) -> str:
    words = [w.strip("{}") for w in op.path.replace(".", "_").replace("-", "_").split("/") if w]
    return op.method + "".join(w[:1].upper() + w[1:] for w in words) if words \
        else op.method + "Root"


def _components() -> dict[str, Any]:
    from .protocol import _Defs, _event_schema

    defs = _Defs()
    dashboard = _event_schema(DashboardEvent, defs)
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "enum": error_codes()},
            "message": S, "field": S, "retry_after": I},
            "description": "Every refusal; `error` is the stable code, its status is fixed "
                           "per code (x-status)",
            "x-status": {c.value: s for c, s in sorted(_STATUS.items())}},
        "Dashboard": dashboard,
        "Transcript": _obj({"conversation": S, "user": S, "room": S, "state": S,
                            "messages": {"type": "array", "items": OBJ}}),
        **{name: _request_schema(cls, defs)
           for name, cls in rest_bodies.REQUESTS.items()},
    }
    for name, d in defs.defs.items():
        schemas.setdefault(name, d)
    return {"schemas": dict(sorted(schemas.items())), "securitySchemes": {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "description": "a staff, service or viewer token (docs/accounts.md)"},
        "sessionCookie": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                          "description": "the sign-in session (POST /api/auth/login)"}}}


def _request_schema(cls: type, defs: Any) -> dict[str, Any]:
    """A typed request body (:mod:`gateway.rest_bodies`): its fields, limits, which are
    required — the same declaration :func:`gateway.rest_bodies.parse` checks bodies with."""
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        spec = rest_bodies.spec_of(cls, f.name)
        props[f.name] = schema_of(spec.hint, defs.ref)
        props[f.name].update(spec.json_limits())
        if spec.required:
            required.append(f.name)
    out: dict[str, Any] = {"type": "object", "title": cls.__name__,
                           "description": " ".join((cls.__doc__ or "").split()),
                           "properties": props}
    if required:
        out["required"] = required
    if getattr(cls, "CLOSED", False):
        out["additionalProperties"] = False
    if getattr(cls, "MIN_FIELDS", 0):
        out["minProperties"] = cls.MIN_FIELDS  # type: ignore[attr-defined]
    return out


def registered_routes(app: Any) -> set[tuple[str, str]]:
    """``(method, OpenAPI path)`` of every route the app registers (HEAD aside: aiohttp adds
    one per GET); a static resource is ``{prefix}/{path}``."""
    out: set[tuple[str, str]] = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path is None and "prefix" in info:
            path = info["prefix"].rstrip("/") + "/{path}"
        if route.method == "HEAD":
            continue
        out.add((route.method.lower(), str(path)))
    return out


def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "LiveDesk gateway REST API", "version": "1",
                 "description": "Every HTTP route of a LiveDesk gateway, generated by "
                                "`python -m gateway.specs` (do not edit by hand). The "
                                f"WebSocket frames: {SCHEMA_ID} (/api/protocol.schema.json)."},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": _components(),
    }
