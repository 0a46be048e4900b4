"""HTTP surface: health, readiness, metrics, the WebSocket, dev tokens, static pages, the
shop-facing REST endpoints (orders, notices) and the admin dashboard. Errors are JSON
``{error: code, message}``.

The one HTTP layer: it authenticates, reads bodies and builds responses; the support plane
behind it takes and returns plain data and raises :class:`~signaling.ProtocolError`, whose
code becomes the status here (``_STATUS``).

Outside input is handled as hostile: REST bodies go through :func:`signaling.inbound.loads`
(size, depth, number length, valid Unicode) within a deadline; the dev-token endpoint
exists only with ``--dev`` and refuses anything that came through a proxy; every response
carries the security headers of :mod:`gateway.http_headers`; the access log
(:mod:`gateway.access_log`) never prints a query string.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from signaling import ErrorCode, ProtocolError
from signaling.auth import Claims
from signaling.inbound import clean_text, loads
from signaling.protocol import ROLES

from .access_log import AccessLogger, hide_server_version
from .config import Config
from .http_headers import SecurityHeaders
from .request_context import request_context

if TYPE_CHECKING:
    from .support.room import Room
    from .wiring import Gateway

BODY_TIMEOUT = web.AppKey("http_body_timeout_s", float)
MAX_BODY_BYTES = 64 * 1024
DEV_TOKEN_MAX_TTL_S = 24 * 3600
DEV_TOKEN_FIELD_CHARS = 128
# Headers a reverse proxy adds: a dev-token request carrying one came from elsewhere.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host")


def server_options(config: Config) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` (``livedesk serve`` and the tests use these).

    ``keepalive_timeout`` is aiohttp's only timer on a connection that has no complete
    request yet: it runs from the moment a connection opens and after every response, and
    closes the connection if no full request head arrived by then. That is the header
    (slowloris) timeout, and also how long an idle keep-alive connection is kept.
    ``lingering_time`` bounds how long an unread request body is drained after the answer."""
    hide_server_version()
    return {"keepalive_timeout": config.http_header_timeout_s,
            "lingering_time": min(2.0, config.http_body_timeout_s),
            "access_log_class": AccessLogger}

_STATUS = {
    ErrorCode.BAD_REQUEST: 400, ErrorCode.BAD_JSON: 400, ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403, ErrorCode.NOT_FOUND: 404, ErrorCode.CONFLICT: 409,
    ErrorCode.OUT_OF_STOCK: 409, ErrorCode.TOO_LARGE: 413, ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503, ErrorCode.BAD_STATE: 409, ErrorCode.TIMEOUT: 408,
}


