"""Commerce data: the adapter interface to a shop's orders, logistics, returns and payouts.

Owns the seam between LiveDesk and the shop. :class:`CommerceAdapter` is the interface
(JSON-shaped dicts, documented in ``docs/commerce-adapter.md``); there are two
implementations: :class:`DemoCommerceAdapter` (fixture data shipped in
``gateway/demo/commerce_demo.json``, plus orders placed through the room's order endpoint)
and :class:`HttpCommerceAdapter` (a shop's own API: base URL + bearer token, with timeouts).

:class:`ViewerOrders` is the per-viewer cache of "orders with their logistics state" that
the sync parts of the gateway (the handoff context, the after-sale bot) read without
waiting; it is filled asynchronously (on the first viewer message, on escalation, on
``context.get``) and bounded in size and age.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)

COMPENSATION_KINDS = ("coupon", "refund", "gift")


class CommerceError(Exception):
    """The shop's API failed or answered something outside the contract."""


class CommerceAdapter(Protocol):
    async def orders(self, user: str) -> list[dict[str, Any]]:
        """The viewer's orders, newest first: ``{order_id, user, room?, sku, name, qty,
        amount, currency?, status, placed_at}``."""

    async def order(self, order_id: str) -> dict[str, Any] | None:
        """One order (with its owner ``user``), or None if unknown."""

    async def logistics(self, order_id: str) -> dict[str, Any] | None:
        """``{status, courier, tracking_no, eta, updated_at, last_event?}`` or None."""

    async def create_return(self, order_id: str, reason: str) -> dict[str, Any]:
        """Start a return: ``{return_id, status}``."""

    async def compensate(self, user: str, kind: str, amount: float, reason: str,
                         conversation: str) -> dict[str, Any]:
        """Grant a coupon/refund/gift: ``{status: "done"|"failed", reference?, message?}``."""


def demo_commerce_path() -> Path:
    return Path(__file__).resolve().parent.parent / "demo" / "commerce_demo.json"


class DemoCommerceAdapter:
    """In-memory shop built from a fixture file; good for demos and tests."""

    def __init__(self, path: Path | None = None) -> None:
        data = json.loads(Path(path or demo_commerce_path()).read_text(encoding="utf-8"))
        self._orders: dict[str, dict[str, Any]] = {o["order_id"]: dict(o) for o in data["orders"]}
        self._logistics: dict[str, dict[str, Any]] = dict(data.get("logistics", {}))
        self.returns: list[dict[str, Any]] = []
        self.compensations: list[dict[str, Any]] = []

    async def orders(self, user: str) -> list[dict[str, Any]]:
        out = [dict(o) for o in self._orders.values() if o["user"] == user]
        return sorted(out, key=lambda o: str(o.get("placed_at", "")), reverse=True)

    async def order(self, order_id: str) -> dict[str, Any] | None:
        o = self._orders.get(order_id)
        return dict(o) if o else None

    async def logistics(self, order_id: str) -> dict[str, Any] | None:
        lg = self._logistics.get(order_id)
        return dict(lg) if lg else None

    async def create_return(self, order_id: str, reason: str) -> dict[str, Any]:
        if order_id not in self._orders:
            raise CommerceError(f"unknown order {order_id!r}")
        r = {"return_id": "r_" + secrets.token_hex(4), "order_id": order_id,
             "status": "requested", "reason": reason}
        self.returns.append(r)
        self._orders[order_id]["status"] = "return_requested"
        return {"return_id": r["return_id"], "status": r["status"]}

    async def compensate(self, user: str, kind: str, amount: float, reason: str,
                         conversation: str) -> dict[str, Any]:
        ref = f"{kind}_{secrets.token_hex(4)}"
        self.compensations.append({"user": user, "kind": kind, "amount": amount,
                                   "reason": reason, "conversation": conversation,
                                   "reference": ref})
        return {"status": "done", "reference": ref}

    # demo-only extras (not part of the interface)
    def known_users(self) -> set[str]:
        return {o["user"] for o in self._orders.values()}

    def record_order(self, room: str, order_id: str, user: str, sku: str, qty: int,
                     name: str = "", amount: float = 0.0) -> None:
        """Orders placed through ``POST /api/rooms/{room}/orders`` join the demo shop."""
        self._orders.setdefault(order_id, {
            "order_id": order_id, "user": user, "room": room, "sku": sku, "name": name or sku,
            "qty": qty, "amount": amount, "currency": "CNY", "status": "paid",
            "placed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        self._logistics.setdefault(order_id, {"status": "awaiting_shipment", "courier": None,
                                              "tracking_no": None, "eta": None,
                                              "updated_at": None})


