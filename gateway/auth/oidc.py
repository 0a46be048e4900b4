"""Single sign-on through an OpenID Connect provider: authorization code flow with PKCE.

The pieces, each a standard's:

* **Discovery**: ``<issuer>/.well-known/openid-configuration`` gives the authorization and
  token endpoints and the ``jwks_uri``; its ``issuer`` must be the configured one exactly.
* **Start** (``GET /auth/oidc/start``): a fresh ``state``, ``nonce`` and PKCE
  ``code_verifier`` (S256 challenge, authlib's RFC 7636 helper) are kept in a short-lived
  cookie (``HttpOnly``, ``SameSite=Lax``, HMAC-signed with a key derived from the operator's
  secret, so any node can read it and nobody can forge it); the browser goes to the
  provider.
* **Callback** (``GET /auth/oidc/callback``): ``state`` must match the cookie's; the code is
  exchanged at the token endpoint with the client secret and the ``code_verifier`` (the
  provider refuses a verifier that does not match its challenge); the ID token is verified
  with the provider's JWKS (signature with the key its ``kid`` names, ``iss``, ``aud`` =
  our client id, ``exp``, ``iat``, and ``nonce`` = the cookie's; joserfc, authlib's JOSE
  layer). A tampered token fails the signature.
* **Account**: named by ``oidc_user_claim`` (default ``email``); its roles are the
  provider's groups (``oidc_groups_claim``) mapped through ``oidc_role_map`` at every
  sign-in (the provider is the authority: a role taken away there is taken away here, which
  ends the account's other sessions). No mapped role: refused. An account that does not
  exist is created (``oidc_create_accounts``, default on) without a usable password, so it
  can only sign in through the provider; a disabled account is refused.

Every failure is an :class:`OidcError` whose message the sign-in page shows; none carries a
token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.config import Config
from gateway.store.accounts import Account, AccountStore

from .admin import ID_RE
from .issuers import STAFF_ROLES
from .state import AuthState

log = logging.getLogger(__name__)

STATE_COOKIE = "livedesk_oidc"
STATE_TTL_S = 600  # the user has 10 minutes at the provider
HTTP_TIMEOUT_S = 10.0
DISCOVERY_TTL_S = 3600.0
JWKS_MIN_REFETCH_S = 60.0  # an unknown kid refetches the JWKS at most this often
ID_TOKEN_ALGS = ["RS256", "ES256", "PS256", "EdDSA"]
LEEWAY_S = 30
NO_PASSWORD = "!sso"  # not an Argon2 hash: no password ever matches it


class OidcError(Exception):
    """Single sign-on failed; the message is for the sign-in page and the log."""


@dataclass(frozen=True)
class Started:
    url: str  # where the browser goes (the provider's authorization endpoint)
    cookie: str  # the signed state cookie's value


@dataclass(frozen=True)
class Identity:
    user: str
    name: str
    roles: tuple[str, ...]


@dataclass
class _Cache:
    discovery: dict[str, Any] | None = None
    discovery_at: float = 0.0
    jwks: KeySet | None = None
    jwks_at: float = 0.0


@dataclass
class Oidc:
    config: Config
    store: AccountStore
    state: AuthState
    _cache: _Cache = field(default_factory=_Cache)

    @property
    def issuer(self) -> str:
        return self.config.oidc_issuer.rstrip("/")

    def redirect_uri(self) -> str:
        return self.config.public_url.rstrip("/") + "/auth/oidc/callback"

    # --- the state cookie --------------------------------------------------------------------
    def _mac(self, data: bytes) -> str:
        key = hashlib.sha256(b"livedesk-oidc-state:" + self.config.secret.encode()).digest()
        return base64.urlsafe_b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode()

    def _seal(self, state: dict[str, Any]) -> str:
        data = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode())
        return data.decode() + "." + self._mac(data)

    def _open(self, cookie: str | None) -> dict[str, Any]:
        if not cookie or len(cookie) > 2048 or "." not in cookie:
            raise OidcError("the sign-in took too long or started elsewhere; try again")
        data, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(data.encode())):
            raise OidcError("the sign-in state was altered; try again")
        state = json.loads(base64.urlsafe_b64decode(data.encode()))
        if not isinstance(state, dict) or state.get("exp", 0) < time.time():
            raise OidcError("the sign-in took too long; try again")
        return state

    # --- the provider's documents --------------------------------------------------------
    async def _get_json(self, http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
        async with http.get(url) as r:
            if r.status != 200:
                raise OidcError(f"the provider answered {r.status} for {url}")
            body = await r.json(content_type=None)
        if not isinstance(body, dict):
            raise OidcError(f"the provider's {url} is not a JSON object")
        return body

    async def discovery(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        c = self._cache
        if c.discovery is None or time.time() - c.discovery_at > DISCOVERY_TTL_S:
            doc = await self._get_json(http, self.issuer + "/.well-known/openid-configuration")
            if doc.get("issuer", "").rstrip("/") != self.issuer:
                raise OidcError("the provider's discovery document names another issuer")
            for k in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(doc.get(k), str):
                    raise OidcError(f"the provider's discovery document has no {k}")
            c.discovery, c.discovery_at = doc, time.time()
        return c.discovery

    async def _keys(self, http: aiohttp.ClientSession, kid: str | None) -> KeySet:
        """The provider's keys; fetched again for a ``kid`` not seen yet (the provider
        rotated), at most every ``JWKS_MIN_REFETCH_S`` (a flood of made-up kids costs one)."""
        c = self._cache
        known = c.jwks is not None and (kid is None or any(
            getattr(k, "kid", None) == kid for k in c.jwks.keys))
        if c.jwks is None or (not known and time.time() - c.jwks_at > JWKS_MIN_REFETCH_S):
            doc = await self.discovery(http)
            c.jwks = KeySet.import_key_set(await self._get_json(http, doc["jwks_uri"]))  # type: ignore[arg-type]
            c.jwks_at = time.time()
        return c.jwks

    def _client_auth(self) -> str:
        """``client_secret_basic`` (RFC 6749 2.3.1: each part form-encoded first)."""
        pair = (quote_plus(self.config.oidc_client_id) + ":"
                + quote_plus(self.config.oidc_client_secret))
        return "Basic " + base64.b64encode(pair.encode()).decode()

    # --- the flow ------------------------------------------------------------------------
    async def start(self, next_path: str | None) -> Started:
        async with _http() as http:
            doc = await self.discovery(http)
        state, nonce = generate_token(32), generate_token(32)
        verifier = generate_token(64)  # RFC 7636: 43–128 characters of [A-Za-z0-9-._~]
        cookie = self._seal({"state": state, "nonce": nonce, "verifier": verifier,
                             "next": next_path, "exp": int(time.time()) + STATE_TTL_S})
        q = urlencode({"response_type": "code", "client_id": self.config.oidc_client_id,
                       "redirect_uri": self.redirect_uri(), "scope": self.config.oidc_scopes,
                       "state": state, "nonce": nonce,
                       "code_challenge": create_s256_code_challenge(verifier),
                       "code_challenge_method": "S256"})
        sep = "&" if "?" in doc["authorization_endpoint"] else "?"
        return Started(doc["authorization_endpoint"] + sep + q, cookie)

    async def finish(self, query: Any, cookie: str | None) -> tuple[Account, str | None]:
        """The callback: the account signed in, and where the user wanted to go."""
        st = self._open(cookie)
        if query.get("error"):
            raise OidcError(f"the provider refused: {str(query.get('error'))[:64]}")
        code, state = query.get("code"), query.get("state")
        if not code or not state or not hmac.compare_digest(str(state), st["state"]):
            raise OidcError("the provider's answer does not belong to this sign-in")
        async with _http() as http:
            doc = await self.discovery(http)
            async with http.post(doc["token_endpoint"], data={
                    "grant_type": "authorization_code", "code": code,
                    "redirect_uri": self.redirect_uri(), "code_verifier": st["verifier"]},
                    headers={"Authorization": self._client_auth()}) as r:
                body = await r.json(content_type=None)
            if r.status != 200 or not isinstance(body, dict) or "id_token" not in body:
                err = body.get("error") if isinstance(body, dict) else None
                raise OidcError(f"the provider did not issue an ID token ({err or r.status})")
            claims = await self.verify_id_token(http, body["id_token"], st["nonce"])
        account = await self.account_for(self.identity(claims))
        return account, st.get("next")

    async def verify_id_token(self, http: aiohttp.ClientSession, id_token: str,
                              nonce: str) -> dict[str, Any]:
        if not isinstance(id_token, str) or id_token.count(".") != 2:
            raise OidcError("the ID token is not a signed JWT")
        try:
            header = json.loads(base64.urlsafe_b64decode(
                id_token.split(".")[0] + "=" * (-len(id_token.split(".")[0]) % 4)))
            keys = await self._keys(http, header.get("kid"))
            token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGS)
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_S,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.config.oidc_client_id},
                sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError, TypeError) as e:
            log.warning("OIDC: ID token refused: %s", type(e).__name__)
            raise OidcError(f"the ID token was refused ({type(e).__name__})") from None
        aud = token.claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and token.claims.get("azp") != \
                self.config.oidc_client_id:
            raise OidcError("the ID token is for several audiences and not authorized for us")
        return dict(token.claims)

    def identity(self, claims: dict[str, Any]) -> Identity:
        user = claims.get(self.config.oidc_user_claim)
        if not isinstance(user, str) or not ID_RE.fullmatch(user):
            raise OidcError(f"the ID token's {self.config.oidc_user_claim!r} cannot name an "
                            f"account (1–128 letters, digits or _ . @ -)")
        groups = claims.get(self.config.oidc_groups_claim) or []
        if not isinstance(groups, list):
            groups = [groups]
        role_map = self.config.oidc_role_map
        roles = tuple(dict.fromkeys(role_map[g] for g in groups
                                    if isinstance(g, str) and g in role_map))
        roles = tuple(r for r in STAFF_ROLES if r in roles)  # a stable order
        if not roles:
            raise OidcError("none of your groups at the provider gives a role here")
        name = claims.get("name")
        return Identity(user, name[:64] if isinstance(name, str) and name.isprintable() else "",
                        roles)

    async def account_for(self, who: Identity) -> Account:
        a = await self.store.account(who.user)
        if a is None:
            if not self.config.oidc_create_accounts:
                raise OidcError(f"there is no account {who.user!r} here; ask an admin to add it")
            if "host" in who.roles:
                raise OidcError("a host account needs rooms: ask an admin to add it first")
            await self.store.add_account(Account(id=who.user, name=who.name, roles=who.roles,
                                                 password_hash=NO_PASSWORD))
            a = await self.store.account(who.user)
            assert a is not None
            log.info("OIDC: created account %s with roles %s", who.user, who.roles)
        if a.disabled:
            raise OidcError("this account is disabled")
        if a.roles != who.roles:
            if "host" in who.roles and not a.rooms:
                raise OidcError("a host account needs rooms: ask an admin to add them")
            a = await self.store.update_account(a.id, roles=who.roles) or a
            # the roles changed: the account's other sessions and sockets end now, not at the
            # next refresh (which would then also close the socket this sign-in opens)
            self.state.note_account(a.id, a.epoch, a.disabled, revoked=True)
        return a


def _http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))

