"""Accounts, sign-in sessions, signing keys, shops and sign-in failures in the durable store
(migration 3; a shop's ``anonymous`` flag: migration 6). SQL only: the rules (who may sign in, what a key may mint) are in
:mod:`gateway.auth`. Every query is written once with ``?`` and runs on SQLite and
PostgreSQL alike through :class:`~gateway.store.database.Database`.

Writes go straight to the database, not through the store's group-commit queue: they are
rare (an operator's command, a sign-in), must be visible to other nodes and to the CLI at
once, and the CLI works on the database while a server runs on it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from .database import Database, Stmt


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    roles: tuple[str, ...]
    rooms: tuple[str, ...] = ()
    capacity: int | None = None
    max_compensation: float | None = None
    skills: tuple[str, ...] = ()
    disabled: bool = False
    password_hash: str = field(default="", repr=False)
    epoch: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class SessionRow:
    ref: str  # public id carried by tokens (``sid``); the cookie's value is never stored
    account: str
    epoch: int
    created_at: float
    expires_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class KeyRow:
    kid: str
    alg: str
    private_key: str = field(repr=False)  # PEM (PKCS#8)
    public_x: str  # base64url raw public key (the JWK ``x``)
    created_at: float
    retired_at: float | None  # no longer the signer since
    expires_at: float | None  # refused from then on (end of the overlap)


@dataclass(frozen=True)
class Shop:
    id: str
    rooms: tuple[str, ...]
    origins: tuple[str, ...]
    secret: str = field(repr=False)
    created_at: float = 0.0
    updated_at: float = 0.0
    anonymous: bool = False  # its embedded widget admits viewers without its identity


@dataclass(frozen=True)
class Failures:
    key: str  # "user:<id>" or "addr:<client address>"
    failures: int
    first_at: float
    locked_until: float


_ACCOUNT_COLS = ("id, name, roles, rooms, capacity, max_compensation, skills, disabled, "
                 "password_hash, epoch, created_at, updated_at")


def _account(r: tuple) -> Account:
    return Account(id=r[0], name=r[1], roles=tuple(json.loads(r[2])),
                   rooms=tuple(json.loads(r[3])), capacity=r[4],
                   max_compensation=None if r[5] is None else float(r[5]),
                   skills=tuple(json.loads(r[6])), disabled=bool(r[7]), password_hash=r[8],
                   epoch=int(r[9]), created_at=float(r[10]), updated_at=float(r[11]))


class AccountStore:
    """The auth tables of one database (opened and migrated by the caller)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- accounts ----------------------------------------------------------------------------
    async def add_account(self, a: Account) -> bool:
        """Insert ``a``; False when the id is taken (nothing changed)."""
        now = time.time()
        n = await self.db.transact([Stmt(
            f"INSERT INTO accounts ({_ACCOUNT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (id) DO NOTHING",
            (a.id, a.name, json.dumps(list(a.roles)), json.dumps(list(a.rooms)), a.capacity,
             None if a.max_compensation is None else float(a.max_compensation),
             json.dumps(list(a.skills)), int(a.disabled), a.password_hash, a.epoch, now, now))])
        return n[0] == 1

    async def account(self, user: str) -> Account | None:
        rows = await self.db.fetch(f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE id = ?", (user,))
        return _account(rows[0]) if rows else None

    async def accounts(self) -> list[Account]:
        return [_account(r) for r in await self.db.fetch(
            f"SELECT {_ACCOUNT_COLS} FROM accounts ORDER BY id")]

    async def epochs(self) -> dict[str, tuple[int, bool]]:
        """Every account's (epoch, disabled): what token checks need, small enough to poll."""
        return {r[0]: (int(r[1]), bool(r[2])) for r in await self.db.fetch(
            "SELECT id, epoch, disabled FROM accounts")}

    async def update_account(self, user: str, *, disabled: bool | None = None,
                             roles: tuple[str, ...] | None = None,
                             password_hash: str | None = None) -> Account | None:
        """Change an account and move its epoch on (every earlier token and session of it
        is refused from then on); its sessions are revoked too. None: unknown account."""
        now = time.time()
        sets: list[str] = ["epoch = epoch + 1", "updated_at = ?"]
        args: list[object] = [now]
        if disabled is not None:
            sets.append("disabled = ?")
            args.append(int(disabled))
        if roles is not None:
            sets.append("roles = ?")
            args.append(json.dumps(list(roles)))
        if password_hash is not None:
            sets.append("password_hash = ?")
            args.append(password_hash)
        stmts = [Stmt(f"UPDATE accounts SET {', '.join(sets)} WHERE id = ?", (*args, user)),
                 Stmt("UPDATE auth_sessions SET revoked_at = ? WHERE account = ? AND "
                      "revoked_at IS NULL", (now, user))]
        if password_hash is not None:  # a new password lifts the lockout
            stmts.append(Stmt("DELETE FROM login_failures WHERE key = ?", (f"user:{user}",)))
        counts = await self.db.transact(stmts)
        return await self.account(user) if counts[0] else None

    # --- sessions ----------------------------------------------------------------------------
    async def add_session(self, id_hash: str, ref: str, account: str, epoch: int,
                          ttl_s: float) -> SessionRow:
        now = time.time()
        await self.db.transact([
            Stmt("DELETE FROM auth_sessions WHERE expires_at < ?", (now - 86400.0,)),
            Stmt("INSERT INTO auth_sessions (id_hash, ref, account, epoch, created_at, "
                 "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                 (id_hash, ref, account, epoch, now, now + ttl_s))])
        return SessionRow(ref, account, epoch, now, now + ttl_s, None)

    async def session(self, id_hash: str) -> SessionRow | None:
        rows = await self.db.fetch(
            "SELECT ref, account, epoch, created_at, expires_at, revoked_at FROM auth_sessions "
            "WHERE id_hash = ?", (id_hash,))
        if not rows:
            return None
        r = rows[0]
        return SessionRow(r[0], r[1], int(r[2]), float(r[3]), float(r[4]),
                          None if r[5] is None else float(r[5]))

    async def revoke_session(self, id_hash: str) -> bool:
        n = await self.db.transact([Stmt(
            "UPDATE auth_sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL",
            (time.time(), id_hash))])
        return n[0] == 1

    async def revoked_sessions(self, since: float) -> dict[str, str]:
        """Session ref → account of sessions revoked since ``since`` (their tokens may still
        be unexpired)."""
        return {r[0]: r[1] for r in await self.db.fetch(
            "SELECT ref, account FROM auth_sessions WHERE revoked_at IS NOT NULL AND "
            "revoked_at >= ?", (since,))}

    # --- signing keys ------------------------------------------------------------------------
    async def keys(self) -> list[KeyRow]:
        """Every key not expired, the current signer (newest not retired) last."""
        rows = await self.db.fetch(
            "SELECT kid, alg, private_key, public_x, created_at, retired_at, expires_at "
            "FROM auth_keys WHERE expires_at IS NULL OR expires_at > ? "
            "ORDER BY created_at, kid", (time.time(),))
        return [KeyRow(r[0], r[1], r[2], r[3], float(r[4]),
                       None if r[5] is None else float(r[5]),
                       None if r[6] is None else float(r[6])) for r in rows]

    async def add_key(self, key: KeyRow, retire_others_overlap_s: float | None) -> None:
        """Store ``key``; with an overlap, every other live key stops signing now and is
        refused after ``overlap`` seconds (a rotation). Without, it is added as is (first
        key of a store)."""
        now = time.time()
        stmts = []
        if retire_others_overlap_s is not None:
            stmts.append(Stmt(
                "UPDATE auth_keys SET retired_at = ?, expires_at = CASE WHEN expires_at IS NULL "
                "OR expires_at > ? THEN ? ELSE expires_at END WHERE retired_at IS NULL",
                (now, now + retire_others_overlap_s, now + retire_others_overlap_s)))
        stmts.append(Stmt(
            "INSERT INTO auth_keys (kid, alg, private_key, public_x, created_at, retired_at, "
            "expires_at) VALUES (?, ?, ?, ?, ?, NULL, NULL)",
            (key.kid, key.alg, key.private_key, key.public_x, key.created_at)))
        await self.db.transact(stmts)

    # --- shops -------------------------------------------------------------------------------
    async def put_shop(self, shop: Shop) -> None:
        now = time.time()
        await self.db.transact([Stmt(
            "INSERT INTO shops (id, rooms, origins, secret, created_at, updated_at, anonymous) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "rooms = excluded.rooms, origins = excluded.origins, secret = excluded.secret, "
            "updated_at = excluded.updated_at, anonymous = excluded.anonymous",
            (shop.id, json.dumps(list(shop.rooms)), json.dumps(list(shop.origins)),
             shop.secret, now, now, int(shop.anonymous)))])

    async def shops(self) -> list[Shop]:
        return [Shop(r[0], tuple(json.loads(r[1])), tuple(json.loads(r[2])), r[3],
                     float(r[4]), float(r[5]), bool(r[6])) for r in await self.db.fetch(
            "SELECT id, rooms, origins, secret, created_at, updated_at, anonymous FROM shops "
            "ORDER BY id")]

    # --- sign-in failures --------------------------------------------------------------------
    async def failures(self, keys: list[str]) -> dict[str, Failures]:
        if not keys:
            return {}
        marks = ", ".join("?" for _ in keys)
        return {r[0]: Failures(r[0], int(r[1]), float(r[2]), float(r[3]))
                for r in await self.db.fetch(
                    f"SELECT key, failures, first_at, locked_until FROM login_failures "
                    f"WHERE key IN ({marks})", keys)}

    async def all_failures(self, prefix: str) -> dict[str, Failures]:
        return {r[0]: Failures(r[0], int(r[1]), float(r[2]), float(r[3]))
                for r in await self.db.fetch(
                    "SELECT key, failures, first_at, locked_until FROM login_failures "
                    "WHERE key LIKE ?", (prefix + "%",))}

    async def count_failure(self, limits: dict[str, int], window_s: float,
                            lockout_s: float) -> None:
        """One more failure for each key of ``limits`` (key → failures that lock it), in one
        transaction: a count older than ``window_s`` starts again; reaching the limit locks
        the key for ``lockout_s``."""
        now = time.time()
        # forget counts that can no longer lock anything (keeps the table small: every
        # failed sign-in, unknown user ids included, leaves a row)
        stmts = [Stmt("DELETE FROM login_failures WHERE first_at < ? AND locked_until < ?",
                      (now - window_s, now))]
        for key, limit in limits.items():
            stmts.append(Stmt(
                "INSERT INTO login_failures (key, failures, first_at, locked_until) "
                "VALUES (?, 1, ?, 0) ON CONFLICT (key) DO UPDATE SET "
                "failures = CASE WHEN login_failures.first_at < ? THEN 1 "
                "ELSE login_failures.failures + 1 END, "
                "first_at = CASE WHEN login_failures.first_at < ? THEN excluded.first_at "
                "ELSE login_failures.first_at END",
                (key, now, now - window_s, now - window_s)))
            stmts.append(Stmt(
                "UPDATE login_failures SET locked_until = ? WHERE key = ? AND failures >= ? "
                "AND locked_until < ?", (now + lockout_s, key, limit, now)))
        await self.db.transact(stmts)

    async def clear_failures(self, key: str) -> None:
        await self.db.transact([Stmt("DELETE FROM login_failures WHERE key = ?", (key,))])
