"""The supervisor's dashboard shows the same figures on every node, a node started later
included, and each node pushes only to its own watchers. Real Redis, gateways in this
process."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.workspace.helpers import StubResponder, say

pytestmark = pytest.mark.redis

SECRET = "dashboard-cluster-test-secret-32-bytes-long"


async def node(url: str, name: str):
    return await start_gateway(Config(dev=True, port=free_port(), redis_url=url, node_id=name,
                                      secret=SECRET, retain_s=600),
                               responder=StubResponder())


async def figures(gw) -> dict:
    hdr = {"Authorization": f"Bearer {gw.token('admin', 'boss')}"}
    async with gw.http.get(gw.url + "/api/dashboard", headers=hdr) as r:
        assert r.status == 200
        d = await r.json()
    return {"totals": {k: d["totals"][k] for k in ("conversations", "frt_p50_s", "conversions",
                                                   "csat_count", "csat_avg")},
            "agents": {a["user"]: (a["conversations"], a["consecutive_negative"])
                       for a in d["agents"]},
            "node": d.get("node")}


async def test_every_node_computes_the_same_dashboard(redis_server):
    a = await node(redis_server.url, "A")
    b = await node(redis_server.url, "B")
    c = None
    try:
        room = a.room_id
        boss_a = await a.client("admin", "boss")
        await boss_a.request("dashboard.watch")
        agent = await b.client("agent", "ag", name="Agent")
        await agent.request("agent.status", status="available")
        v = await a.client("viewer", "v1", room=room)
        cid = (await v.request("conversation.open", room=room))["conversation"]
        await say(v, cid, "negative 我要转人工")  # the stub: negative mood, escalates
        await agent.event("conversation.assigned", conversation=cid)
        await say(agent, cid, "您好")
        await agent.request("conversation.resolve", conversation=cid)  # decided on B
        hdr = {"Authorization": f"Bearer {a.token('service', 'shop')}"}
        async with a.http.post(f"{a.url}/api/rooms/{room}/orders", headers=hdr,
                               json={"order_id": "o-1", "user": "v1", "sku": "D004",
                                     "qty": 1}) as r:  # posted to A
            assert r.status == 200, await r.text()

        want_done = {"resolved_by_agent": 1}
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while True:
            fa, fb = await figures(a), await figures(b)
            done = all(f["totals"]["conversations"]["resolved_by_agent"] == 1
                       and f["totals"]["conversions"] == 1
                       and f["agents"].get("ag", (None, 0))[1] == 1 for f in (fa, fb))
            if done:
                break
            assert loop.time() - t0 < 5, (fa, fb)
            await asyncio.sleep(0.1)
        assert fa["node"] == "A" and fb["node"] == "B"
        fa.pop("node"), fb.pop("node")
        assert fa == fb
        assert fa["totals"]["frt_p50_s"] is not None
        assert fa["totals"]["conversations"]["resolved_by_agent"] == want_done["resolved_by_agent"]

        # a node started afterwards never saw the conversation end: same figures
        c = await node(redis_server.url, "C")
        fc = await figures(c)
        fc.pop("node")
        assert fc["totals"] == fa["totals"]
        assert fc["agents"]["ag"][1] == 1  # the agent's negative run came along too

        # A's admin got pushes from A only (not one per node through the bus)
        await asyncio.sleep(1.2)
        pushes = [f for f in boss_a.frames if f.get("type") == "dashboard" and "id" not in f]
        assert pushes and {p["node"] for p in pushes} == {"A"}
        assert pushes[-1]["totals"]["conversations"]["resolved_by_agent"] == 1
    finally:
        for g in (a, b, c):
            if g is not None:
                await stop_gateway(g)
