"""The one rule of who may mint what: applied to every verified token (the ``policy`` the
gateway gives :class:`signaling.auth.TokenAuthority`).

* **The operator's secret** (``issuer "secret"``: ``livedesk token``, ``/api/dev/token``,
  tests): any role, any room. It never leaves the operator (docs/accounts.md).
* **The gateway's keys** (``"gateway"``: minted by ``POST /api/auth/token`` after sign-in):
  staff roles only (``STAFF_ROLES``); the account must exist, be enabled and still be at
  the token's epoch (``ep``), and the sign-in session (``sid``) must not be signed out.
* **A shop's secret** (``"shop:<id>"``): a viewer, in one of that shop's rooms, nothing
  else. The viewer id becomes ``<shop>:<sub>``, so two shops can never name the same
  viewer (and so never read each other's viewers' conversations).

Every refusal is a typed ``forbidden`` (or ``unauthenticated`` for a revoked token): a
socket gets the error and close 4401, a REST call 401/403.
"""

from __future__ import annotations

from signaling.auth import MAX_SUB_CHARS, SECRET_ISSUER, Claims, VerifyKey, with_user
from signaling.errors import ErrorCode, ProtocolError

from .state import GATEWAY_ISSUER, SHOP_ISSUER_PREFIX, AuthState

STAFF_ROLES = ("agent", "host", "supervisor", "admin")
SHOP_ROLE = "viewer"


def viewer_id(shop: str, sub: str) -> str:
    """The gateway's id of a shop's viewer (one namespace per shop)."""
    return f"{shop}:{sub}"


class IssuerRules:
    def __init__(self, state: AuthState) -> None:
        self.state = state

    def __call__(self, claims: Claims, key: VerifyKey) -> Claims:
        if claims.issuer == SECRET_ISSUER:
            return claims
        if claims.issuer == GATEWAY_ISSUER:
            return self._staff(claims)
        if claims.issuer.startswith(SHOP_ISSUER_PREFIX):
            return self._shop(claims, claims.issuer[len(SHOP_ISSUER_PREFIX):])
        raise ProtocolError(ErrorCode.FORBIDDEN, "tokens of this issuer are not accepted")

    def _staff(self, c: Claims) -> Claims:
        if c.role not in STAFF_ROLES:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"the gateway's keys mint only staff roles {STAFF_ROLES}")
        known = self.state.epochs.get(c.user)
        if known is None or c.epoch is None or c.sid is None:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token revoked: unknown account")
        epoch, disabled = known
        if disabled:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token revoked: account disabled")
        if c.epoch != epoch:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED,
                                "token revoked: the account changed since; sign in again")
        if c.sid in self.state.revoked:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "token revoked: signed out")
        return c

    def _shop(self, c: Claims, shop_id: str) -> Claims:
        shop = self.state.shops.get(shop_id)
        if shop is None:  # removed since the key was looked up
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, f"unknown shop {shop_id!r}")
        if c.role != SHOP_ROLE:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"a shop's identity token can only be a viewer, not {c.role!r}")
        if c.room is None:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                "a shop's identity token must name one of the shop's rooms")
        if c.room not in shop.rooms:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"room {c.room[:64]!r} is not one of shop {shop_id!r}'s rooms")
        user = viewer_id(shop_id, c.user)
        if len(user) > MAX_SUB_CHARS:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"viewer id too long: shop id and 'sub' together must be at "
                                f"most {MAX_SUB_CHARS - 1} characters")
        return with_user(c, user)
