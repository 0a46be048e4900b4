"""Tokens: who a socket or an HTTP caller is, proven by an HS256 JWT.

The gateway never stores users; a shop's backend (or ``livedesk token``) mints short-lived
tokens with the shared secret. Claims are ``sub`` (user id), ``role``, ``room`` (optional:
binds a viewer, host or service to one room), ``name`` (display) and ``exp``.

Every claim is checked for its type, not only for being there: a ``room`` of ``""`` or
``0`` used to read as "no room" (any room) for code that tests ``if claims.room``, and a
numeric *string* ``exp`` was accepted because the JWT library converts it. ``sub`` and
``name`` are shown to other people, so they pass the same text rule as every inbound string
(:func:`signaling.inbound.clean_text`) and are bounded.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import ErrorCode, ProtocolError
from .inbound import clean_text
from .protocol import ROLES

ALGORITHM = "HS256"
MAX_SUB_CHARS = 128
MAX_ROOM_CHARS = 256
MAX_NAME_CHARS = 64


@dataclass(frozen=True)
class Claims:
    user: str
    role: str
    room: str | None = None
    name: str | None = None
    exp: int | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.user


class TokenAuthority:
    """Mints and verifies tokens with one secret. Passed down from config, never global."""

    def __init__(self, secret: str, leeway_s: float = 5.0):
        if not secret:
            raise ValueError("token secret must not be empty")
        self._secret = secret
        self._leeway = leeway_s

    def issue(self, user: str, role: str, room: str | None = None, name: str | None = None,
              ttl_s: int = 3600) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        claims = {"sub": user, "role": role, "exp": int(time.time()) + int(ttl_s)}
        if room:
            claims["room"] = room
        if name:
            claims["name"] = name
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        try:
            c = jwt.decode(token, self._secret, algorithms=[ALGORITHM], leeway=self._leeway,
                           options={"require": ["sub", "role", "exp"]})
        except jwt.ExpiredSignatureError:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token has expired") from None
        except jwt.InvalidTokenError as e:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, f"invalid token: {e}") from None
        if c.get("role") not in ROLES:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, f"token role must be one of {ROLES}")
        exp = c.get("exp")
        if not (type(exp) is int or type(exp) is float) or not math.isfinite(exp):
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token 'exp' must be a number")
        user = _claim_text(c, "sub", MAX_SUB_CHARS)
        room = _claim_text(c, "room", MAX_ROOM_CHARS) if "room" in c else None
        # a display name may be left empty (null or ""): the user id is shown instead
        name = _claim_text(c, "name", MAX_NAME_CHARS) if c.get("name") not in (None, "") \
            else None
        return Claims(user=user, role=c["role"], room=room, name=name, exp=int(exp))


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
