"""HTTP surface: health, readiness, metrics, the WebSocket, dev tokens, static pages, and
the shop-facing REST endpoints. Errors are JSON ``{error: code, message}``.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from signaling import ErrorCode, ProtocolError
from signaling.auth import Claims
from signaling.protocol import ROLES

if TYPE_CHECKING:
    from .app import Gateway

_STATUS = {
    ErrorCode.BAD_REQUEST: 400, ErrorCode.BAD_JSON: 400, ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403, ErrorCode.NOT_FOUND: 404, ErrorCode.CONFLICT: 409,
    ErrorCode.OUT_OF_STOCK: 409, ErrorCode.TOO_LARGE: 413, ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503, ErrorCode.BAD_STATE: 409,
}


def json_error(code: ErrorCode, message: str, **extra: Any) -> web.Response:
    body = {"error": code.value, "message": message, **extra}
    return web.json_response(body, status=_STATUS.get(code, 400),
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


def bearer_claims(gw: "Gateway", request: web.Request, roles: tuple[str, ...]) -> Claims:
    """Authenticate an HTTP caller by ``Authorization: Bearer <jwt>`` and check its role."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        raise ProtocolError(ErrorCode.UNAUTHENTICATED, "missing 'Authorization: Bearer <token>'")
    claims = gw.tokens.verify(auth[7:].strip())
    if claims.role not in roles:
        raise ProtocolError(ErrorCode.FORBIDDEN,
                            f"role {claims.role!r} may not call this endpoint (needs {roles})")
    return claims


async def read_json(request: web.Request, max_bytes: int = 64 * 1024) -> dict:
    if request.content_length is not None and request.content_length > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"body over {max_bytes} bytes")
    raw = await request.read()
    if len(raw) > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"body over {max_bytes} bytes")
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "body must be a JSON object")
    return body


try:
    import redis.exceptions as _rexc

    UNAVAILABLE_ERRORS: tuple = (ConnectionError, TimeoutError, _rexc.ConnectionError,
                                 _rexc.TimeoutError, _rexc.OutOfMemoryError)
except ImportError:  # pragma: no cover
    UNAVAILABLE_ERRORS = (ConnectionError, TimeoutError)


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ProtocolError as e:
        return json_error(e.code, e.message)
    except UNAVAILABLE_ERRORS as e:
        return json_error(ErrorCode.UNAVAILABLE, f"state store unavailable ({e.__class__.__name__}); "
                                                 f"retry (orders are idempotent)")


def setup_routes(app: web.Application, gw: "Gateway") -> None:
    app.middlewares.append(error_middleware)
    web_root = gw.config.web_root

    async def healthz(request):
        return web.json_response({"status": "ok", "node": gw.config.node_id})

    async def readyz(request):
        try:
            ok = await asyncio.wait_for(gw.bus.ping(), 1.0)
        except Exception:
            ok = False
        if gw.draining:
            ok = False
        return web.json_response({"ready": ok, "node": gw.config.node_id,
                                  "draining": gw.draining},
                                 status=200 if ok else 503)

    async def metrics(request):
        gw.metrics.sockets.set(gw.endpoint.open_sockets)
        gw.metrics.sessions.set(len(gw.hub.sessions))
        return web.Response(body=gw.metrics.render(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def dev_token(request):
        q = request.query
        role = q.get("role", "viewer")
        if role not in ROLES:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"role must be one of {ROLES}")
        user = q.get("user") or f"{role}-{__import__('secrets').token_hex(3)}"
        room = q.get("room") or None
        if role in ("viewer", "host") and room is None:
            room = gw.rooms.ids()[0] if gw.rooms.ids() else None
        token = gw.tokens.issue(user, role, room=room, name=q.get("name") or None,
                                ttl_s=int(q.get("ttl", 12 * 3600)))
        return web.json_response({"token": token, "user": user, "role": role, "room": room})

    async def rooms(request):
        return web.json_response({"rooms": [
            {"id": r.id, "title": r.knowledge.room.title, "host": r.knowledge.room.host}
            for r in gw.rooms]}, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def post_order(request):
        claims = bearer_claims(gw, request, ("service",))
        return await gw.rooms_service.http_order(request, claims)

    def page(name: str):
        async def serve(request):
            return web.FileResponse(web_root / name)
        return serve

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/ws", gw.endpoint.handle)
    app.router.add_get("/api/rooms", rooms)
    app.router.add_post("/api/rooms/{room}/orders", post_order)
    if gw.config.dev:
        app.router.add_get("/api/dev/token", dev_token)
    app.router.add_get("/", page("index.html"))
    for name in ("agent", "host", "dashboard", "admin"):
        if (web_root / f"{name}.html").exists():
            app.router.add_get(f"/{name}", page(f"{name}.html"))
    if web_root.exists():
        app.router.add_static("/static/", web_root, show_index=False)
    for extra in getattr(gw, "extra_routes", ()):
        extra(app)
