"""What every token check on this node needs, in memory, refreshed from the store.

The verifier runs synchronously on each ``hello`` and each REST call, so it cannot ask the
database. This object holds the gateway's signing keys, the shops' identity secrets and
every account's revocation epoch and disabled flag, plus the sign-in sessions revoked in
the last ``REVOKED_WINDOW_S``; :meth:`refresh` reloads them all every ``auth_refresh_s``
(2 s by default), so a key rotated by ``livedesk keys rotate``, a shop added by ``livedesk
shop add`` or an account disabled on another node is seen here within that time. The node
that makes a change applies it here at once.

Without a store the node makes one key at start and has no accounts and no shops: staff
tokens then die with the process (docs/accounts.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from gateway.store.accounts import AccountStore, KeyRow, Shop
from signaling.auth import VerifyKey
from signaling.events import Events

from .events import AccountRevoked
from .keys import ALG, SigningKey, new_key

log = logging.getLogger(__name__)

GATEWAY_ISSUER = "gateway"
SHOP_ISSUER_PREFIX = "shop:"
# staff tokens live ≤ 600 s: a session revoked longer ago than this has no live token left
REVOKED_WINDOW_S = 900.0
# the reasons of AccountRevoked: pages show them in words (web/js/i18n.js "revoked.*")
SIGNED_OUT = "signed out"
ACCOUNT_CHANGED = "account changed"


@dataclass
class AuthState:
    events: Events | None = None
    keys: dict[str, SigningKey] = field(default_factory=dict)
    signer_kid: str | None = None
    shops: dict[str, Shop] = field(default_factory=dict)
    epochs: dict[str, tuple[int, bool]] = field(default_factory=dict)  # user → (epoch, disabled)
    revoked: dict[str, float] = field(default_factory=dict)  # session ref → when seen
    refreshed_at: float = 0.0

    # --- the key set the verifier is given (signaling.auth.KeySet) --------------------------
    def lookup(self, kid: str, alg: str) -> VerifyKey | None:
        if alg == ALG:
            k = self.keys.get(kid)
            if k is None:
                return None
            return VerifyKey(kid, ALG, k.public, GATEWAY_ISSUER, not_after=k.row.expires_at)
        if alg == "HS256":
            shop = self.shops.get(kid)
            if shop is None:
                return None
            return VerifyKey(kid, "HS256", shop.secret, SHOP_ISSUER_PREFIX + shop.id,
                             role="viewer")
        return None

    def signer(self) -> SigningKey:
        if self.signer_kid is None:
            raise RuntimeError("no signing key loaded")
        return self.keys[self.signer_kid]

    def jwks(self) -> dict:
        now = time.time()
        return {"keys": [k.jwk() for k in self.keys.values()
                         if k.row.expires_at is None or k.row.expires_at > now]}

    # --- loading -----------------------------------------------------------------------------
    def set_keys(self, rows: list[KeyRow]) -> None:
        keys = {}
        for r in rows:  # a key loaded before is kept unless its row changed (retired since)
            old = self.keys.get(r.kid)
            keys[r.kid] = old if old is not None and old.row == r else SigningKey.load(r)
        live = [r for r in rows if r.retired_at is None]
        self.keys = keys
        self.signer_kid = (max(live, key=lambda r: (r.created_at, r.kid)).kid if live
                           else self.signer_kid if self.signer_kid in keys else None)

    def set_epochs(self, epochs: dict[str, tuple[int, bool]]) -> set[str]:
        """Load every account's epoch; returns the users revoked since the last load."""
        old = self.epochs
        self.epochs = epochs
        return {user for user, (ep, disabled) in epochs.items()
                if (before := old.get(user)) is not None
                and (ep > before[0] or (disabled and not before[1]))}

    def note_account(self, user: str, epoch: int, disabled: bool, revoked: bool) -> None:
        """A change made on this node: applied at once (others see it at their refresh)."""
        self.epochs[user] = (epoch, disabled)
        if revoked:
            self.publish_revoked(user, ACCOUNT_CHANGED)

    def note_revoked_session(self, ref: str, user: str, publish: bool = True) -> bool:
        """Whether ``ref`` is newly revoked here."""
        if ref in self.revoked:
            return False
        self.revoked[ref] = time.time()
        if publish:
            self.publish_revoked(user, SIGNED_OUT, ref)
        return True

    def publish_revoked(self, user: str, reason: str, session: str | None = None) -> None:
        if self.events is not None:
            self.events.publish(AccountRevoked(user, reason, session))


class AuthRefresher:
    """Keeps an :class:`AuthState` in step with the store (one task per node)."""

    def __init__(self, state: AuthState, store: AccountStore | None, every_s: float) -> None:
        self.state = state
        self.store = store
        self.every_s = every_s
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self.store is None:
            row = new_key()  # no store: a key for this process only
            self.state.set_keys([row])
            return
        if not any(r.retired_at is None for r in await self.store.keys()):
            await self.store.add_key(new_key(), retire_others_overlap_s=None)
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="auth-refresh")

    async def refresh(self) -> None:
        assert self.store is not None
        keys = await self.store.keys()
        shops = await self.store.shops()
        # revoked sessions before epochs: an account change revokes its sessions and moves
        # its epoch in one transaction, so whatever revocation this read sees, the epoch read
        # after it sees too, and the sockets close as "account changed". Read the other way
        # round, a change committed between the two reads looked like a sign-out.
        revoked = await self.store.revoked_sessions(time.time() - REVOKED_WINDOW_S)
        epochs = await self.store.epochs()
        self.state.set_keys(keys)
        self.state.shops = {s.id: s for s in shops}
        changed = self.state.set_epochs(epochs)
        signed_out = sorted((user, ref) for ref, user in revoked.items()
                            if self.state.note_revoked_session(ref, user, publish=False))
        for user in sorted(changed):  # one event per changed account and refresh
            self.state.publish_revoked(user, ACCOUNT_CHANGED)
        for user, ref in signed_out:  # (an account changed too: its sockets are closed already)
            if user not in changed:
                self.state.publish_revoked(user, SIGNED_OUT, ref)
        cutoff = time.time() - REVOKED_WINDOW_S - 60
        self.state.revoked = {r: t for r, t in self.state.revoked.items()
                              if t >= cutoff or r in revoked}
        self.state.refreshed_at = time.time()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.refresh()
            except Exception:  # keep the last known state; say so
                log.exception("auth refresh from the store failed; keeping the last state")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
