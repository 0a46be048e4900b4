"""Password sign-in, sign-in sessions and the socket tokens they are exchanged for.

* ``login``: the account's Argon2 hash checked in a thread; throttled per account *and* per
  client address (failures counted in the store, so every node sees them): after
  ``login_max_failures`` (5) wrong passwords within ``login_lockout_s`` the account is
  locked for ``login_lockout_s``; after ``login_max_failures_per_address`` (20) so is the
  address. A wrong password and an unknown user get the same answer in the same time.
* A session is a random cookie value; the store keeps only its SHA-256, so a copy of the
  database does not sign anyone in. It carries the account's epoch: disabling the account,
  changing its roles or password moves the epoch and ends every session and token.
* ``socket_token``: an EdDSA JWT of at most ``socket_token_ttl_s`` (≤ 600 s) with ``ep`` and
  ``sid``, signed by the gateway's current key.
* ``logout``: the session is revoked in the store and here; its tokens are refused from then
  on (other nodes: at their next refresh, ≤ ``auth_refresh_s``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt

from gateway.store.accounts import Account, AccountStore
from signaling.auth import token_claims
from signaling.errors import ErrorCode, ProtocolError

from .issuers import STAFF_ROLES
from .keys import ALG
from .passwords import verify_password
from .state import AuthState

MAX_SOCKET_TOKEN_TTL_S = 600
MAX_USER_CHARS = 128


@dataclass(frozen=True)
class SignInLimits:
    session_ttl_s: float = 12 * 3600.0
    socket_token_ttl_s: int = MAX_SOCKET_TOKEN_TTL_S
    max_failures: int = 5
    max_failures_per_address: int = 20
    lockout_s: float = 900.0


class Throttled(ProtocolError):
    """``rate_limited`` with the seconds until the lock ends (the 429 body's
    ``retry_after``, so the sign-in page can say "try again in N min")."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(ErrorCode.RATE_LIMITED,
                         f"too many failed sign-ins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SignedIn:
    cookie: str  # the session's secret: goes into the cookie, never stored
    account: Account
    expires_at: float


@dataclass(frozen=True)
class SocketToken:
    token: str
    expires_at: int
    role: str


def session_hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "replace")).hexdigest()


class SignIn:
    def __init__(self, store: AccountStore, state: AuthState, limits: SignInLimits) -> None:
        self.store = store
        self.state = state
        self.limits = limits

    async def login(self, user: str, password: str, address: str) -> SignedIn:
        keys = {f"user:{user}": self.limits.max_failures,
                f"addr:{address}": self.limits.max_failures_per_address}
        now = time.time()
        for f in (await self.store.failures(list(keys))).values():
            if f.locked_until > now:
                raise Throttled(int(f.locked_until - now) + 1)
        account = await self.store.account(user)
        ok = await verify_password(account.password_hash if account else None, password)
        if not ok or account is None or account.disabled:
            await self.store.count_failure(keys, self.limits.lockout_s, self.limits.lockout_s)
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "wrong user or password")
        await self.store.clear_failures(f"user:{user}")
        return await self.start_session(account)

    async def start_session(self, account: Account) -> SignedIn:
        """A new sign-in session for an account whose identity was just proven (a password
        here, an ID token in :mod:`gateway.auth.oidc`)."""
        cookie = secrets.token_urlsafe(32)
        row = await self.store.add_session(session_hash(cookie), secrets.token_hex(8),
                                           account.id, account.epoch, self.limits.session_ttl_s)
        self.state.note_account(account.id, account.epoch, account.disabled, revoked=False)
        return SignedIn(cookie, account, row.expires_at)

    async def _session(self, cookie: str | None) -> tuple[Account, str]:
        """The account and session ref of a live session cookie."""
        if not cookie or len(cookie) > 256:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "not signed in")
        row = await self.store.session(session_hash(cookie))
        if row is None or row.revoked_at is not None or row.expires_at <= time.time():
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "not signed in (session ended)")
        account = await self.store.account(row.account)
        if account is None or account.disabled or account.epoch != row.epoch:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED,
                                "not signed in (the account changed since)")
        return account, row.ref

    async def socket_token(self, cookie: str | None, role: str | None = None,
                           room: str | None = None) -> SocketToken:
        account, ref = await self._session(cookie)
        roles = [r for r in account.roles if r in STAFF_ROLES]
        role = role or (roles[0] if roles else None)
        if role is None or role not in roles:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"this account may act as {roles}, not {role!r}")
        if room is not None and room not in account.rooms:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"this account has no room {room[:64]!r}")
        if room is None and role == "host" and account.rooms:
            room = account.rooms[0]
        ttl = min(int(self.limits.socket_token_ttl_s), MAX_SOCKET_TOKEN_TTL_S)
        claims = token_claims(account.id, role, room, account.name or None, ttl,
                              ep=account.epoch, sid=ref)
        key = self.state.signer()
        self.state.note_account(account.id, account.epoch, account.disabled, revoked=False)
        token = jwt.encode(claims, key.private, algorithm=ALG, headers={"kid": key.kid})
        return SocketToken(token, claims["exp"], role)

    async def logout(self, cookie: str | None) -> bool:
        if not cookie or len(cookie) > 256:
            return False
        h = session_hash(cookie)
        row = await self.store.session(h)
        if row is None:
            return False
        await self.store.revoke_session(h)
        self.state.note_revoked_session(row.ref, row.account)
        return True