def json_error(code: ErrorCode, message: str, **extra: Any) -> web.Response:
    body = {"error": code.value, "message": message, **extra}
    return web.json_response(body, status=_STATUS.get(code, 400),
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


def json_body(body: Any) -> web.Response:
    """A JSON response that keeps Chinese text readable (not ``\\uXXXX``)."""
    return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def bearer_claims(gw: Gateway, request: web.Request, roles: tuple[str, ...]) -> Claims:
    """Authenticate an HTTP caller by ``Authorization: Bearer <jwt>`` and check its role."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        raise ProtocolError(ErrorCode.UNAUTHENTICATED, "missing 'Authorization: Bearer <token>'")
    claims = gw.tokens.verify(auth[7:].strip())
    if claims.role not in roles:
        raise ProtocolError(ErrorCode.FORBIDDEN,
                            f"role {claims.role!r} may not call this endpoint (needs {roles})")
    return claims


def shop_room(gw: Gateway, request: web.Request, claims: Claims) -> Room:
    """The room a shop endpoint names: a room-bound service token may name only its own."""
    room_id = request.match_info["room"]
    if claims.room and claims.room != room_id:
        raise ProtocolError(ErrorCode.FORBIDDEN, f"this service token is for room {claims.room!r}")
    room = gw.rooms.get(room_id)
    if room is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown room {room_id!r}")
    return room


async def read_json(request: web.Request, max_bytes: int = MAX_BODY_BYTES) -> dict:
    """The request's JSON object body, parsed as untrusted input.

    Refused, each as a typed 4xx: a body over ``max_bytes`` (413), one that does not arrive
    within ``http_body_timeout_s`` (408: a slow-body client must not hold a handler), text
    that is not JSON or not UTF-8, nesting deeper or numbers longer than
    :mod:`signaling.inbound` allows, lone surrogates or control characters (400)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"body over {max_bytes} bytes")
    timeout = request.app.get(BODY_TIMEOUT, 10.0)
    try:
        async with asyncio.timeout(timeout):
            raw = await request.content.read(max_bytes + 1)
            while len(raw) <= max_bytes and not request.content.at_eof():
                more = await request.content.read(max_bytes + 1 - len(raw))
                if not more:
                    break
                raw += more
    except TimeoutError:
        raise ProtocolError(ErrorCode.TIMEOUT,
                            f"the body did not arrive within {timeout:g} s") from None
    body = loads(raw or b"null", max_bytes=max_bytes, what="body")
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
        resp = json_error(e.code, e.message)
        if e.code is ErrorCode.TIMEOUT:
            resp.force_close()  # the rest of a slow body is not waited for
        return resp
    except UNAVAILABLE_ERRORS as e:
        return json_error(ErrorCode.UNAVAILABLE, f"state store unavailable ({e.__class__.__name__}); "
                                                 f"retry (orders are idempotent)")


def _dev_query(q, name: str) -> str | None:
    v = q.get(name) or None
    return None if v is None else clean_text(v, name, DEV_TOKEN_FIELD_CHARS)


def _dev_ttl(raw: str | None) -> int:
    if raw is None:
        return 12 * 3600
    if (len(raw) > 6 or not raw.isascii() or not raw.isdigit()
            or not 1 <= int(raw) <= DEV_TOKEN_MAX_TTL_S):
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"ttl must be a whole number of seconds from 1 to "
                            f"{DEV_TOKEN_MAX_TTL_S}")
    return int(raw)


def _from_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


class Pages:
    """The HTML pages, each with a ``<meta name="livedesk-gateways">`` naming the gateway
    origins its ``?gw=`` may choose from (the server's list, so a link cannot send the
    page's socket and token to a server of the link author's choosing). Read off the event
    loop; kept after the first request, except with ``--dev`` (edit a page, reload)."""

    def __init__(self, web_root, origins: tuple[str, ...], keep: bool = True,
                 auth_mode: str = "signin"):
        self.web_root = web_root
        self.keep = keep
        meta = html.escape(" ".join(origins), quote=True)
        # "dev": staff pages take demo identities (/api/dev/token); "signin": staff pages
        # need a sign-in session and exchange it for socket tokens (docs/accounts.md)
        self.meta = (f'<meta name="livedesk-gateways" content="{meta}">'
                     f'<meta name="livedesk-auth" content="{html.escape(auth_mode)}">')
        self.cache: dict[str, bytes] = {}

    def _render(self, name: str) -> bytes:
        text = (self.web_root / name).read_text(encoding="utf-8")
        anchor = '<meta charset="utf-8">' if '<meta charset="utf-8">' in text else "<head>"
        at = text.find(anchor)
        if at >= 0:
            at += len(anchor)
            text = f"{text[:at]}\n  {self.meta}{text[at:]}"
        return text.encode("utf-8")

    async def body(self, name: str) -> bytes:
        body = self.cache.get(name)
        if body is None:
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(None, self._render, name)
            if self.keep:
                self.cache[name] = body
        return body

    def handler(self, name: str):
        async def serve(request: web.Request) -> web.Response:
            return web.Response(body=await self.body(name), content_type="text/html",
                                charset="utf-8", headers={"Cache-Control": "no-cache"})
        return serve


