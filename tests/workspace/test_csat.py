"""CSAT: asked on resolve, once per conversation, 1..5, stored against conversation + agent."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import stop_gateway
from tests.workspace.helpers import agent, escalated, scrape, start, val, viewer

pytestmark = pytest.mark.parity


async def test_csat_request_submit_once_range_checked_and_metric(backend):
    gw = await start(backend)
    try:
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        e = await v.request("csat.submit", conversation=cid, rating=5)
        assert e["code"] == "bad_state"  # not resolved yet
        await a.request("conversation.resolve", conversation=cid)
        req = await v.event("csat.request", conversation=cid)
        assert req["agent"]["user"] == "a1"
        s0 = await scrape(gw)
        for bad in (0, 6, -1):
            e = await v.request("csat.submit", conversation=cid, rating=bad)
            assert e["code"] == "bad_request", e
        e = await v.request("csat.submit", conversation=cid, rating=4.5)
        assert e["code"] == "bad_request"
        other = await gw.client("viewer", "v2", room=gw.room_id)
        e = await other.request("csat.submit", conversation=cid, rating=1)
        assert e["code"] == "not_member"
        assert val(await scrape(gw), "livedesk_csat_rating_count") == val(s0, "livedesk_csat_rating_count")
        ok = await v.request("csat.submit", conversation=cid, rating=5, comment="很耐心")
        assert ok["type"] == "ack"
        s1 = await scrape(gw)
        assert val(s1, "livedesk_csat_rating_count") - val(s0, "livedesk_csat_rating_count") == 1
        assert val(s1, "livedesk_csat_rating_sum") - val(s0, "livedesk_csat_rating_sum") == 5
        again = await v.request("csat.submit", conversation=cid, rating=1)
        assert again["code"] == "conflict"
        assert val(await scrape(gw), "livedesk_csat_rating_count") == val(s1, "livedesk_csat_rating_count")
        r = gw.gw.workspace.csat.ratings[cid]
        assert (r.agent, r.rating, r.comment) == ("a1", 5, "很耐心")
    finally:
        await stop_gateway(gw)


async def test_no_csat_for_bot_only_conversations(backend):
    gw = await start(backend)
    try:
        v, cid = await viewer(gw, "v1")
        await v.request("message.send", conversation=cid, text="hi", client_msg_id="1")
        await v.event("message", conversation=cid, text="stub")
        await v.request("conversation.close", conversation=cid)
        await asyncio.sleep(0.1)
        assert not [f for f in v.frames if f.get("type") == "csat.request"]
        e = await v.request("csat.submit", conversation=cid, rating=5)
        assert e["code"] == "bad_state"
    finally:
        await stop_gateway(gw)
