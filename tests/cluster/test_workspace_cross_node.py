"""The workspace across nodes: browsing recorded on one node is in the handoff context built
on another, an approval is decided exactly once from any node, and a viewer rates on a third."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.cluster.nodes import Node, write_room
from tests.cluster.test_cross_node import connect

pytestmark = pytest.mark.redis


async def test_workspace_state_is_shared_by_all_nodes(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    env = {"LIVEDESK_MAX_COMPENSATION_DEFAULT": "50"}
    a, b, c = (Node(redis_server.url, n, rooms=[room], extra_env=env).start() for n in "ABC")
    http = aiohttp.ClientSession()
    try:
        agent = await connect(http, b, "agent", "agent-1", name="Alice")
        await agent.request("agent.status", status="available")
        boss_a = await connect(http, a, "admin", "boss")
        boss_c = await connect(http, c, "admin", "boss2")
        await boss_a.request("approval.list")
        await boss_c.request("approval.list")
        viewer = await connect(http, a, "viewer", "v1", room="flash", name="Ann")
        cid = (await viewer.request("conversation.open", room="flash"))["conversation"]
        for kind, sku in (("product_view", "S2"), ("add_to_cart", "S2")):
            r = await viewer.request("browse.event", room="flash", kind=kind, sku=sku)
            assert r["type"] == "ack", r
        await viewer.request("conversation.escalate", conversation=cid)
        got = await agent.event("conversation.assigned", conversation=cid, timeout=5)
        kinds = [e["kind"] for e in got["context"]["browsing"]]
        assert kinds == ["product_view", "add_to_cart"] and got["context"]["cart"] == ["S2"]

        # above the limit: any admin on any node sees the request; only one decision wins
        r = await agent.request("action.compensate", conversation=cid, kind="coupon",
                                amount=80, reason="late parcel")
        assert r["status"] == "pending_approval", r
        req_a = await boss_a.event("approval.request", approval=r["approval"], timeout=5)
        await boss_c.event("approval.request", approval=r["approval"], timeout=5)
        d1, d2 = await asyncio.gather(
            boss_a.request("approval.decide", approval=req_a["approval"], approve=True),
            boss_c.request("approval.decide", approval=req_a["approval"], approve=False))
        outcomes = sorted([d1.get("status") or d1.get("code"), d2.get("status") or d2.get("code")])
        assert outcomes in (["bad_state", "done"], ["bad_state", "denied"]), (d1, d2)
        final = await agent.wait_for(lambda f: f.get("type") == "action.result"
                                     and f.get("approval") == r["approval"]
                                     and f.get("status") in ("done", "denied"), timeout=5)
        audit = await boss_c.request("audit.list", conversation=cid)
        assert [e["outcome"] for e in audit["entries"]][-2:] == ["pending_approval", final["status"]]

        # resolve on B; the viewer, reconnected on C, rates exactly once
        await agent.request("conversation.resolve", conversation=cid)
        await viewer.event("csat.request", conversation=cid, timeout=5)
        v3 = await connect(http, c, "viewer", "v1", room="flash")
        await v3.request("ping")
        ok = await v3.request("csat.submit", conversation=cid, rating=5, comment="great")
        assert ok["type"] == "ack", ok
        again = await viewer.request("csat.submit", conversation=cid, rating=1)
        assert again["code"] == "conflict"
    finally:
        await http.close()
        for n in (a, b, c):
            n.stop()
