"""POST /api/rooms/{room}/notices: who is affected, what they get, and the errors."""

from __future__ import annotations

import pytest

from tests.conftest import stop_gateway
from tests.workspace.helpers import start, viewer

pytestmark = pytest.mark.parity


async def post(gw, body, token=None, room=None):
    hdr = {"Authorization": f"Bearer {token}"} if token else {}
    async with gw.http.post(f"{gw.url}/api/rooms/{room or gw.room_id}/notices", headers=hdr,
                            json=body) as r:
        return r.status, await r.json()


async def test_errors_are_json_with_the_right_status(backend):
    gw = await start(backend)
    try:
        svc = gw.token("service", "shop")
        ok = {"kind": "announcement", "text": "今晚八点加播"}
        assert (await post(gw, ok))[0] == 401
        assert (await post(gw, ok, gw.token("viewer", "v1", room=gw.room_id)))[0] == 403
        st, body = await post(gw, ok, gw.token("service", "shop", room="other"))
        assert st == 403 and body["error"] == "forbidden"
        st, body = await post(gw, ok, svc, room="nope")
        assert st == 404 and body["error"] == "not_found"
        for bad in ({"kind": "spam", "text": "x"}, {"kind": "restock", "text": ""},
                    {"kind": "restock", "text": "到货"}, {"kind": "restock", "skus": "D001", "text": "x"},
                    {"kind": "logistics_delay", "orders": [1], "text": "x"}):
            st, body = await post(gw, bad, svc)
            assert st == 400 and body["error"] == "bad_request", (bad, body)
        st, body = await post(gw, {"kind": "restock", "skus": ["ZZZ"], "text": "x"}, svc)
        assert st == 404
    finally:
        await stop_gateway(gw)


async def test_restock_reaches_viewers_who_browsed_or_bought_the_sku(backend):
    gw = await start(backend)
    try:
        room = gw.room_id
        svc = gw.token("service", "shop")
        viewed = await gw.client("viewer", "looker", room=room)
        await viewed.request("browse.event", room=room, kind="product_view", sku="D006")
        carted = await gw.client("viewer", "carter", room=room)
        await carted.request("browse.event", room=room, kind="add_to_cart", sku="D006")
        other = await gw.client("viewer", "other", room=room)
        await other.request("browse.event", room=room, kind="product_view", sku="D004")
        st, body = await post(gw, {"kind": "restock", "skus": ["D006"], "text": "防晒乳补货啦"}, svc)
        assert st == 200
        # looker, carter, and viewer-demo (ordered D006 in the demo shop)
        assert body["notified"] == 3 and len(set(body["conversations"])) == 3
        for c in (viewed, carted):
            n = await c.event("notice", kind="restock")
            assert n["text"] == "防晒乳补货啦" and n["room"] == room
            m = await c.event("message", kind="notice", conversation=n["conversation"])
            assert m["text"] == "防晒乳补货啦"
        assert not [f for f in other.frames if f.get("type") == "notice"]
        # viewer-demo, offline, finds it in the conversation opened for them
        vd, cid = await viewer(gw, "viewer-demo")
        assert cid in body["conversations"]
        snap = await vd.request("conversation.get", conversation=cid)
        assert any(m.get("kind") == "notice" for m in snap["messages"])
    finally:
        await stop_gateway(gw)


async def test_announcement_reaches_open_conversations_and_watchers(backend):
    gw = await start(backend)
    try:
        room = gw.room_id
        svc = gw.token("service", "shop", room=room)
        v1, c1 = await viewer(gw, "v1")  # open conversation
        w = await gw.client("viewer", "watcher", room=room)
        await w.request("room.watch", room=room)  # only watching
        v3, c3 = await viewer(gw, "v3")
        await v3.request("message.send", conversation=c3, text="hi", client_msg_id="1")
        await v3.request("conversation.close", conversation=c3)  # resolved: not open
        await v3.drop()  # and gone: not watching
        st, body = await post(gw, {"kind": "announcement", "text": "今晚八点加播"}, svc)
        assert st == 200 and body["notified"] == 2
        assert c1 in body["conversations"]
        await v1.event("notice", conversation=c1)
        await w.event("notice", kind="announcement")
        st, body = await post(gw, {"kind": "announcement", "text": "再提醒一次"}, svc)
        assert body["notified"] == 2 and c1 in body["conversations"]  # same conversations again
    finally:
        await stop_gateway(gw)
