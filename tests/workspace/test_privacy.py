"""A viewer never sees another viewer's orders or conversations — the tests try hard."""

from __future__ import annotations

import json

import pytest

from tests.conftest import stop_gateway
from tests.workspace.helpers import agent, escalated, say, start, viewer

V1_ORDERS = {"2025060100003", "2025060100004"}
DEMO_ORDERS = {"2025060100001", "2025060100002"}  # viewer-demo's
DEMO_SECRETS = ("SF1234567890", "杭州转运中心", "2025060100002", "viewer-demo")

pytestmark = pytest.mark.parity


def bot_reply_after(v, cid, mine):
    return v.wait_for(lambda f: f.get("type") == "message" and f["from"]["role"] == "bot"
                      and f["conversation"] == cid and f["seq"] > mine["seq"])


async def test_conversations_and_context_of_others_are_refused(backend):
    gw = await start(backend)
    try:
        a = await agent(gw, "a1")
        v1, c1 = await viewer(gw, "v1")
        await escalated(gw, v1, c1, a)
        v2, c2 = await viewer(gw, "viewer-demo")
        for type_, extra in (("conversation.get", {}), ("message.send", {"text": "hi", "client_msg_id": "x"}),
                             ("conversation.escalate", {}), ("conversation.close", {}),
                             ("csat.submit", {"rating": 5}), ("context.get", {})):
            e = await v2.request(type_, conversation=c1, **extra)
            assert e["type"] == "error" and e["code"] in ("not_member", "forbidden"), (type_, e)
        lst = await v2.request("conversation.list")
        assert [c["conversation"] for c in lst["conversations"]] == [c2]
        for type_ in ("audit.list", "approval.list", "supervisor.agents", "dashboard.watch"):
            assert (await v2.request(type_))["code"] == "forbidden"
        # nothing of v1 leaked into v2's frames (errors only echo the id v2 sent)
        assert not any(c1 in str(f) for f in v2.frames if f.get("type") != "error")
        # (quoted: a random id may contain the letters "v1", a leaked user id is a JSON string)
        assert not any('"v1"' in json.dumps(f) for f in v2.frames)
    finally:
        await stop_gateway(gw)


async def test_bot_after_sale_answers_only_with_own_orders(backend):
    gw = await start(backend)
    try:
        v, cid = await viewer(gw, "v1")
        # asks about someone else's order id
        mine = await say(v, cid, "where is my order 2025060100001")
        bot = await bot_reply_after(v, cid, mine)
        assert "2025060100001" not in bot["text"] or "没有找到" in bot["text"]
        for s in DEMO_SECRETS:
            assert s not in bot["text"], bot["text"]
        assert "2025060100003" in bot["text"] and "中通快递" in bot["text"]
        # own order by id: just that one, with courier and ETA
        mine = await say(v, cid, "物流 2025060100003 到哪了")
        bot = await bot_reply_after(v, cid, mine)
        assert "2025060100003" in bot["text"] and "ZT9876543210" in bot["text"]
        assert "2025-06-06" in bot["text"] and "2025060100004" not in bot["text"]
        # return question: the policy plus own orders
        mine = await say(v, cid, "我想退货")
        bot = await bot_reply_after(v, cid, mine)
        assert "七天无理由" in bot["text"] and "2025060100003" in bot["text"]
        # a viewer without orders gets the plain answer
        v9, c9 = await viewer(gw, "nobody")
        mine = await say(v9, c9, "where is my order 2025060100003")
        bot = await bot_reply_after(v9, c9, mine)
        assert bot["text"] == "物流一般48小时内发货。"
    finally:
        await stop_gateway(gw)


async def test_notice_about_an_order_reaches_only_its_owner(backend):
    gw = await start(backend)
    try:
        v1, c1 = await viewer(gw, "v1")
        vd, cd = await viewer(gw, "viewer-demo")
        hdr = {"Authorization": f"Bearer {gw.token('service', 'shop')}"}
        async with gw.http.post(f"{gw.url}/api/rooms/{gw.room_id}/notices", headers=hdr,
                                json={"kind": "logistics_delay", "orders": ["2025060100003"],
                                      "text": "您的订单因天气延误一天"}) as r:
            body = await r.json()
        assert body == {"notified": 1, "conversations": [c1]}
        n = await v1.event("notice", conversation=c1)
        assert n["kind"] == "logistics_delay"
        await v1.event("message", conversation=c1, kind="notice")
        assert not [f for f in vd.frames if f.get("type") == "notice" or f.get("kind") == "notice"]
    finally:
        await stop_gateway(gw)


async def test_the_real_bot_is_wrapped_and_never_quotes_another_viewers_order(backend):
    from tests.conftest import start_gateway

    gw = await start_gateway(backend.config())  # the default (offline) bot
    try:
        v, cid = await viewer(gw, "v1")
        mine = await say(v, cid, "我的订单2025060100001到哪了")  # viewer-demo's order
        bot = await bot_reply_after(v, cid, mine)
        assert "没有找到" in bot["text"] and "2025060100003" in bot["text"]
        for s in DEMO_SECRETS:
            assert s not in bot["text"], bot["text"]
        mine = await say(v, cid, "订单2025060100003到哪了")
        bot = await bot_reply_after(v, cid, mine)
        assert "ZT9876543210" in bot["text"] and "2025060100004" not in bot["text"]
    finally:
        await stop_gateway(gw)