class HttpCommerceAdapter:
    """The shop's own API, per the JSON contract in ``docs/commerce-adapter.md``."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            headers = {"Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._http = aiohttp.ClientSession(headers=headers, timeout=self.timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _call(self, method: str, path: str, body: dict | None = None,
                    allow_404: bool = False) -> Any:
        url = self.base_url + path
        try:
            async with self._session().request(method, url, json=body) as r:
                if r.status == 404 and allow_404:
                    return None
                if r.status >= 400:
                    text = (await r.text())[:200]
                    raise CommerceError(f"{method} {path}: HTTP {r.status} {text}")
                return await r.json(content_type=None)
        except TimeoutError:
            raise CommerceError(f"{method} {path}: timed out") from None
        except aiohttp.ClientError as e:
            raise CommerceError(f"{method} {path}: {e}") from None
        except ValueError as e:  # bad JSON
            raise CommerceError(f"{method} {path}: invalid JSON ({e})") from None

    @staticmethod
    def _obj(v: Any, what: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise CommerceError(f"{what}: expected a JSON object")
        return v

    async def orders(self, user: str) -> list[dict[str, Any]]:
        body = self._obj(await self._call("GET", f"/users/{quote(user, safe='')}/orders"), "orders")
        orders = body.get("orders")
        if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
            raise CommerceError("orders: 'orders' must be a list of objects")
        # never trust the shop to filter: only this viewer's orders leave this method
        return [o for o in orders if o.get("user", user) == user and o.get("order_id")]

    async def order(self, order_id: str) -> dict[str, Any] | None:
        v = await self._call("GET", f"/orders/{quote(order_id, safe='')}", allow_404=True)
        return None if v is None else self._obj(v, "order")

    async def logistics(self, order_id: str) -> dict[str, Any] | None:
        v = await self._call("GET", f"/orders/{quote(order_id, safe='')}/logistics", allow_404=True)
        return None if v is None else self._obj(v, "logistics")

    async def create_return(self, order_id: str, reason: str) -> dict[str, Any]:
        return self._obj(await self._call("POST", f"/orders/{quote(order_id, safe='')}/returns",
                                          {"reason": reason}), "return")

    async def compensate(self, user: str, kind: str, amount: float, reason: str,
                         conversation: str) -> dict[str, Any]:
        return self._obj(await self._call("POST", "/compensations", {
            "user": user, "kind": kind, "amount": amount, "reason": reason,
            "conversation": conversation}), "compensation")


def make_adapter(url: str | None, token: str | None, timeout_s: float = 2.0) -> CommerceAdapter:
    return HttpCommerceAdapter(url, token, timeout_s) if url else DemoCommerceAdapter()


class ViewerOrders:
    """Per-viewer cache of orders with logistics, for sync readers. Bounded, short-lived."""

    def __init__(self, adapter: CommerceAdapter, ttl_s: float = 60.0, max_users: int = 5000,
                 max_orders: int = 10) -> None:
        self.adapter = adapter
        self.ttl_s = ttl_s
        self.max_users = max_users
        self.max_orders = max_orders
        self._cache: OrderedDict[str, tuple[float, list[dict[str, Any]]]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future] = {}

    def get(self, user: str) -> list[dict[str, Any]] | None:
        """Cached orders of ``user`` (None if never fetched or expired)."""
        hit = self._cache.get(user)
        if hit is None or time.monotonic() - hit[0] > self.ttl_s:
            return None
        return [dict(o) for o in hit[1]]

    def invalidate(self, user: str) -> None:
        self._cache.pop(user, None)

    async def fetch(self, user: str, force: bool = False) -> list[dict[str, Any]]:
        """Orders of ``user`` with ``logistics`` filled in; concurrent callers share a fetch."""
        if not force:
            cached = self.get(user)
            if cached is not None:
                return cached
        fut = self._inflight.get(user)
        if fut is None:
            fut = asyncio.ensure_future(self._load(user))
            self._inflight[user] = fut
            fut.add_done_callback(functools.partial(self._done, user))
        return [dict(o) for o in await asyncio.shield(fut)]

    def _done(self, user: str, fut: asyncio.Future) -> None:
        self._inflight.pop(user, None)
        if not fut.cancelled():
            fut.exception()  # retrieved here: a caller that timed out must not leave it unread

    async def _load(self, user: str) -> list[dict[str, Any]]:
        orders = [o for o in await self.adapter.orders(user) if o.get("user", user) == user]
        orders = orders[: self.max_orders]

        async def with_logistics(o: dict[str, Any]) -> dict[str, Any]:
            o = dict(o)
            try:
                o["logistics"] = await self.adapter.logistics(o["order_id"])
            except CommerceError as e:
                log.warning("logistics for %s failed: %s", o["order_id"], e)
                o["logistics"] = None
            return o

        full = list(await asyncio.gather(*(with_logistics(o) for o in orders)))
        self._cache[user] = (time.monotonic(), full)
        self._cache.move_to_end(user)
        while len(self._cache) > self.max_users:
            self._cache.popitem(last=False)
        return full

    async def fetch_quietly(self, user: str, timeout_s: float) -> list[dict[str, Any]] | None:
        """Cached, else a fetch bounded by ``timeout_s``; None on timeout or failure."""
        cached = self.get(user)
        if cached is not None:
            return cached
        try:
            return await asyncio.wait_for(self.fetch(user), timeout_s)
        except (TimeoutError, CommerceError):
            return None
        except Exception:
            log.exception("orders of %s", user)
            return None
