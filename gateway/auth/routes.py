"""The auth plane's HTTP endpoints (names are contracts, docs/accounts.md):

* ``GET /.well-known/jwks.json``: the gateway's public keys (``kid``, ``EdDSA``/``Ed25519``).
* ``POST /api/auth/login`` ``{"user", "password"}`` → 200 and the session cookie; 401
  ``unauthenticated`` (wrong password or unknown user, same answer); 429 ``rate_limited``.
* ``POST /api/auth/token`` (cookie) → ``{"token", "expires_at", "role"}``; optional body
  ``{"role", "room"}`` to pick one of the account's roles and rooms.
* ``POST /api/auth/logout`` (cookie) → the session is revoked and the cookie cleared.
* ``GET /api/admin/users`` (admin bearer token): accounts with their lockout state.

CSRF: the cookie is ``SameSite=Lax`` (never sent on a cross-site POST) *and* every cookie
endpoint requires ``Content-Type: application/json``, which a cross-site form cannot send
and a cross-site script can only send after a CORS preflight this gateway never answers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.http_api import bearer_claims, json_body, read_json
from signaling import ErrorCode, ProtocolError

from .signin import MAX_USER_CHARS, SignIn

if TYPE_CHECKING:
    from gateway.wiring import Gateway

COOKIE = "livedesk_session"
ADMINS = ("admin",)


def _signin(gw: Gateway) -> SignIn:
    if gw.auth.signin is None:
        raise ProtocolError(ErrorCode.UNAVAILABLE,
                            "this gateway keeps no accounts: start it with a store "
                            "(--data-dir or LIVEDESK_DATABASE_URL)")
    return gw.auth.signin


def _json_only(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            "send Content-Type: application/json (a defence against "
                            "cross-site requests)")


def _secure(gw: Gateway, request: web.Request) -> bool:
    return request.secure or gw.config.public_url.startswith("https://")


def _text(body: dict, name: str, max_chars: int, required: bool = True) -> str | None:
    v = body.get(name)
    if v is None and not required:
        return None
    if type(v) is not str or not v or len(v) > max_chars:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"{name!r} must be a string of 1–{max_chars} characters")
    return v


def setup_auth_routes(app: web.Application, gw: Gateway) -> None:
    async def jwks(request: web.Request) -> web.Response:
        return web.json_response(gw.auth.state.jwks(),
                                 headers={"Cache-Control": "public, max-age=60"})

    async def login(request: web.Request) -> web.Response:
        _json_only(request)
        signin = _signin(gw)
        body = await read_json(request)
        user = _text(body, "user", MAX_USER_CHARS)
        password = body.get("password")
        if type(password) is not str:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "'password' must be a string")
        assert user is not None
        address = gw.endpoint.config.client_address(request.remote, request.headers)
        done = await signin.login(user, password, address)
        resp = json_body({"user": done.account.id, "name": done.account.name,
                          "roles": list(done.account.roles),
                          "expires_at": int(done.expires_at)})
        resp.set_cookie(COOKIE, done.cookie, max_age=int(done.expires_at - time.time()),
                        path="/", httponly=True, samesite="Lax",
                        secure=_secure(gw, request))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def token(request: web.Request) -> web.Response:
        _json_only(request)
        signin = _signin(gw)
        body = await read_json(request) if request.can_read_body else {}
        t = await signin.socket_token(request.cookies.get(COOKIE),
                                      role=_text(body, "role", 32, required=False),
                                      room=_text(body, "room", 256, required=False))
        return web.json_response({"token": t.token, "expires_at": t.expires_at,
                                  "role": t.role}, headers={"Cache-Control": "no-store"})

    async def logout(request: web.Request) -> web.Response:
        _json_only(request)
        signin = _signin(gw)
        ended = await signin.logout(request.cookies.get(COOKIE))
        resp = web.json_response({"signed_out": ended}, headers={"Cache-Control": "no-store"})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def admin_users(request: web.Request) -> web.Response:
        bearer_claims(gw, request, ADMINS)
        store = _signin(gw).store
        now = time.time()
        fails = await store.all_failures("user:")
        out: list[dict[str, Any]] = []
        for a in await store.accounts():
            f = fails.get(f"user:{a.id}")
            locked = f is not None and f.locked_until > now
            out.append({"user": a.id, "name": a.name, "roles": list(a.roles),
                        "rooms": list(a.rooms), "capacity": a.capacity,
                        "max_compensation": a.max_compensation, "skills": list(a.skills),
                        "disabled": a.disabled, "failed_logins": f.failures if f else 0,
                        "locked": locked,
                        "locked_until": int(f.locked_until) if f and locked else None})
        return json_body({"users": out})

    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_post("/api/auth/login", login)
    app.router.add_post("/api/auth/token", token)
    app.router.add_post("/api/auth/logout", logout)
    app.router.add_get("/api/admin/users", admin_users)
