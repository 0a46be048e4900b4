"""Tokens: who a socket or an HTTP caller is, proven by a signed JWT.

This module is the *verifier port* of the signaling plane. It knows how to check a token
against a set of keys it is given and what a well-formed claim looks like; it knows nothing
of shops, accounts or which issuer may mint what. Those rules belong to the gateway, which
passes them in as a :class:`KeySet` (keys by ``kid``) and a ``policy`` (a function that
accepts, rewrites or refuses the verified :class:`Claims`).

Three kinds of key reach the verifier (docs/accounts.md):

* the operator's secret (``LIVEDESK_SECRET``, HS256, **no** ``kid``): ``livedesk token``,
  ``/api/dev/token`` and tests; mints any role, held only by the operator;
* the gateway's Ed25519 keys (``EdDSA``, ``kid`` = the key id, published at
  ``/.well-known/jwks.json``): staff socket tokens after sign-in;
* a shop's identity secret (HS256, ``kid`` = the shop id): viewer identities only.

The algorithm is pinned by the key a ``kid`` names, never taken from the token's header, so
an HS256 token cannot be checked against a public key (algorithm confusion) and ``alg:
none`` finds no key at all. Claims are ``sub`` (user id), ``role`` (a key may imply it),
``room`` (optional: binds a viewer, host or service to one room), ``name`` (display),
``exp``, and for staff tokens ``ep`` (the account's revocation epoch) and ``sid`` (the
sign-in session).

Every claim is checked for its type, not only for being there: a ``room`` of ``""`` or
``0`` used to read as "no room" (any room) for code that tests ``if claims.room``, and a
numeric *string* ``exp`` was accepted because the JWT library converts it. ``sub`` and
``name`` are shown to other people, so they pass the same text rule as every inbound string
(:func:`signaling.inbound.clean_text`) and are bounded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import jwt

from .errors import ErrorCode, ProtocolError
from .inbound import clean_text
from .protocol import ROLES

ALGORITHM = "HS256"  # the operator's secret
ALGORITHMS = ("HS256", "EdDSA")  # every algorithm any key may have
SECRET_ISSUER = "secret"
MAX_SUB_CHARS = 128
MAX_ROOM_CHARS = 256
MAX_NAME_CHARS = 64
MAX_KID_CHARS = 128


@dataclass(frozen=True)
class Claims:
    user: str
    role: str
    room: str | None = None
    name: str | None = None
    exp: int | None = None
    # who vouched for this identity: "secret" (the operator's), "gateway" (sign-in), or
    # whatever issuer label the key set gave the key (e.g. "shop:<id>")
    issuer: str = SECRET_ISSUER
    epoch: int | None = None  # ``ep``: the account's revocation epoch when minted
    sid: str | None = None  # the sign-in session the token came from

    @property
    def display_name(self) -> str:
        return self.name or self.user


@dataclass(frozen=True)
class VerifyKey:
    """One key the verifier may check a token with.

    ``alg`` is the only algorithm accepted under this key. ``issuer`` labels the claims it
    verifies (the policy's input). ``role``, when set, is the role every token under this key
    has: a token without a ``role`` claim gets it, one claiming another role is refused (a
    shop's identity tokens carry no role). ``not_after``: refused from then on (the end of a
    rotated key's overlap)."""

    kid: str | None
    alg: str
    key: Any  # HS256: the secret (str/bytes); EdDSA: a public key object
    issuer: str
    role: str | None = None
    not_after: float | None = None


class KeySet(Protocol):
    def lookup(self, kid: str, alg: str) -> VerifyKey | None:
        """The key named ``kid`` for ``alg``, or None (unknown key: refused)."""


Policy = Callable[[Claims, VerifyKey], Claims]


class TokenAuthority:
    """Verifies tokens (and mints with the operator's secret). Passed down from config,
    never global.

    ``keys`` adds keys named by ``kid`` (the gateway's and the shops'); ``policy`` is the
    gateway's rule over the verified claims (which issuer may mint which role and room,
    revocation); without them only secret-signed tokens verify, as before."""

    def __init__(self, secret: str, leeway_s: float = 5.0, keys: KeySet | None = None,
                 policy: Policy | None = None):
        if not secret:
            raise ValueError("token secret must not be empty")
        self._secret = secret
        self._leeway = leeway_s
        self._keys = keys
        self._policy = policy

    def issue(self, user: str, role: str, room: str | None = None, name: str | None = None,
              ttl_s: int = 3600) -> str:
        """A token signed with the operator's secret (service and development use)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        return jwt.encode(token_claims(user, role, room, name, ttl_s), self._secret,
                          algorithm=ALGORITHM)

    def _key(self, token: str) -> VerifyKey:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as e:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, f"invalid token: {e}") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED,
                                f"invalid token: algorithm must be one of {ALGORITHMS}")
        if kid is None:
            if alg != ALGORITHM:
                raise ProtocolError(ErrorCode.UNAUTHENTICATED,
                                    "invalid token: a token without 'kid' must be HS256")
            return VerifyKey(None, ALGORITHM, self._secret, SECRET_ISSUER)
        if type(kid) is not str or not kid or len(kid) > MAX_KID_CHARS:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED,
                                "invalid token: 'kid' must be a short non-empty string")
        key = self._keys.lookup(kid, alg) if self._keys is not None else None
        if key is None:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED,
                                f"invalid token: unknown key {kid[:64]!r} for {alg}")
        if key.not_after is not None and time.time() > key.not_after:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED,
                                f"invalid token: key {kid[:64]!r} has been retired")
        return key

    def verify(self, token: str) -> Claims:
        if type(token) is not str:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token must be a string")
        key = self._key(token)
        required = ["sub", "exp"] if key.role else ["sub", "role", "exp"]
        try:
            c = jwt.decode(token, key.key, algorithms=[key.alg], leeway=self._leeway,
                           options={"require": required})
        except jwt.ExpiredSignatureError:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token has expired") from None
        except jwt.InvalidTokenError as e:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, f"invalid token: {e}") from None
        role = c.get("role", key.role)
        if key.role is not None and role != key.role:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED,
                                f"this key vouches only for role {key.role!r}")
        if role not in ROLES:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, f"token role must be one of {ROLES}")
        exp = c.get("exp")
        if not (type(exp) is int or type(exp) is float) or not math.isfinite(exp):
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token 'exp' must be a number")
        user = _claim_text(c, "sub", MAX_SUB_CHARS)
        room = _claim_text(c, "room", MAX_ROOM_CHARS) if "room" in c else None
        # a display name may be left empty (null or ""): the user id is shown instead
        name = _claim_text(c, "name", MAX_NAME_CHARS) if c.get("name") not in (None, "") \
            else None
        ep = c.get("ep")
        if ep is not None and type(ep) is not int:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token 'ep' must be an integer")
        sid = _claim_text(c, "sid", MAX_SUB_CHARS) if "sid" in c else None
        claims = Claims(user=user, role=role, room=room, name=name, exp=int(exp),
                        issuer=key.issuer, epoch=ep, sid=sid)
        return self._policy(claims, key) if self._policy is not None else claims


def token_claims(user: str, role: str | None, room: str | None = None,
                 name: str | None = None, ttl_s: int = 3600, **extra: Any) -> dict[str, Any]:
    """The JWT payload of a token (``role`` None: the key implies it)."""
    claims: dict[str, Any] = {"sub": user, "exp": int(time.time()) + int(ttl_s)}
    if role is not None:
        claims["role"] = role
    if room:
        claims["room"] = room
    if name:
        claims["name"] = name
    claims.update({k: v for k, v in extra.items() if v is not None})
    return claims


def with_user(claims: Claims, user: str) -> Claims:
    """``claims`` for another user id (a policy namespacing an issuer's ids)."""
    return replace(claims, user=user)


def _claim_text(c: dict[str, Any], key: str, max_chars: int) -> str:
    """A string claim that must be present here: non-empty, valid text, bounded."""
    v = c.get(key)
    if type(v) is not str or not v:
        raise ProtocolError(ErrorCode.UNAUTHENTICATED,
                            f"token {key!r} must be a non-empty string")
    try:
        return clean_text(v, f"token {key!r}", max_chars)
    except ProtocolError as e:
        raise ProtocolError(ErrorCode.UNAUTHENTICATED, e.message) from None
