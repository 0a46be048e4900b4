"""Anonymous viewers of an embedded widget: an identity bound to the browser by a signed
cookie, for shops that allow it (``livedesk shop add --anonymous``), and the harder limits
they live under.

Why a cookie and not the page's storage: the identity must be something the page's script
cannot read or copy (``HttpOnly``), so a script injected into the shop's page cannot lift a
viewer's conversation history and replay it elsewhere. The cookie holds only a random
browser id and its HMAC; the viewer id is derived from it per shop
(``~anon:<shop>:<browser id>``: a shop's signed identities are ``<shop>:<sub>`` and a shop id
cannot start with ``~``, so no shop can vouch for an anonymous viewer's id, and two shops
never share one). The gateway then mints an ordinary short-lived viewer token for that id,
bound to the room, which the widget sends in ``hello`` like a shop-signed one.

Why harder limits: whoever clears the cookie is a new viewer, so an anonymous identity costs
nothing to make. Per client address (``AnonymousLimits``, docs/embedding.md): at most
``new_per_address_per_hour`` new identities and ``tokens_per_address_per_minute`` tokens;
beyond, ``rate_limited``. Counted per node, in memory (a bounded table).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from gateway.store.accounts import Shop
from signaling import ErrorCode, ProtocolError

COOKIE = "livedesk_anon"
USER_PREFIX = "~anon:"
BROWSER_ID_CHARS = 22  # secrets.token_urlsafe(16): 128 bits


@dataclass(frozen=True)
class AnonymousLimits:
    new_per_address_per_hour: int = 20
    tokens_per_address_per_minute: int = 30
    token_ttl_s: int = 600
    cookie_max_age_s: int = 30 * 86400
    tracked_addresses: int = 100_000  # the counters' table is bounded (oldest dropped)


@dataclass(frozen=True)
class Admitted:
    """An anonymous viewer let in: its gateway id, and the cookie to (re)set."""

    user: str
    name: str
    shop: str
    cookie: str
    new: bool  # no valid cookie came with the request: a new browser identity


class _Window:
    """Fixed-window counters per key, in a bounded table (least recently used dropped)."""

    def __init__(self, limit: int, window_s: float, capacity: int) -> None:
        self.limit = limit
        self.window_s = window_s
        self.capacity = capacity
        self.counts: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def take(self, key: str, now: float) -> bool:
        start, n = self.counts.pop(key, (now, 0))
        if now - start >= self.window_s:
            start, n = now, 0
        ok = n < self.limit
        self.counts[key] = (start, n + 1 if ok else n)
        while len(self.counts) > self.capacity:
            self.counts.popitem(last=False)
        return ok


def shops_of_room(shops: dict[str, Shop], room: str, shop: str | None = None) -> list[Shop]:
    """The shops whose pages may embed ``room`` (only ``shop`` when named)."""
    return [s for s in shops.values() if room in s.rooms and (shop is None or s.id == shop)]


class AnonymousIdentities:
    def __init__(self, cookie_key: bytes, limits: AnonymousLimits | None = None) -> None:
        self.key = cookie_key
        self.limits = limits or AnonymousLimits()
        lim = self.limits
        self._new = _Window(lim.new_per_address_per_hour, 3600.0, lim.tracked_addresses)
        self._tokens = _Window(lim.tokens_per_address_per_minute, 60.0, lim.tracked_addresses)

    @classmethod
    def from_secret(cls, secret: str, limits: AnonymousLimits | None = None
                    ) -> AnonymousIdentities:
        """Keyed by the operator's secret (the same on every node), through its own label so
        the cookie MAC can never be mistaken for a token signature."""
        key = hmac.new(secret.encode(), b"livedesk anonymous viewer cookie v1",
                       hashlib.sha256).digest()
        return cls(key, limits)

    def _mac(self, browser: str) -> str:
        return hmac.new(self.key, browser.encode(), hashlib.sha256).hexdigest()[:32]

    def cookie_value(self, browser: str) -> str:
        return f"{browser}.{self._mac(browser)}"

    def browser_id(self, cookie: str | None) -> str | None:
        """The browser id of a valid cookie; None for a missing, malformed or forged one."""
        if not cookie or len(cookie) > 100 or "." not in cookie:
            return None
        browser, mac = cookie.rsplit(".", 1)
        if len(browser) != BROWSER_ID_CHARS or not hmac.compare_digest(mac, self._mac(browser)):
            return None
        return browser

    def admit(self, shops: dict[str, Shop], room: str, shop_id: str | None,
              cookie: str | None, address: str, now: float | None = None) -> Admitted:
        """Let a viewer without the shop's identity into ``room``, or say why not:
        ``not_found`` (no shop embeds that room), ``bad_request`` (several do: name one),
        ``forbidden`` (the shop does not admit anonymous viewers: sign in on its site),
        ``rate_limited`` (this address made too many)."""
        now = time.time() if now is None else now
        candidates = shops_of_room(shops, room, shop_id)
        if not candidates:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no shop embeds room {room[:64]!r}"
                                + (f" as {shop_id[:32]!r}" if shop_id else ""))
        if len(candidates) > 1:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"several shops embed room {room[:64]!r}: name one (data-shop)")
        shop = candidates[0]
        if not shop.anonymous:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"shop {shop.id!r} does not admit anonymous viewers: sign in "
                                f"on the shop's site")
        if not self._tokens.take(address, now):
            raise ProtocolError(ErrorCode.RATE_LIMITED,
                                f"more than {self.limits.tokens_per_address_per_minute} "
                                f"anonymous identities a minute from your address; retry later")
        browser = self.browser_id(cookie)
        new = browser is None
        if browser is None:
            if not self._new.take(address, now):
                raise ProtocolError(ErrorCode.RATE_LIMITED,
                                    f"more than {self.limits.new_per_address_per_hour} new "
                                    f"anonymous viewers an hour from your address; retry later")
            browser = secrets.token_urlsafe(16)
        return Admitted(user=f"{USER_PREFIX}{shop.id}:{browser}", name=f"guest-{browser[:4]}",
                        shop=shop.id, cookie=self.cookie_value(browser), new=new)


def is_anonymous(user: str) -> bool:
    return user.startswith(USER_PREFIX)
