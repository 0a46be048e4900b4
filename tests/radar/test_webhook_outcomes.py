"""Issue 20, the remaining webhooks: a conversation's end with its outcome, the viewer's
CSAT (``conversation.rated``) and a support-assisted order (``order.assisted``: a
conversion), each delivered to a receiver on 127.0.0.1 that verifies every signature with
the documented helper (``gateway.webhooks.verify``)."""

from __future__ import annotations

import secrets

from tests.backends import MEMORY, free_port
from tests.conftest import start_gateway, stop_gateway
from tests.radar.receiver import Receiver

SECRET = secrets.token_hex(32)


async def test_resolved_rated_and_assisted_order_webhooks():
    rx = await Receiver(SECRET, free_port()).start()
    gw = await start_gateway(MEMORY.config(
        retain_s=600, webhook_urls=[rx.url], webhook_secret=SECRET, webhook_retry_base_s=0.2,
        webhook_retry_max_s=0.5, conversion_window_s=3600))
    try:
        room = gw.room_id
        agent = await gw.client("agent", "ag-out", name="Ann")
        assert (await agent.request("agent.status", status="available"))["type"] == "ack"
        viewer = await gw.client("viewer", "v-out", room=room)
        cid = (await viewer.request("conversation.open", room=room))["conversation"]
        r = await viewer.request("message.send", conversation=cid, text="保温壶保温多久",
                                 client_msg_id="o-1")
        assert r["type"] == "message", r
        assert (await viewer.request("conversation.escalate", conversation=cid,
                                     reason="help"))["type"] == "ack"
        await agent.event("conversation.assigned", conversation=cid)
        assert (await agent.request("conversation.resolve", conversation=cid))["type"] == "ack"

        # the end, with who ended it and the outcome the dashboard counts
        ended = await rx.wait_for("conversation.resolved", conversation=cid)
        assert (ended["outcome"], ended["result"]) == ("agent", "resolved_by_agent"), ended
        assert ended["agent"] == "ag-out" and ended["viewer"] == "v-out"

        # the viewer's rating, given afterwards
        await viewer.event("csat.request", conversation=cid)
        assert (await viewer.request("csat.submit", conversation=cid, rating=4,
                                     comment="很耐心"))["type"] == "ack"
        rated = await rx.wait_for("conversation.rated", conversation=cid)
        assert (rated["rating"], rated["comment"], rated["result"]) == \
            (4, "很耐心", "resolved_by_agent"), rated
        assert rated["agent"] == "ag-out" and rated["room"] == room
        # rated once: a second rating is refused and sends nothing
        again = await viewer.request("csat.submit", conversation=cid, rating=1)
        assert again["code"] == "conflict", again

        # the viewer buys after talking to support: a conversion, once per order
        hdr = {"Authorization": f"Bearer {gw.token('service', 'shop')}"}
        order = {"order_id": "o-assist-1", "user": "v-out", "sku": "D004", "qty": 2}
        for _ in range(2):  # the shop repeats the same order: counted once
            async with gw.http.post(f"{gw.url}/api/rooms/{room}/orders", headers=hdr,
                                    json=order) as resp:
                assert resp.status == 200, await resp.text()
        sale = await rx.wait_for("order.assisted", order_id="o-assist-1")
        assert (sale["viewer"], sale["sku"], sale["qty"], sale["conversation"], sale["agent"]) \
            == ("v-out", "D004", 2, cid, "ag-out"), sale
        # an order by someone who never talked to support is not a conversion
        async with gw.http.post(f"{gw.url}/api/rooms/{room}/orders", headers=hdr, json={
                "order_id": "o-plain", "user": "v-never", "sku": "D004", "qty": 1}) as resp:
            assert resp.status == 200
        ended_other = await _resolve_bot_only(gw, room)
        bot_end = await rx.wait_for("conversation.resolved", conversation=ended_other)
        assert (bot_end["outcome"], bot_end["result"]) == ("viewer", "resolved_by_bot"), bot_end

        names = [e["event"] for e in rx.got]
        assert names.count("conversation.rated") == 1, names
        assert names.count("order.assisted") == 1, names
        assert not any(e.get("order_id") == "o-plain" for e in rx.got)
        assert rx.refused == []  # every delivery verified
    finally:
        await stop_gateway(gw)
        await rx.stop()


async def _resolve_bot_only(gw, room: str) -> str:
    """A viewer asks the bot and closes: ``resolved_by_bot`` (a delivery after the orders',
    so the plain order had its chance to be sent, had it been a conversion)."""
    v = await gw.client("viewer", "v-bot-only", room=room)
    cid = (await v.request("conversation.open", room=room))["conversation"]
    assert (await v.request("message.send", conversation=cid, text="保温壶多少钱",
                            client_msg_id="b-1"))["type"] == "message"
    assert (await v.request("conversation.close", conversation=cid))["type"] == "ack"
    return cid
