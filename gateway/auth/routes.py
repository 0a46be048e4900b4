"""The auth plane's HTTP endpoints (names are contracts, docs/accounts.md):

* ``GET /.well-known/jwks.json``: the gateway's public keys (``kid``, ``EdDSA``/``Ed25519``).
* ``POST /api/auth/login`` ``{"user", "password"}`` → 200 and the session cookie; 401
  ``unauthenticated`` (wrong password or unknown user, same answer); 429 ``rate_limited``.
* ``POST /api/auth/token`` (cookie) → ``{"token", "expires_at", "role"}``; optional body
  ``{"role", "room"}`` to pick one of the account's roles and rooms.
* ``POST /api/auth/logout`` (cookie) → the session is revoked and the cookie cleared.
* ``GET /api/admin/users`` (admin bearer token): accounts with their lockout state;
  ``POST /api/admin/users`` adds one; ``PATCH /api/admin/users/{user}`` disables, enables,
  changes roles or resets the password (the admin page's accounts section).

Single sign-on (browser navigations, so not under ``/api``): ``GET /auth/oidc`` says whether
it is on; ``GET /auth/oidc/start?next=PATH`` goes to the provider; ``GET /auth/oidc/callback``
comes back, signs in and goes on to ``next`` (or to /login with the reason in words).

CSRF: the cookie is ``SameSite=Lax`` (never sent on a cross-site POST) *and* every cookie
endpoint requires ``Content-Type: application/json``, which a cross-site form cannot send
and a cross-site script can only send after a CORS preflight this gateway never answers.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from gateway.http_api import bearer_claims, json_body, json_error, read_json
from gateway.rest_bodies import LoginRequest, TokenRequest, parse
from gateway.store.accounts import Account, Failures
from signaling import ErrorCode, ProtocolError

from . import admin as A
from .oidc import STATE_COOKIE, STATE_TTL_S, OidcError
from .signin import SignedIn, SignIn, Throttled

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


def local_path(value: str | None) -> str | None:
    """A ``next`` to go back to: a path on this origin only (never ``//host`` or a URL)."""
    if not value or len(value) > 512 or not value.startswith("/") or value[1:2] in ("/", "\\"):
        return None
    return value if value.isprintable() else None


HOME = {"agent": "/agent", "host": "/host", "supervisor": "/admin", "admin": "/admin"}


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _set_session(resp: web.StreamResponse, done: SignedIn, secure: bool) -> None:
    resp.set_cookie(COOKIE, done.cookie, max_age=int(done.expires_at - time.time()),
                    path="/", httponly=True, samesite="Lax", secure=secure)
    resp.headers["Cache-Control"] = "no-store"


def _listed(a: Account, f: Failures | None) -> dict[str, Any]:
    """An account as the admin page lists it: never its hash; its lockout state."""
    now = time.time()
    locked = f is not None and f.locked_until > now
    return {**A.account_wire(a), "failed_logins": f.failures if f else 0, "locked": locked,
            "locked_until": int(f.locked_until) if f and locked else None}


def setup_auth_routes(app: web.Application, gw: Gateway) -> None:
    async def jwks(request: web.Request) -> web.Response:
        return web.json_response(gw.auth.state.jwks(),
                                 headers={"Cache-Control": "public, max-age=60"})

    async def login(request: web.Request) -> web.Response:
        _json_only(request)
        signin = _signin(gw)
        req = parse(LoginRequest, await read_json(request))
        user, password = req.user, req.password
        address = gw.endpoint.config.client_address(request.remote, request.headers)
        try:
            done = await signin.login(user, password, address)
        except Throttled as e:  # the page says "try again in N min": it needs the N
            resp = json_error(e.code, e.message, retry_after=e.retry_after_s)
            resp.headers["Retry-After"] = str(e.retry_after_s)
            return resp
        resp = json_body({"user": done.account.id, "name": done.account.name,
                          "roles": list(done.account.roles),
                          "expires_at": int(done.expires_at)})
        _set_session(resp, done, _secure(gw, request))
        return resp

    async def token(request: web.Request) -> web.Response:
        _json_only(request)
        signin = _signin(gw)
        req = parse(TokenRequest, await read_json(request) if request.can_read_body else {})
        t = await signin.socket_token(request.cookies.get(COOKIE), role=req.role,
                                      room=req.room)
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
        fails = await store.all_failures("user:")
        return json_body({"users": [_listed(a, fails.get(f"user:{a.id}"))
                                    for a in await store.accounts()]})

    async def admin_add_user(request: web.Request) -> web.Response:
        bearer_claims(gw, request, ADMINS)
        store = _signin(gw).store
        body = await read_json(request)
        try:
            a = await A.add_user(store, A.new_account_from(body))
        except A.AdminError as e:
            raise ProtocolError(e.code, str(e)) from None
        gw.auth.state.note_account(a.id, a.epoch, a.disabled, revoked=False)
        return web.json_response(_listed(a, None), status=201,
                                 dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def admin_change_user(request: web.Request) -> web.Response:
        claims = bearer_claims(gw, request, ADMINS)
        store = _signin(gw).store
        user = request.match_info["user"]
        try:
            change = A.change_from(await read_json(request))
        except A.AdminError as e:
            raise ProtocolError(e.code, str(e)) from None
        if user == claims.user and (change.disabled or (change.roles is not None
                                                        and "admin" not in change.roles)):
            raise ProtocolError(ErrorCode.CONFLICT,
                                "you cannot disable your own account or drop your own admin "
                                "role here (another admin, or `livedesk user` on the host, can)")
        try:
            a = await A.apply_change(store, user, change)
        except A.AdminError as e:
            raise ProtocolError(e.code, str(e)) from None
        # every earlier token and session of the account is refused here at once (other
        # nodes: at their refresh), and its live sockets are closed on every node
        gw.auth.state.note_account(a.id, a.epoch, a.disabled, revoked=True)
        fails = await store.failures([f"user:{a.id}"])
        return json_body(_listed(a, fails.get(f"user:{a.id}")))

    async def oidc_info(request: web.Request) -> web.Response:
        return web.json_response({"enabled": gw.auth.oidc is not None},
                                 headers={"Cache-Control": "no-store"})

    async def oidc_start(request: web.Request) -> web.StreamResponse:
        oidc = gw.auth.oidc
        if oidc is None:
            raise web.HTTPNotFound()
        try:
            started = await oidc.start(local_path(request.query.get("next")))
        except (OidcError, OSError, ValueError) as e:
            return _sso_failed(str(e) if isinstance(e, OidcError) else
                               "the provider cannot be reached")
        resp = _redirect(started.url)
        resp.set_cookie(STATE_COOKIE, started.cookie, max_age=STATE_TTL_S, path="/auth/oidc",
                        httponly=True, samesite="Lax", secure=_secure(gw, request))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def oidc_callback(request: web.Request) -> web.StreamResponse:
        oidc = gw.auth.oidc
        if oidc is None:
            raise web.HTTPNotFound()
        try:
            account, next_path = await oidc.finish(request.query,
                                                   request.cookies.get(STATE_COOKIE))
        except OidcError as e:
            return _sso_failed(str(e))
        except (OSError, ValueError, aiohttp.ClientError) as e:
            return _sso_failed(f"the provider cannot be reached ({type(e).__name__})")
        done = await _signin(gw).start_session(account)
        resp = _redirect(local_path(next_path) or HOME.get(account.roles[0], "/agent"))
        _set_session(resp, done, _secure(gw, request))
        resp.del_cookie(STATE_COOKIE, path="/auth/oidc")
        return resp

    def _sso_failed(message: str) -> web.StreamResponse:
        resp = _redirect("/login?" + urlencode({"reason": "sso_failed",
                                                "detail": message[:200]}))
        resp.del_cookie(STATE_COOKIE, path="/auth/oidc")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    app.router.add_get("/auth/oidc", oidc_info)
    app.router.add_get("/auth/oidc/start", oidc_start)
    app.router.add_get("/auth/oidc/callback", oidc_callback)
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_post("/api/auth/login", login)
    app.router.add_post("/api/auth/token", token)
    app.router.add_post("/api/auth/logout", logout)
    app.router.add_get("/api/admin/users", admin_users)
    app.router.add_post("/api/admin/users", admin_add_user)
    app.router.add_patch("/api/admin/users/{user}", admin_change_user)
