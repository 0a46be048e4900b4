"""HttpCommerceAdapter against a real (small) aiohttp shop on a free port."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from gateway.support.commerce import CommerceError, HttpCommerceAdapter
from tests.conftest import free_port, stop_gateway
from tests.workspace.helpers import agent, escalated, start, viewer

pytestmark = pytest.mark.parity

TOKEN = "shop-secret"
P = "/api/v1"  # the shop serves under a path prefix; the base URL carries it


class Shop:
    def __init__(self):
        self.calls: list[tuple[str, str, dict | None]] = []
        self.slow = False
        self.orders = [
            {"order_id": "A1", "user": "alice", "sku": "D001", "name": "冲锋衣", "qty": 1,
             "amount": 399, "status": "shipped", "placed_at": "2025-06-01T10:00:00Z"},
            # a buggy shop that returns someone else's order in alice's list
            {"order_id": "B1", "user": "bob", "sku": "D002", "name": "裤子", "qty": 1,
             "amount": 159, "status": "paid", "placed_at": "2025-06-01T11:00:00Z"},
        ]

    async def start(self):
        app = web.Application(middlewares=[self.auth])
        app.router.add_get(P + "/users/{user}/orders", self.user_orders)
        app.router.add_get(P + "/orders/{oid}", self.order)
        app.router.add_get(P + "/orders/{oid}/logistics", self.logistics)
        app.router.add_post(P + "/orders/{oid}/returns", self.returns)
        app.router.add_post(P + "/compensations", self.compensations)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        return self

    @web.middleware
    async def auth(self, request, handler):
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.json() if request.can_read_body else None
        self.calls.append((request.method, request.path, body))
        if self.slow:
            await asyncio.sleep(1)
        return await handler(request)

    async def user_orders(self, request):
        return web.json_response({"orders": self.orders})

    def _find(self, oid):
        return next((o for o in self.orders if o["order_id"] == oid), None)

    async def order(self, request):
        o = self._find(request.match_info["oid"])
        return web.json_response(o) if o else web.json_response({"error": "not_found"}, status=404)

    async def logistics(self, request):
        if not self._find(request.match_info["oid"]):
            return web.json_response({"error": "not_found"}, status=404)
        return web.json_response({"status": "in_transit", "courier": "SF", "tracking_no": "SF1",
                                  "eta": "2025-06-03", "updated_at": "2025-06-02T00:00:00Z"})

    async def returns(self, request):
        return web.json_response({"return_id": "R-" + request.match_info["oid"], "status": "requested"})

    async def compensations(self, request):
        return web.json_response({"status": "done", "reference": "CP-1"})

    async def stop(self):
        await self.runner.cleanup()


@pytest.mark.one_backend("shared", why="the adapter against the shop alone; no gateway")
async def test_contract_calls_auth_404_and_filtering():
    shop = await Shop().start()
    ad = HttpCommerceAdapter(shop.url, TOKEN, timeout_s=0.5)
    try:
        orders = await ad.orders("alice")
        assert [o["order_id"] for o in orders] == ["A1"]  # bob's order never leaves the adapter
        assert (await ad.order("A1"))["user"] == "alice"
        assert await ad.order("nope") is None
        assert (await ad.logistics("A1"))["courier"] == "SF"
        assert await ad.logistics("nope") is None
        assert await ad.create_return("A1", "太大") == {"return_id": "R-A1", "status": "requested"}
        r = await ad.compensate("alice", "coupon", 10, "慢", "c_1")
        assert r["status"] == "done"
        assert shop.calls[-1] == ("POST", P + "/compensations", {"user": "alice", "kind": "coupon",
                                                              "amount": 10, "reason": "慢",
                                                              "conversation": "c_1"})
        assert ("POST", P + "/orders/A1/returns", {"reason": "太大"}) in shop.calls
        bad = HttpCommerceAdapter(shop.url, "wrong", timeout_s=0.5)
        with pytest.raises(CommerceError, match="401"):
            await bad.orders("alice")
        await bad.close()
        shop.slow = True
        with pytest.raises(CommerceError, match="timed out"):
            await ad.orders("alice")
    finally:
        await ad.close()
        await shop.stop()


async def test_gateway_uses_the_http_adapter_from_config(backend):
    shop = await Shop().start()
    gw = await start(backend, commerce_url=shop.url, commerce_token=TOKEN)
    try:
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "alice")
        await escalated(gw, v, cid, a)
        ctx = await a.request("context.get", conversation=cid)
        assert [o["order_id"] for o in ctx["orders"]] == ["A1"]
        assert ctx["orders"][0]["logistics"]["tracking_no"] == "SF1"
        r = await a.request("action.compensate", conversation=cid, kind="coupon", amount=5, reason="r")
        assert r["status"] == "done" and r["reference"] == "CP-1"
        e = await a.request("action.return", conversation=cid, order_id="B1", reason="r")
        assert e["code"] == "not_found"  # bob's order, not alice's
        ok = await a.request("action.return", conversation=cid, order_id="A1", reason="r")
        assert ok["status"] == "done" and ok["reference"] == "R-A1"
        # the shop is down: the agent gets a clear failure, not a hang
        shop.slow = True
        gw.gw.workspace.adapter.timeout = __import__("aiohttp").ClientTimeout(total=0.2)
        await gw.gw.workspace.adapter.close()
        r = await a.request("action.compensate", conversation=cid, kind="coupon", amount=5, reason="r")
        assert r["status"] == "failed"
    finally:
        await stop_gateway(gw)
        await shop.stop()