def setup_routes(app: web.Application, gw: Gateway) -> None:
    app.middlewares.append(request_context(gw.config.node_id))  # ids + span (outermost)
    app.middlewares.append(error_middleware)
    web_root = gw.config.web_root
    app[BODY_TIMEOUT] = gw.config.http_body_timeout_s
    security = SecurityHeaders.from_config(gw.config)
    security.install(app)
    pages = Pages(web_root, security.gateway_origins, keep=not gw.config.dev,
                  auth_mode="dev" if gw.config.dev else "signin")

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
        """Demo tokens for any role: only with ``--dev``, only to a direct loopback client.
        A request a proxy forwarded (any of ``PROXY_HEADERS``) is refused: the documented
        layout puts a reverse proxy on the same host in front of 127.0.0.1, and through it
        "loopback" would mean "anyone on the internet"."""
        forwarded = [h for h in PROXY_HEADERS if h in request.headers]
        if forwarded or not _from_loopback(request):
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                "dev tokens are handed out only to direct loopback clients, "
                                "never through a proxy"
                                + (f" (request carries {', '.join(forwarded)})" if forwarded
                                   else ""))
        q = request.query
        role = q.get("role", "viewer")
        if role not in ROLES:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"role must be one of {ROLES}")
        ttl = _dev_ttl(q.get("ttl"))
        user = _dev_query(q, "user") or f"{role}-{__import__('secrets').token_hex(3)}"
        room = _dev_query(q, "room")
        if role in ("viewer", "host") and room is None:
            room = gw.rooms.ids()[0] if gw.rooms.ids() else None
        token = gw.tokens.issue(user, role, room=room, name=_dev_query(q, "name"), ttl_s=ttl)
        return web.json_response({"token": token, "user": user, "role": role, "room": room},
                                 headers={"Cache-Control": "no-store"})

    async def rooms(request):
        return json_body({"rooms": [
            {"id": r.id, "title": r.knowledge.room.title, "host": r.knowledge.room.host}
            for r in gw.rooms]})

    async def post_order(request):
        room = shop_room(gw, request, bearer_claims(gw, request, ("service",)))
        outcome = await gw.rooms_service.place_order(room, await read_json(request))
        if outcome.status != 200:
            return json_error(ErrorCode(outcome.body["error"]), outcome.body["message"],
                              **{k: v for k, v in outcome.body.items()
                                 if k not in ("error", "message")})
        return web.json_response(outcome.body)

    async def post_notice(request):
        room = shop_room(gw, request, bearer_claims(gw, request, ("service",)))
        return web.json_response(await gw.workspace.notices.post(room, await read_json(request)))

    async def get_dashboard(request):
        bearer_claims(gw, request, ("admin",))
        return json_body(gw.workspace.dashboard.event().to_wire())

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/ws", gw.endpoint.handle)
    app.router.add_get("/api/rooms", rooms)
    app.router.add_post("/api/rooms/{room}/orders", post_order)
    app.router.add_post("/api/rooms/{room}/notices", post_notice)
    app.router.add_get("/api/dashboard", get_dashboard)
    if gw.config.dev:
        app.router.add_get("/api/dev/token", dev_token)
    app.router.add_get("/", pages.handler("index.html"))
    for name in ("agent", "host", "dashboard", "admin", "login", "history"):
        if (web_root / f"{name}.html").exists():
            app.router.add_get(f"/{name}", pages.handler(f"{name}.html"))
    if (web_root / "favicon.svg").exists():
        # browsers ask for /favicon.ico on every page that names none: answer with the SVG
        # (no 404 in every page load's log)
        async def favicon(request):
            return web.FileResponse(web_root / "favicon.svg",
                                    headers={"Content-Type": "image/svg+xml",
                                             "Cache-Control": "public, max-age=86400"})
        app.router.add_get("/favicon.ico", favicon)
    if web_root.exists():
        app.router.add_static("/static/", web_root, show_index=False)
