"""The embed's HTTP surface (docs/embedding.md): what a shop's page and the widget's iframe
ask the gateway for. Names are contracts.

* ``GET /widget.js``: the script a shop's page loads (``<script src=…/widget.js
  data-room=… async>``). Public, cacheable for a few minutes.
* ``GET /embed?room=R[&shop=S]``: the page the widget's iframe shows. Its
  ``frame-ancestors`` is the room's shop's registered origins (``'none'`` if it has none), so
  only those sites can frame it; the same list is written into the page (a
  ``livedesk-embed`` meta) for its ``postMessage`` origin check.
* ``GET /api/embed/config?room=R[&shop=S]`` → ``{room, anonymous}``: what the widget script
  asks before it shows the launcher. CORS: ``Access-Control-Allow-Origin`` is the caller's
  ``Origin`` when that origin is in the room's shop's list, and absent otherwise (the browser
  then refuses the answer: the script says the page's origin is not allowed).
* ``POST /api/embed/anonymous`` ``{room, shop?}`` → ``{token, expires_at, user}`` plus the
  anonymous viewer cookie (:mod:`gateway.auth.anonymous`). Same-origin only (the iframe):
  a request carrying another ``Origin`` is refused, and it must be
  ``Content-Type: application/json`` (which no cross-site form can send).

No token is ever taken from or put into a URL here: the anonymous token travels in a JSON
body (``Cache-Control: no-store``), the shop's identity by ``postMessage``.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from typing import TYPE_CHECKING

from aiohttp import web

from signaling import ErrorCode, ProtocolError
from signaling.inbound import clean_text

from .auth.anonymous import COOKIE, shops_of_room
from .http_api import Pages, json_body, read_json
from .http_headers import SecurityHeaders

if TYPE_CHECKING:
    from .store.accounts import Shop
    from .wiring import Gateway

EMBED_PAGE = "embed.html"
WIDGET_SCRIPT = "widget.js"
MAX_ROOM_CHARS = 256
MAX_SHOP_CHARS = 32


def _param(value: object, name: str, max_chars: int, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if type(value) is not str or not value:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{name!r} is required (text)")
    return clean_text(value, name, max_chars)


def _origin_of(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


class Embedding:
    """Which shop pages may embed which room: read from the auth plane's shops (refreshed
    from the store every ``auth_refresh_s``), never cached here."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def room(self, query_room: object) -> str:
        room = _param(query_room, "room", MAX_ROOM_CHARS)
        assert room is not None
        if self.gw.rooms.get(room) is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown room {room[:64]!r}")
        return room

    def shops(self, room: str, shop: str | None) -> list[Shop]:
        return shops_of_room(self.gw.auth.state.shops, room, shop)

    def origins(self, room: str, shop: str | None) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o for s in self.shops(room, shop) for o in s.origins))


def setup_embed_routes(app: web.Application, gw: Gateway) -> None:
    embedding = Embedding(gw)
    # the embed page like the other pages (its gateways meta), headers by the app's
    # SecurityHeaders (installed by http_api.setup_routes), framing per request
    pages = Pages(gw.config.web_root, SecurityHeaders.from_config(gw.config).gateway_origins,
                  keep=not gw.config.dev)
    web_root = gw.config.web_root
    script: dict[str, bytes] = {}

    async def widget_js(request: web.Request) -> web.Response:
        body = script.get(WIDGET_SCRIPT)
        if body is None:
            body = await asyncio.get_running_loop().run_in_executor(
                None, (web_root / WIDGET_SCRIPT).read_bytes)
            if not gw.config.dev:
                script[WIDGET_SCRIPT] = body
        return web.Response(body=body, content_type="application/javascript", charset="utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

    async def embed_page(request: web.Request) -> web.Response:
        room = embedding.room(request.query.get("room"))
        shop = _param(request.query.get("shop"), "shop", MAX_SHOP_CHARS, required=False)
        shops = embedding.shops(room, shop)
        origins = embedding.origins(room, shop)
        SecurityHeaders.frame_only_by(request, origins)
        meta = json.dumps({"room": room, "shop": shops[0].id if len(shops) == 1 else None,
                           "origins": list(origins),
                           "anonymous": len(shops) == 1 and shops[0].anonymous},
                          ensure_ascii=False)
        tag = f'<meta name="livedesk-embed" content="{html.escape(meta, quote=True)}">'
        text = (await pages.body(EMBED_PAGE)).decode("utf-8")
        at = text.find("</head>")
        body = f"{text[:at]}  {tag}\n{text[at:]}" if at >= 0 else text
        return web.Response(body=body.encode("utf-8"), content_type="text/html",
                            charset="utf-8", headers={"Cache-Control": "no-cache"})

    async def embed_config(request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        room = embedding.room(request.query.get("room"))
        shop = _param(request.query.get("shop"), "shop", MAX_SHOP_CHARS, required=False)
        shops = embedding.shops(room, shop)
        origins = embedding.origins(room, shop)
        resp = json_body({"room": room, "shop": shops[0].id if len(shops) == 1 else None,
                          "anonymous": len(shops) == 1 and shops[0].anonymous})
        resp.headers["Vary"] = "Origin"
        if origin is not None and origin in origins:
            resp.headers["Access-Control-Allow-Origin"] = origin
        return resp

    async def anonymous(request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        own = {_origin_of(request), gw.config.public_url.rstrip("/")}
        if origin is not None and origin not in own:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                "anonymous identities are handed out to the widget's own "
                                "frame only")
        if request.content_type != "application/json":
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                "send Content-Type: application/json (a defence against "
                                "cross-site requests)")
        body = await read_json(request)
        room = embedding.room(body.get("room"))
        shop = _param(body.get("shop"), "shop", MAX_SHOP_CHARS, required=False)
        address = gw.endpoint.config.client_address(request.remote, request.headers)
        who = gw.auth.anonymous.admit(gw.auth.state.shops, room, shop,
                                      request.cookies.get(COOKIE), address)
        ttl = gw.auth.anonymous.limits.token_ttl_s
        token = gw.tokens.issue(who.user, "viewer", room=room, name=who.name, ttl_s=ttl)
        resp = web.json_response({"token": token, "expires_at": int(time.time()) + ttl,
                                  "user": who.user, "shop": who.shop, "new": who.new},
                                 headers={"Cache-Control": "no-store"})
        set_anonymous_cookie(resp, who.cookie, gw.auth.anonymous.limits.cookie_max_age_s)
        return resp

    app.router.add_get("/widget.js", widget_js)
    app.router.add_get("/embed", embed_page)
    app.router.add_get("/api/embed/config", embed_config)
    app.router.add_post("/api/embed/anonymous", anonymous)


def set_anonymous_cookie(resp: web.Response, value: str, max_age_s: int) -> None:
    """``SameSite=None; Secure`` so the browser sends it from inside a shop's page (a
    cross-site frame); ``Partitioned`` (CHIPS) so browsers that block third-party cookies
    keep it anyway, keyed by the shop's site — the identity is then per shop site, which is
    what it is for. ``HttpOnly``: no script reads it. Path: the one endpoint that reads it.
    Chromium treats http://127.0.0.1 and http://localhost as secure, so this works on
    loopback without TLS (docs/embedding.md, "Cookies")."""
    # written by hand: Python 3.11's http.cookies knows no Partitioned attribute (the
    # value is ours: base64url and hex, nothing to quote)
    resp.headers.add("Set-Cookie", f"{COOKIE}={value}; Max-Age={int(max_age_s)}; "
                                   f"Path=/api/embed/; HttpOnly; Secure; SameSite=None; "
                                   f"Partitioned")
