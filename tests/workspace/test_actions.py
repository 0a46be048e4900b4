"""Compensation within authority, approval above it, returns, and the audit trail."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import stop_gateway
from tests.workspace.helpers import agent, escalated, scrape, start, val, viewer

pytestmark = pytest.mark.parity


def comp(samples, kind):
    return val(samples, "livedesk_compensation_amount_total", kind=kind)


async def test_within_limit_is_done_and_viewer_told_and_audited(backend):
    gw = await start(backend, max_compensation_default=50)
    try:
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        s0 = await scrape(gw)
        r = await a.request("action.compensate", conversation=cid, kind="coupon", amount=20,
                            reason="发货慢")
        assert r["type"] == "action.result", r
        assert r["status"] == "done" and r["kind"] == "coupon" and r["amount"] == 20
        assert r["action"] == "compensate" and r["conversation"] == cid
        told = await v.event("message", conversation=cid, kind="system")
        assert "20" in told["text"] and "优惠券" in told["text"]
        s1 = await scrape(gw)
        assert comp(s1, "coupon") - comp(s0, "coupon") == 20
        admin = await gw.client("admin", "boss")
        audit = await admin.request("audit.list", conversation=cid)
        [e] = audit["entries"]
        assert e["actor"] == "a1" and e["amount"] == 20 and e["kind"] == "coupon"
        assert e["outcome"] == "done" and e["conversation"] == cid and e["ts"] > 0
        # invalid amounts and kinds are refused at the edge; nothing moves
        for bad in ({"amount": -1, "kind": "coupon"}, {"amount": 0, "kind": "gift"},
                    {"amount": 5, "kind": "cash"}):
            e = await a.request("action.compensate", conversation=cid, reason="x", **bad)
            assert e["type"] == "error" and e["code"] == "bad_request", e
        assert comp(await scrape(gw), "coupon") == comp(s1, "coupon")
    finally:
        await stop_gateway(gw)


async def test_above_limit_needs_approval_then_approved_viewer_told(backend):
    gw = await start(backend, max_compensation_default=50)
    try:
        admin = await gw.client("admin", "boss", name="Boss")
        await admin.request("queue.get")  # live: watches the admins topic
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        s0 = await scrape(gw)
        r = await a.request("action.compensate", conversation=cid, kind="refund", amount=80,
                            reason="商品破损")
        assert r["status"] == "pending_approval" and r["approval"]
        req = await admin.event("approval.request", approval=r["approval"])
        assert req["conversation"] == cid and req["agent"]["user"] == "a1"
        assert req["amount"] == 80 and req["kind"] == "refund" and req["reason"] == "商品破损"
        assert req["limit"] == 50
        await asyncio.sleep(0.05)
        assert comp(await scrape(gw), "refund") == comp(s0, "refund")  # not yet
        pending = await admin.request("approval.list")
        assert [p["approval"] for p in pending["approvals"]] == [r["approval"]]
        # agents cannot decide
        e = await a.request("approval.decide", approval=r["approval"], approve=True)
        assert e["code"] == "forbidden"
        d = await admin.request("approval.decide", approval=r["approval"], approve=True, note="ok")
        assert d["type"] == "action.result" and d["status"] == "done"
        got = await a.event("action.result", approval=r["approval"], status="done")
        assert got["amount"] == 80
        told = await v.wait_for(lambda f: f.get("type") == "message" and f.get("kind") == "system"
                                and "已为您发放" in f["text"])
        assert "80" in told["text"]
        assert comp(await scrape(gw), "refund") - comp(s0, "refund") == 80
        e = await admin.request("approval.decide", approval=r["approval"], approve=False)
        assert e["code"] == "bad_state"
        outcomes = [x["outcome"] for x in (await admin.request("audit.list"))["entries"]]
        assert outcomes == ["pending_approval", "done"]
    finally:
        await stop_gateway(gw)


async def test_denied_path_tells_agent_and_viewer_and_grants_nothing(backend):
    gw = await start(backend, max_compensation_default=50)
    try:
        admin = await gw.client("admin", "boss")
        await admin.request("queue.get")
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        s0 = await scrape(gw)
        r = await a.request("action.compensate", conversation=cid, kind="gift", amount=99,
                            reason="想要赠品")
        await admin.event("approval.request", approval=r["approval"])
        d = await admin.request("approval.decide", approval=r["approval"], approve=False,
                                note="超出政策")
        assert d["status"] == "denied"
        got = await a.event("action.result", approval=r["approval"], status="denied")
        assert got["note"] == "超出政策"
        await v.wait_for(lambda f: f.get("type") == "message" and f.get("kind") == "system"
                         and "未获批准" in f["text"])
        await asyncio.sleep(0.05)
        s1 = await scrape(gw)
        assert comp(s1, "gift") == comp(s0, "gift")
    finally:
        await stop_gateway(gw)


async def test_limits_per_agent_and_team_from_config(backend):
    limits = {"a1": 200, "vip": {"limit": 500, "agents": ["a2"]}}
    gw = await start(backend, max_compensation_default=10, compensation_limits=limits)
    try:
        auth = gw.gw.workspace.actions.authority
        assert (auth.limit_for("a1"), auth.limit_for("a2"), auth.limit_for("a3")) == (200, 500, 10)
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        r = await a.request("action.compensate", conversation=cid, kind="coupon", amount=150,
                            reason="r")
        assert r["status"] == "done"
    finally:
        await stop_gateway(gw)


async def test_only_the_assigned_agent_may_act(backend):
    gw = await start(backend)
    try:
        a1 = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a1)
        a2 = await agent(gw, "a2")
        e = await a2.request("action.compensate", conversation=cid, kind="coupon", amount=1, reason="r")
        assert e["code"] == "not_member"
        e = await v.request("action.compensate", conversation=cid, kind="coupon", amount=1, reason="r")
        assert e["code"] == "forbidden"
        e = await a2.request("action.return", conversation=cid, order_id="2025060100003", reason="r")
        assert e["code"] == "not_member"
    finally:
        await stop_gateway(gw)


async def test_return_only_for_the_conversations_own_viewer(backend):
    gw = await start(backend)
    try:
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")  # v1 owns 2025060100003/4 in the demo data
        await escalated(gw, v, cid, a)
        other = await a.request("action.return", conversation=cid, order_id="2025060100001",
                                reason="尺码不合适")  # viewer-demo's order
        assert other["type"] == "error" and other["code"] == "not_found"
        unknown = await a.request("action.return", conversation=cid, order_id="9999999999999",
                                  reason="x")
        assert unknown["code"] == "not_found" and unknown["message"].replace(
            "9999999999999", "2025060100001") == other["message"]  # same answer: no leak
        r = await a.request("action.return", conversation=cid, order_id="2025060100003",
                            reason="尺码不合适")
        assert r["type"] == "action.result" and r["status"] == "done" and r["reference"]
        await v.wait_for(lambda f: f.get("type") == "message" and f.get("kind") == "system"
                         and "2025060100003" in f["text"])
        adapter = gw.gw.workspace.adapter
        assert [x["order_id"] for x in adapter.returns] == ["2025060100003"]
        admin = await gw.client("admin", "boss")
        entries = (await admin.request("audit.list", conversation=cid))["entries"]
        assert [(x["action"], x["outcome"]) for x in entries] == [("return", "done")]
    finally:
        await stop_gateway(gw)
