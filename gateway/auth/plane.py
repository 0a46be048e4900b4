"""The auth plane of one node, built once by :mod:`gateway.wiring`: the in-memory key set
and revocation state, its refresher, the issuer rules, anonymous viewers of embedded widgets
and, with a store, password sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Config
from gateway.store.accounts import AccountStore
from gateway.store.database import Database
from signaling.events import Events

from .anonymous import AnonymousIdentities
from .issuers import IssuerRules
from .oidc import Oidc
from .signin import SignIn, SignInLimits
from .state import AuthRefresher, AuthState


@dataclass
class AuthPlane:
    state: AuthState
    rules: IssuerRules
    refresher: AuthRefresher
    accounts: AccountStore | None  # None: no store, so no accounts and no shops
    signin: SignIn | None
    anonymous: AnonymousIdentities
    oidc: Oidc | None = None  # single sign-on, when an OIDC provider is configured

    async def start(self) -> None:
        await self.refresher.start()

    async def close(self) -> None:
        await self.refresher.close()


def limits_of(config: Config) -> SignInLimits:
    return SignInLimits(session_ttl_s=config.session_ttl_s,
                        socket_token_ttl_s=config.socket_token_ttl_s,
                        max_failures=config.login_max_failures,
                        max_failures_per_address=config.login_max_failures_per_address,
                        lockout_s=config.login_lockout_s)


def build_auth(config: Config, events: Events, db: Database | None) -> AuthPlane:
    state = AuthState(events=events)
    accounts = AccountStore(db) if db is not None else None
    signin = SignIn(accounts, state, limits_of(config)) if accounts is not None else None
    oidc = Oidc(config, accounts, state) if accounts is not None and config.oidc_issuer else None
    return AuthPlane(state=state, rules=IssuerRules(state),
                     refresher=AuthRefresher(state, accounts, config.auth_refresh_s),
                     accounts=accounts, signin=signin, oidc=oidc,
                     anonymous=AnonymousIdentities.from_secret(config.secret))
