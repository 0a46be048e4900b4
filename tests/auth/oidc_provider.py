"""An OpenID Connect provider for tests, on loopback: authlib's authorization server (the
protocol, not a stub) behind a small aiohttp front.

* ``GET /.well-known/openid-configuration``: the discovery document;
* ``GET /jwks``: its RS256 public key (``kid``);
* ``GET /authorize``: the authorization endpoint (response_type=code; PKCE ``S256``
  challenge and ``nonce`` *required*). There is no login form: the test says beforehand who
  "signs in" at the provider (:attr:`next_user`), and consent is implied;
* ``POST /token``: the token endpoint (``client_secret_basic`` or ``client_secret_post``);
  authlib checks the code, the redirect URI and the PKCE ``code_verifier`` against the
  challenge, and signs an ID token (iss, aud, exp, iat, nonce, sub, name, groups).

``tamper_next_id_token``: the next ID token's payload is changed after signing (its
``groups`` claim), as an attacker on the path would; the gateway must refuse it.

Test support, not product. Only 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    JsonPayload,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey

# authlib refuses http:// URIs unless told: this provider lives on loopback only
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


@dataclass
class User:
    sub: str
    name: str = ""
    email: str = ""
    groups: tuple[str, ...] = ()


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    scope: str = "openid profile email groups"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))
    expires_at: float = field(default_factory=lambda: time.time() + 60)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class _Payload(OAuth2Payload):
    def __init__(self, data: dict[str, str]):
        self._data = data

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:  # type: ignore[override]
        return {k: [v] for k, v in self._data.items()}


class _Request(OAuth2Request):
    """An aiohttp request read up front (authlib's server is synchronous)."""

    def __init__(self, method: str, url: str, headers: Any, args: dict[str, str],
                 form: dict[str, str]):
        super().__init__(method, url, headers=headers)
        self._args, self._form = args, form
        self.payload = _Payload({**args, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class Provider:
    """One provider on 127.0.0.1:``port``; ``await start()``, ``await stop()``."""

    def __init__(self, port: int):
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-" + secrets.token_hex(4),
                                                         "use": "sig", "alg": "RS256"})
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.nonces: set[tuple[str, str]] = set()
        self.users: dict[str, User] = {}
        self.next_user: str | None = None
        self.tamper_next_id_token = False
        self.token_requests: list[dict[str, Any]] = []  # (status, error) per /token call
        self.server = self._authorization_server()
        self._runner: web.AppRunner | None = None

    # --- the test's knobs -------------------------------------------------------------------
    def add_client(self, client_id: str, redirect_uri: str) -> str:
        secret = secrets.token_urlsafe(24)
        self.clients[client_id] = Client(client_id, secret, (redirect_uri,))
        return secret

    def add_user(self, sub: str, name: str = "", groups: tuple[str, ...] = ()) -> None:
        self.users[sub] = User(sub, name, sub if "@" in sub else f"{sub}@example.test", groups)

    # --- authlib's server, with the framework glue ------------------------------------------
    def _authorization_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):
            def query_client(self, client_id: str) -> Client | None:
                return provider.clients.get(client_id)

            def save_token(self, token: dict, request: OAuth2Request) -> None:
                return None  # access tokens are not used by the gateway

            def create_oauth2_request(self, request: Any) -> OAuth2Request:
                return request

            def create_json_request(self, request: Any) -> JsonRequest:
                r = JsonRequest(request.method, request.uri, request.headers)
                r.payload = JsonPayload()
                return r

            def handle_response(self, status: int, body: Any, headers: Any) -> web.Response:
                h = dict(headers)
                if isinstance(body, dict):
                    h["Content-Type"] = "application/json"
                    body = json.dumps(body)
                h.pop("Content-Length", None)
                return web.Response(status=status, text=body or "", headers=h)

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                return None

        class Grant(AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                p = request.payload
                provider.nonces.add((p.client_id, p.data.get("nonce")))
                provider.codes[code] = Code(
                    code=code, client_id=p.client_id, redirect_uri=p.redirect_uri,
                    scope=request.scope or p.scope, user=request.user, nonce=p.data.get("nonce"),
                    code_challenge=p.data.get("code_challenge"),
                    code_challenge_method=p.data.get("code_challenge_method"))

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                c = provider.codes.get(code)
                if c is None or c.client_id != client.client_id or c.expires_at < time.time():
                    return None
                return c

            def delete_authorization_code(self, authorization_code: Code) -> None:
                provider.codes.pop(authorization_code.code, None)  # single use

            def authenticate_user(self, authorization_code: Code) -> User:
                return authorization_code.user

        class OpenID(OpenIDCode):
            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict:
                return {"alg": "RS256", "kid": provider.key.kid}

            def get_client_claims(self, client: Client) -> dict:
                return {"iss": provider.issuer, "aud": [client.client_id],
                        "exp": int(time.time()) + 300}

            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                # a nonce already bound to an issued code is a replay
                return (request.payload.client_id, nonce) in provider.nonces

            def generate_user_info(self, user: User, scope: str) -> UserInfo:
                info = UserInfo(sub=user.sub, name=user.name)
                if "email" in scope:
                    info["email"] = user.email
                if "groups" in scope:
                    info["groups"] = list(user.groups)
                return info

        server = Server(scopes_supported=["openid", "profile", "email", "groups"])
        server.register_token_generator("default", BearerTokenGenerator(
            lambda *a, **k: secrets.token_urlsafe(32)))
        server.register_grant(Grant, [CodeChallenge(required=True), OpenID(require_nonce=True)])
        return server

    # --- HTTP --------------------------------------------------------------------------------
    async def _request(self, r: web.Request) -> _Request:
        form = {k: str(v) for k, v in (await r.post()).items()} if r.method == "POST" else {}
        return _Request(r.method, str(r.url), r.headers, dict(r.query), form)

    async def discovery(self, r: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "name", "email", "groups", "nonce"],
        })

    async def jwks(self, r: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, r: web.Request) -> web.Response:
        req = await self._request(r)
        if r.query.get("code_challenge_method") != "S256" or not r.query.get("code_challenge"):
            return web.json_response({"error": "invalid_request",
                                      "error_description": "PKCE S256 is required"}, status=400)
        user = self.users.get(self.next_user or "")
        if user is None:
            return web.Response(status=403, text="nobody signs in at the provider")
        try:
            grant = self.server.get_consent_grant(req, end_user=user)
        except Exception as e:  # an OAuth2Error: shown, never redirected to an unchecked URI
            return web.json_response({"error": getattr(e, "error", "invalid_request"),
                                      "error_description": str(e)}, status=400)
        return self.server.create_authorization_response(req, grant_user=user, grant=grant)

    async def token(self, r: web.Request) -> web.Response:
        req = await self._request(r)
        resp = self.server.create_token_response(req)
        body = json.loads(resp.text) if resp.text else {}
        self.token_requests.append({"status": resp.status, "error": body.get("error")})
        if resp.status == 200 and self.tamper_next_id_token and "id_token" in body:
            self.tamper_next_id_token = False
            head, payload, sig = body["id_token"].split(".")
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            claims["groups"] = ["livedesk-admins"]  # promote, keep the signature
            payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            body["id_token"] = f"{head}.{payload}.{sig}"
            return web.json_response(body, headers={"Cache-Control": "no-store"})
        return resp

    async def start(self) -> Provider:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def authorize_url(self, **params: str) -> str:
        return f"{self.issuer}/authorize?{urlencode(params)}"
