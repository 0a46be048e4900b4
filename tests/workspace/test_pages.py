"""The admin and dashboard pages in headless Chromium, driven by real protocol clients:
an above-limit coupon appears on /admin, is approved by a click, the viewer is told; the
viewer rates 5 and /dashboard shows it live. Screenshots in tests/artifacts/."""

from __future__ import annotations

import pytest

from tests.conftest import ARTIFACTS, stop_gateway
from tests.e2e.conftest import CHROMIUM, chromium_available, launch
from tests.workspace.helpers import agent, escalated, start, viewer

pytestmark = [pytest.mark.browser, pytest.mark.parity]


async def test_admin_approves_and_dashboard_shows_the_rating(backend):
    if not chromium_available():
        pytest.fail(f"no Chromium at {CHROMIUM} (make system-deps installs Debian chromium)")
    from playwright.async_api import async_playwright, expect

    gw = await start(backend, max_compensation_default=50)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    try:
        async with async_playwright() as pw:
            browser = await launch(pw)
            try:
                ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
                admin = await ctx.new_page()
                dash = await ctx.new_page()
                for p in (admin, dash):
                    p.on("pageerror", lambda e: errors.append(str(e)))
                await admin.goto(gw.url + "/admin?user=boss")
                await dash.goto(gw.url + "/dashboard?user=dash")
                await expect(admin.get_by_test_id("no-approvals")).to_be_visible()

                a = await agent(gw, "a1")
                v, cid = await viewer(gw, "viewer-e2e")
                await escalated(gw, v, cid, a)
                done = await a.request("action.compensate", conversation=cid, kind="coupon",
                                       amount=20, reason="发货慢")
                assert done["status"] == "done"
                r = await a.request("action.compensate", conversation=cid, kind="coupon",
                                    amount=120, reason="商品破损")
                assert r["status"] == "pending_approval"
                card = admin.get_by_test_id(f"approval-{r['approval']}")
                await expect(card).to_be_visible()
                await expect(card).to_contain_text("120")
                await expect(admin.get_by_test_id("sup-agent-a1")).to_be_visible()
                await admin.screenshot(path=str(ARTIFACTS / f"workspace-admin-approval-{backend.name}.png"))
                await card.get_by_test_id("approve").click()
                got = await a.event("action.result", approval=r["approval"], status="done")
                assert got["status"] == "done"
                await v.wait_for(lambda f: f.get("type") == "message" and f.get("kind") == "system"
                                 and "120" in f["text"])
                await expect(admin.get_by_test_id("no-approvals")).to_be_visible()

                await a.request("conversation.resolve", conversation=cid)
                await v.event("csat.request", conversation=cid)
                await v.request("csat.submit", conversation=cid, rating=5)
                row = dash.get_by_test_id(f"room-{gw.room_id}")
                await expect(row.get_by_test_id("room-csat")).to_have_text("5.00 (1)", timeout=5000)
                await expect(dash.get_by_test_id("agent-a1").get_by_test_id("agent-csat")).to_have_text("5.00 (1)")
                await expect(dash.get_by_test_id("total-compensation")).to_contain_text("140")
                await dash.screenshot(path=str(ARTIFACTS / f"workspace-dashboard-{backend.name}.png"), full_page=True)
            finally:
                await browser.close()
        assert not errors, errors
    finally:
        await stop_gateway(gw)
