"""Handoff context: browsing, orders with logistics, promotions, earlier conversations, mood."""

from __future__ import annotations

import pytest

from tests.conftest import stop_gateway
from tests.workspace.helpers import agent, escalated, say, start, viewer

pytestmark = pytest.mark.parity


async def browse(v, room, kind, **kw):
    r = await v.request("browse.event", room=room, kind=kind, **kw)
    assert r["type"] == "ack", r
    return r


async def test_agent_sees_browsing_orders_promotions_earlier_and_mood(backend):
    gw = await start(backend)
    try:
        room = gw.room_id
        # an earlier conversation of the same viewer
        v, old = await viewer(gw, "v1")
        await say(v, old, "有优惠券吗")
        await v.event("message", conversation=old, text="stub")
        await v.request("conversation.close", conversation=old)
        v, cid = await viewer(gw, "v1")
        assert cid != old
        await browse(v, room, "product_view", sku="D001")
        await browse(v, room, "add_to_cart", sku="D001")
        await browse(v, room, "add_to_cart", sku="D002")
        await browse(v, room, "stream_time", seconds=300)
        await browse(v, room, "support_opened", sku="D003")
        a = await agent(gw, "a1")
        assigned = await escalated(gw, v, cid, a, text="I am angry, 我要转人工")
        ctx = assigned["context"]
        # the ``context`` push follows if the orders were still loading at assignment
        if not ctx["orders_loaded"]:
            ctx = await a.event("context", conversation=cid)
        assert ctx["mood"] == "angry"
        assert [(e["kind"], e.get("sku")) for e in ctx["browsing"]] == [
            ("product_view", "D001"), ("add_to_cart", "D001"), ("add_to_cart", "D002"),
            ("support_opened", "D003")]
        assert ctx["browsing"][0]["name"] == "三合一防水冲锋衣"
        assert ctx["cart"] == ["D001", "D002"]
        assert ctx["on_screen_at_open"] == "D003" and ctx["time_in_stream_s"] == 300
        orders = {o["order_id"]: o for o in ctx["orders"]}
        assert set(orders) == {"2025060100003", "2025060100004"}  # v1's, nobody else's
        assert orders["2025060100003"]["logistics"]["courier"] == "中通快递"
        promos = {p["id"]: p for p in ctx["promotions"]}
        assert promos["PD1"]["status"] == "qualifies"  # D001 in cart, gifts left
        assert promos["PD4"]["status"] == "qualifies"  # the D001+D002 bundle is in the cart
        assert promos["PD3"]["status"] == "qualifies"  # cart 558 ≥ 300
        assert "PD2" not in promos  # sold out
        assert [c["conversation"] for c in ctx["earlier_conversations"]] == [old]
        assert ctx["earlier_conversations"][0]["outcome"] == "resolved_by_bot"
        bot_marked = [m for m in ctx["messages"] if m["bot"]]
        assert bot_marked and all(m["from"]["role"] == "bot" for m in bot_marked)

        fresh = await a.request("context.get", conversation=cid)
        assert fresh["type"] == "context" and fresh["conversation"] == cid
        assert {o["order_id"] for o in fresh["orders"]} == set(orders)
        # nobody else gets it
        a2 = await agent(gw, "a2")
        assert (await a2.request("context.get", conversation=cid))["code"] == "not_member"
        assert (await v.request("context.get", conversation=cid))["code"] == "forbidden"
        admin = await gw.client("admin", "boss")
        assert (await admin.request("context.get", conversation=cid))["type"] == "context"
    finally:
        await stop_gateway(gw)


async def test_browse_event_is_validated(backend):
    gw = await start(backend, rate_per_s=10_000, rate_burst=10_000)
    try:
        room = gw.room_id
        v = await gw.client("viewer", "v1", room=room)
        cases = [
            ({"room": room, "kind": "teleport"}, "bad_request"),
            ({"room": room, "kind": "product_view"}, "bad_request"),
            ({"room": room, "kind": "product_view", "sku": "NOPE"}, "not_found"),
            ({"room": room, "kind": "stream_time"}, "bad_request"),
            ({"room": room, "kind": "stream_time", "seconds": -5}, "bad_request"),
            ({"room": "elsewhere", "kind": "support_opened"}, "not_found"),
        ]
        for fields, code in cases:
            e = await v.request("browse.event", **fields)
            assert e["type"] == "error" and e["code"] == code, (fields, e)
        other_room = await gw.client("viewer", "v2", room="another")
        e = await other_room.request("browse.event", room=room, kind="support_opened")
        assert e["code"] == "forbidden"
        a = await agent(gw, "a1", status=None)
        e = await a.request("browse.event", room=room, kind="support_opened")
        assert e["code"] == "forbidden"
        store = gw.gw.workspace.browsing.store
        for _i in range(store.per_viewer + 20):
            await v.send("browse.event", room=room, kind="product_view", sku="D001")
        await v.request("browse.event", room=room, kind="product_view", sku="D002")
        assert len(store.timeline("v1")) == store.per_viewer  # bounded
    finally:
        await stop_gateway(gw)


async def test_orders_reach_the_agent_even_when_escalating_at_once(backend):
    """No message before the escalation: the context push delivers the orders."""
    gw = await start(backend)
    try:
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await v.request("conversation.escalate", conversation=cid)
        assigned = await a.event("conversation.assigned", conversation=cid)
        ctx = assigned["context"]
        if not ctx["orders_loaded"]:
            ctx = await a.event("context", conversation=cid)
        assert {o["order_id"] for o in ctx["orders"]} == {"2025060100003", "2025060100004"}
    finally:
        await stop_gateway(gw)
