"""Finding 5 (issue 13): an agent's compensation limit caps the SUM it grants on one
conversation (six ¥50 refunds by an agent with a ¥50 limit: the first is granted, the rest
go to approval), and optionally what one viewer gets per day. On both backends (the sums
are replicated records, changed by compare-and-set)."""

from __future__ import annotations

import asyncio

import pytest

from tests.abuse.helpers import start_on
from tests.conftest import stop_gateway
from tests.workspace.helpers import agent, escalated, scrape, val, viewer

pytestmark = pytest.mark.parity


async def test_six_refunds_of_50_one_granted_five_to_approval(backend):
    gw = await start_on(backend, max_compensation_default=50)
    try:
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        s0 = await scrape(gw)
        got = []
        for i in range(6):
            r = await a.request("action.compensate", conversation=cid, kind="refund",
                                amount=50, reason=f"破损{i}")
            assert r["type"] == "action.result", r
            got.append(r["status"])
        assert got == ["done"] + ["pending_approval"] * 5, got
        spent = (val(await scrape(gw), "livedesk_compensation_amount_total", kind="refund")
                 - val(s0, "livedesk_compensation_amount_total", kind="refund"))
        assert spent == 50
        # smaller amounts do not slip under the limit either once it is used up
        r = await a.request("action.compensate", conversation=cid, kind="coupon", amount=1,
                            reason="x")
        assert r["status"] == "pending_approval"
    finally:
        await stop_gateway(gw)


async def test_the_sum_fits_several_small_grants_and_racing_grants_cannot_both_fit(backend):
    gw = await start_on(backend, max_compensation_default=50)
    try:
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        got = []
        for amount in (20, 20, 10, 0.01):
            r = await a.request("action.compensate", conversation=cid, kind="coupon",
                                amount=amount, reason="x")
            got.append(r["status"])
        assert got == ["done", "done", "done", "pending_approval"]
        # a fresh conversation has its own allowance; two grants sent at once cannot both fit
        v2, cid2 = await viewer(gw, "v2")
        await escalated(gw, v2, cid2, a)
        # (two sockets of the same agent: one socket's requests run one at a time)
        a_too = await gw.client("agent", "a1", name="Agent a1")
        res = await asyncio.gather(*(c.request("action.compensate", conversation=cid2,
                                               kind="coupon", amount=30, reason=f"r{i}")
                                     for i, c in enumerate((a, a_too))))
        assert sorted(r["status"] for r in res) == ["done", "pending_approval"], res
    finally:
        await stop_gateway(gw)


async def test_a_failed_grant_does_not_use_up_the_allowance(backend):
    gw = await start_on(backend, max_compensation_default=50)
    try:
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        adapter = gw.gw.workspace.actions.adapter
        real = adapter.compensate

        async def broken(*args, **kw):
            from gateway.support.commerce import CommerceError
            raise CommerceError("shop down")
        adapter.compensate = broken
        r = await a.request("action.compensate", conversation=cid, kind="coupon", amount=50,
                            reason="x")
        assert r["status"] == "failed"
        adapter.compensate = real
        r = await a.request("action.compensate", conversation=cid, kind="coupon", amount=50,
                            reason="x")
        assert r["status"] == "done"
    finally:
        await stop_gateway(gw)


async def test_per_viewer_daily_cap_across_conversations_and_agents(backend):
    gw = await start_on(backend, max_compensation_default=50, compensation_viewer_daily=60)
    try:
        a1 = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a1)
        r = await a1.request("action.compensate", conversation=cid, kind="coupon", amount=40,
                             reason="x")
        assert r["status"] == "done"
        await a1.request("conversation.resolve", conversation=cid)
        await a1.request("agent.status", status="away")
        a2 = await agent(gw, "a2")
        cid2 = (await v.request("conversation.open", room=gw.room_id))["conversation"]
        await escalated(gw, v, cid2, a2)
        # a2 is within its own ¥50 on this conversation, but the viewer is at ¥40 of ¥60
        r = await a2.request("action.compensate", conversation=cid2, kind="coupon", amount=30,
                             reason="x")
        assert r["status"] == "pending_approval"
        r = await a2.request("action.compensate", conversation=cid2, kind="coupon", amount=20,
                             reason="x")
        assert r["status"] == "done"
        await asyncio.sleep(0.05)
    finally:
        await stop_gateway(gw)
