"""GET /api/dashboard and the live dashboard.watch pushes."""

from __future__ import annotations

import time

import pytest

from tests.conftest import stop_gateway
from tests.workspace.helpers import agent, escalated, say, start, viewer

pytestmark = pytest.mark.parity


async def test_dashboard_http_is_admin_only_and_has_rooms_and_agents(backend):
    gw = await start(backend)
    try:
        async with gw.http.get(gw.url + "/api/dashboard") as r:
            assert r.status == 401
        hdr = {"Authorization": f"Bearer {gw.token('agent', 'a1')}"}
        async with gw.http.get(gw.url + "/api/dashboard", headers=hdr) as r:
            assert r.status == 403
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        await say(a, cid, "您好")
        await a.request("conversation.resolve", conversation=cid)
        await v.event("csat.request", conversation=cid)
        await v.request("csat.submit", conversation=cid, rating=4)
        hdr = {"Authorization": f"Bearer {gw.token('admin', 'boss')}"}
        async with gw.http.get(gw.url + "/api/dashboard", headers=hdr) as r:
            assert r.status == 200
            d = await r.json()
        room = next(x for x in d["rooms"] if x["room"] == gw.room_id)
        assert room["conversations"]["resolved_by_agent"] == 1
        assert room["csat_avg"] == 4 and room["csat_count"] == 1
        assert room["frt_p50_s"] is not None and room["queue"] == 0
        [ag] = d["agents"]
        assert ag["user"] == "a1" and ag["csat_avg"] == 4 and ag["status"] == "available"
        assert d["totals"]["conversations"]["resolved_by_agent"] == 1
    finally:
        await stop_gateway(gw)


async def test_dashboard_watch_pushes_changes_at_most_every_500ms(backend):
    gw = await start(backend)
    try:
        admin = await gw.client("admin", "boss")
        first = await admin.request("dashboard.watch")
        assert first["type"] == "dashboard" and first["totals"]["csat_count"] == 0
        a = await agent(gw, "a1")
        v, cid = await viewer(gw, "v1")
        await escalated(gw, v, cid, a)
        await a.request("conversation.resolve", conversation=cid)
        await v.event("csat.request", conversation=cid)
        await v.request("csat.submit", conversation=cid, rating=5)
        push = await admin.wait_for(lambda f: f.get("type") == "dashboard" and "id" not in f
                                    and f["totals"]["csat_count"] == 1, timeout=3)
        assert push["totals"]["csat_avg"] == 5
        pushes = [f for f in admin.frames if f.get("type") == "dashboard" and "id" not in f]
        ts = [p["ts"] for p in pushes]
        assert all(b - a >= 0.45 for a, b in zip(ts, ts[1:], strict=False)), ts
        # nothing changes → no more pushes
        n = len(pushes)
        t0 = time.time()
        while time.time() - t0 < 1.2:
            await __import__("asyncio").sleep(0.1)
        assert len([f for f in admin.frames if f.get("type") == "dashboard" and "id" not in f]) == n
    finally:
        await stop_gateway(gw)
