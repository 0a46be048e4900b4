"""Tokens: who a socket or an HTTP caller is, proven by an HS256 JWT.

The gateway never stores users; a shop's backend (or ``livedesk token``) mints short-lived
tokens with the shared secret. Claims are ``sub`` (user id), ``role``, ``room`` (optional:
binds a viewer, host or service to one room), ``name`` (display) and ``exp``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from .errors import ErrorCode, ProtocolError
from .protocol import ROLES

ALGORITHM = "HS256"


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
        if not isinstance(c.get("sub"), str) or not c["sub"]:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token 'sub' must be a non-empty string")
        return Claims(user=c["sub"], role=c["role"], room=c.get("room"), name=c.get("name"),
                      exp=c.get("exp"))
