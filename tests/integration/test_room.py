"""Live room state: host commands, shop orders, watchers, canned replies with placeholders."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.test_conversations import escalated_pair

pytestmark = pytest.mark.parity


def first_gift(gw):
    room = gw.gw.rooms.get(gw.room_id)
    return next(p for p in room.knowledge.promotions
                if p.kind == "first_n_gift" and p.claimed < p.limit and p.sku)


async def post_order(gw, body, token=None, room=None):
    token = token or gw.token("service", "shop")
    async with gw.http.post(f"{gw.url}/api/rooms/{room or gw.room_id}/orders", json=body,
                            headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, await r.json()


async def test_order_claims_gift_with_rank_and_decrements_stock(gateway):
    promo = first_gift(gateway)
    room = gateway.gw.rooms.get(gateway.room_id)
    stock0 = room.knowledge.product(promo.sku).stock
    claimed0 = promo.claimed
    st, body = await post_order(gateway, {"order_id": "o1", "user": "u1", "sku": promo.sku, "qty": 2})
    assert st == 200 and body == {"gift": True, "rank": claimed0 + 1, "stock_left": stock0 - 2}
    st, body2 = await post_order(gateway, {"order_id": "o2", "user": "u2", "sku": promo.sku, "qty": 1})
    assert body2["rank"] == claimed0 + 2
    # repeating an accepted order changes nothing and answers the same
    st, again = await post_order(gateway, {"order_id": "o1", "user": "u1", "sku": promo.sku, "qty": 2})
    assert st == 200 and again == body
    assert promo.claimed == claimed0 + 2
    assert room.knowledge.product(promo.sku).stock == stock0 - 3
    # same id, different content → conflict
    st, c = await post_order(gateway, {"order_id": "o1", "user": "u1", "sku": promo.sku, "qty": 3})
    assert st == 409 and c["error"] == "conflict"


async def test_out_of_stock_changes_nothing_and_is_not_remembered(gateway):
    promo = first_gift(gateway)
    room = gateway.gw.rooms.get(gateway.room_id)
    prod = room.knowledge.product(promo.sku)
    stock0, claimed0 = prod.stock, promo.claimed
    st, body = await post_order(gateway, {"order_id": "big", "user": "u", "sku": promo.sku,
                                          "qty": stock0 + 1})
    assert st == 409 and body["error"] == "out_of_stock" and body["stock_left"] == stock0
    assert prod.stock == stock0 and promo.claimed == claimed0
    st, body = await post_order(gateway, {"order_id": "big", "user": "u", "sku": promo.sku, "qty": 1})
    assert st == 200 and body["stock_left"] == stock0 - 1


async def test_gift_quota_runs_out_and_left_is_capped_by_stock(gateway):
    room = gateway.gw.rooms.get(gateway.room_id)
    promo = first_gift(gateway)
    prod = room.knowledge.product(promo.sku)
    prod.stock = 1000
    left = promo.limit - promo.claimed
    results = []
    for i in range(left + 2):
        st, b = await post_order(gateway, {"order_id": f"q{i}", "user": "u", "sku": promo.sku, "qty": 1})
        results.append(b)
    assert [b["gift"] for b in results] == [True] * left + [False, False]
    assert results[-1]["rank"] is None
    assert room.gifts()[promo.id]["left"] == 0
    # gifts left shown = min(limit - claimed, stock)
    promo.claimed = promo.limit - 10
    prod.stock = 3
    assert room.gifts()[promo.id]["left"] == 3


async def test_same_order_posted_20_times_concurrently_counts_once(gateway):
    promo = first_gift(gateway)
    room = gateway.gw.rooms.get(gateway.room_id)
    stock0, claimed0 = room.knowledge.product(promo.sku).stock, promo.claimed
    body = {"order_id": "same", "user": "u", "sku": promo.sku, "qty": 1}
    res = await asyncio.gather(*[post_order(gateway, body) for _ in range(20)])
    assert {st for st, _ in res} == {200}
    assert len({tuple(sorted(b.items())) for _, b in res}) == 1
    assert promo.claimed == claimed0 + 1
    assert room.knowledge.product(promo.sku).stock == stock0 - 1


async def test_order_endpoint_errors(gateway):
    promo = first_gift(gateway)
    good = {"order_id": "e1", "user": "u", "sku": promo.sku, "qty": 1}
    async with gateway.http.post(f"{gateway.url}/api/rooms/{gateway.room_id}/orders", json=good) as r:
        assert r.status == 401 and (await r.json())["error"] == "unauthenticated"
    st, b = await post_order(gateway, good, token=gateway.token("viewer", "v"))
    assert st == 403 and b["error"] == "forbidden"
    st, b = await post_order(gateway, good, token=gateway.token("service", "s", room="elsewhere"))
    assert st == 403
    st, b = await post_order(gateway, good, room="nope")
    assert st == 404 and b["error"] == "not_found"
    st, b = await post_order(gateway, dict(good, sku="NOPE"))
    assert st == 404 and "NOPE" in b["message"]
    st, b = await post_order(gateway, dict(good, qty=0))
    assert st == 400 and b["error"] == "bad_request" and "qty" in b["message"]
    async with gateway.http.post(f"{gateway.url}/api/rooms/{gateway.room_id}/orders", data=b"{oops",
                                 headers={"Authorization": "Bearer " + gateway.token("service", "s")}) as r:
        assert r.status == 400


async def test_order_reaches_agent_console_within_100ms(gateway):
    v, a, cid = await escalated_pair(gateway)
    await a.request("room.watch", room=gateway.room_id)
    promo = first_gift(gateway)
    for i in range(3):
        n = len(a.frames)
        t0 = time.perf_counter()
        st, body = await post_order(gateway, {"order_id": f"w{i}", "user": "u", "sku": promo.sku, "qty": 1})
        upd = await a.event("room.update", after=n, timeout=1.0)
        elapsed = time.perf_counter() - t0
        assert elapsed < 0.1, elapsed
        assert upd["counters"]["gifts"][promo.id]["claimed"] == body["rank"]


async def test_host_commands_and_watchers(gateway):
    rid = gateway.room_id
    host = await gateway.client("host", "host-1", room=rid, name="小鹿")
    agent = await gateway.client("agent", "a1")
    state = await agent.request("room.watch", room=rid)
    assert state["type"] == "room.state" and state["products"] and "counters" in state
    hs = await host.request("room.watch", room=rid)
    assert hs["type"] == "room.state"
    sku = hs["products"][0]["sku"]
    r = await host.request("room.stock", room=rid, sku=sku, stock=7)
    assert r["type"] == "ack"
    upd = await agent.event("room.update", change={"kind": "stock", "sku": sku, "stock": 7,
                                                   "before": hs["products"][0]["stock"],
                                                   "ts": pytest.approx(time.time(), abs=5)})
    assert upd["counters"]["stock"][sku] == 7
    await host.request("room.on_screen", room=rid, sku=sku)
    upd = await agent.wait_for(lambda f: f["type"] == "room.update" and f["change"]["kind"] == "on_screen")
    assert upd["counters"]["on_screen"] == sku
    await host.request("room.promo.upsert", room=rid,
                       promotion={"id": "NEW1", "kind": "coupon", "text": "新券", "code": "NEW10",
                                  "threshold": 100, "amount": 10})
    await agent.wait_for(lambda f: f["type"] == "room.update" and f["change"]["kind"] == "promotion"
                         and f["change"]["promotion"]["id"] == "NEW1")
    await host.request("room.promo.stop", room=rid, promotion="NEW1")
    upd = await agent.wait_for(lambda f: f["type"] == "room.update"
                               and f["change"].get("promotion", {}).get("active") is False)
    assert upd["change"]["promotion"]["id"] == "NEW1"
    # bad host input: typed errors
    e = await host.request("room.stock", room=rid, sku="NOPE", stock=1)
    assert e["code"] == "not_found"
    e = await host.request("room.promo.upsert", room=rid, promotion={"id": "X", "kind": "weird"})
    assert e["code"] == "bad_request" and "kind" in e["message"]
    e = await host.request("room.stock", room="other-room", sku=sku, stock=1)
    assert e["code"] in ("not_found", "forbidden")


async def test_wrong_roles_and_rooms_for_host_commands(gateway):
    rid = gateway.room_id
    v = await gateway.client("viewer", "v1", room=rid)
    e = await v.request("room.stock", room=rid, sku="A", stock=1)
    assert e["code"] == "forbidden"
    other_host = await gateway.client("host", "h2", room="another-room")
    e = await other_host.request("room.announce", room=rid, text="hi")
    assert e["code"] == "forbidden"


async def test_announcement_is_pinned_in_open_conversations(gateway):
    rid = gateway.room_id
    v, a, cid = await escalated_pair(gateway)
    host = await gateway.client("host", "host-1", room=rid, name="小鹿")
    await v.request("room.watch", room=rid)
    await host.request("room.announce", room=rid, text="今晚十点加播一轮！")
    m = await v.event("message", kind="announcement")
    assert m["text"] == "今晚十点加播一轮！" and m["from"]["role"] == "host"
    await a.event("message", kind="announcement")
    ann = await v.event("room.announcement")
    assert ann["by"] == "小鹿"
    snap = await v.request("conversation.open", room=rid)
    assert snap["pinned"][0]["text"] == "今晚十点加播一轮！"


async def test_canned_replies_fill_live_placeholders_at_send_time(gateway):
    v, a, cid = await escalated_pair(gateway)
    promo = first_gift(gateway)
    lst = await a.request("replies.list", room=gateway.room_id)
    tpl = next(r for r in lst["replies"] if f"{{promo.{promo.id}.left}}" in r["text"])
    found = await a.request("replies.list", room=gateway.room_id, q=promo.id)
    assert any(r["id"] == tpl["id"] for r in found["replies"])
    await post_order(gateway, {"order_id": "t1", "user": "u", "sku": promo.sku, "qty": 1})
    room = gateway.gw.rooms.get(gateway.room_id)
    left = room.gifts()[promo.id]["left"]
    sent = await a.request("message.send", conversation=cid, text=tpl["text"], client_msg_id="t",
                           template=True)
    assert f"还剩 {left} 个名额" in sent["text"]
    got = await v.event("message", message_id=sent["message_id"])
    assert got["text"] == sent["text"]
    e = await a.request("message.send", conversation=cid, text="{promo.NOPE.left}",
                        client_msg_id="t2", template=True)
    assert e["code"] == "bad_request" and "NOPE" in e["message"]


async def test_bot_answer_follows_orders_within_100ms(gateway):
    """Gifts claimed through the orders endpoint show in the very next bot answer."""
    v = await gateway.client("viewer", "v-bot", room=gateway.room_id)
    cid = (await v.request("conversation.open", room=gateway.room_id))["conversation"]
    promo = first_gift(gateway)
    room = gateway.gw.rooms.get(gateway.room_id)
    product = room.knowledge.product(promo.sku)

    async def ask(i):
        mine = await v.request("message.send", conversation=cid, client_msg_id=f"g{i}",
                               text=f"{product.name}下单送的{promo.gift}还剩几个名额呀")
        return await v.wait_for(lambda f: f["type"] == "message" and f["from"]["role"] == "bot"
                                and f["seq"] > mine["seq"], timeout=1.0)

    before = await ask(0)
    left0 = room.gifts()[promo.id]["left"]
    assert str(left0) in before["text"]
    for i in range(3):
        await post_order(gateway, {"order_id": f"bot{i}", "user": "u", "sku": promo.sku, "qty": 1})
    t0 = time.perf_counter()
    after = await ask(1)
    assert time.perf_counter() - t0 < 0.1
    assert str(left0 - 3) in after["text"] and str(left0) not in after["text"]
