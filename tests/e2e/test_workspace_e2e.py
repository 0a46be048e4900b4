"""Issue 5, end to end: the agent workspace across the four pages.

A viewer with orders (``viewer-e2e`` of the demo commerce data) watches the stream on a phone
(390×844): the product on screen is reported as viewed, the viewer adds it to the cart, looks
at another product on the shelf, gets a proactive logistics notice, opens support and, upset,
is escalated by the bot. The agent console (1440×900) shows that context: mood, orders with
their logistics state, the browsing timeline. The agent grants a coupon within the limit
(done at once) and one above it: the approval request appears on ``/admin``, the supervisor
approves, the agent sees it done and the viewer is told in the widget. The agent resolves;
the rating prompt survives a reload of the viewer page; the viewer rates 5 and ``/dashboard``
shows the rating. Every page in its own browser context; screenshots in tests/artifacts/.
"""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, PHONE, open_page, wait_online

pytestmark = pytest.mark.browser

T = 10_000
ORDER = "2025060100006"  # viewer-e2e's order in gateway/demo/commerce_demo.json (D001, in transit)


async def test_agent_workspace_end_to_end(gw, browser, artifacts):
    logs: list[str] = []
    room = gw.room_id
    agent = await open_page(browser, f"{gw.url}/agent?user=agent-ws&name=Alice", DESKTOP, logs=logs)
    admin = await open_page(browser, f"{gw.url}/admin?user=boss", DESKTOP, logs=logs)
    dash = await open_page(browser, f"{gw.url}/dashboard?user=dash", DESKTOP, logs=logs)
    viewer = await open_page(browser, f"{gw.url}/?user=viewer-e2e&name=小王", PHONE, phone=True, logs=logs)
    for p in (agent, admin, dash, viewer):
        await wait_online(p)
    await admin.wait_for_selector('[data-testid="no-approvals"]', timeout=T)
    await agent.wait_for_selector('[data-testid="agent-item"][data-user="agent-ws"][data-status="available"]', timeout=T)
    await agent.wait_for_selector('[data-testid="status-since"]:not(:empty)', timeout=T)

    # --- the viewer browses: on-screen product (viewed), add to cart, another product on the shelf
    host = await gw.client("host", "host-1", room=room, name="山月")
    r = await host.request("room.on_screen", room=room, sku="D001")
    assert r["type"] == "ack", r
    await viewer.wait_for_selector('[data-testid="product-name"] >> text=三合一防水冲锋衣', timeout=T)
    await viewer.click('[data-testid="add-to-cart"]')
    await viewer.wait_for_selector('[data-testid="cart-count"]:text("1")', timeout=T)
    await viewer.click('[data-testid="shelf-open"]')
    await viewer.click('[data-testid="shelf-item"][data-sku="D003"]')
    await viewer.wait_for_selector('[data-testid="shelf-item"][data-sku="D003"].viewing', timeout=T)
    await viewer.screenshot(path=str(artifacts / "ws_viewer_shelf.png"))
    await viewer.click('[data-testid="shelf-close"]')
    # product_view D001 (on screen), add_to_cart D001, product_view D003: all stored
    await viewer.wait_for_function("() => window.__ld.browse.acked >= 3", timeout=T)

    # --- a proactive notice about the viewer's order: a notification over the stream
    token = gw.token("service", "shop", room=room)
    async with gw.http.post(f"{gw.url}/api/rooms/{room}/notices",
                            json={"kind": "logistics_delay", "orders": [ORDER],
                                  "text": "您的冲锋衣订单因天气原因将晚一天送达"},
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["notified"] == 1
    banner = viewer.locator('[data-testid="notice-banner"]')
    await banner.wait_for(state="visible", timeout=T)
    assert "晚一天送达" in await banner.inner_text()
    await viewer.wait_for_selector('[data-testid="launcher-dot"]:not(.hidden)', timeout=T)
    await viewer.screenshot(path=str(artifacts / "ws_viewer_notice.png"))

    # tapping the notification opens the widget (support_opened with the on-screen sku) and
    # the notice is a line of the conversation
    await banner.click()
    await viewer.wait_for_selector('[data-testid="msg-notice"] >> text=晚一天送达', timeout=T)
    await viewer.wait_for_function("() => window.__ld.browse.acked >= 4", timeout=T)

    # --- upset, the viewer is escalated by the bot
    await viewer.fill('[data-testid="chat-input"]', "冲锋衣物流太慢了，真让人生气！")
    await viewer.press('[data-testid="chat-input"]', "Enter")
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="assigned"]', timeout=T)

    # --- the console shows the context: mood, orders with logistics, the browsing timeline
    await agent.wait_for_selector('[data-testid="chat-state"][data-state="assigned"]', timeout=T)
    await agent.wait_for_selector('[data-testid="ctx-mood"][data-mood="angry"]', timeout=T)
    order = agent.locator(f'[data-testid="order-item"][data-order="{ORDER}"]')
    await order.wait_for(timeout=T)
    assert await order.get_attribute("data-logistics") == "in_transit"
    assert "顺丰速运" in await order.inner_text()
    assert "SF2223334445" in await order.inner_text()
    # never another viewer's orders
    assert await agent.locator('[data-testid="order-item"]').count() == 1
    tl = agent.locator('[data-testid="ctx-timeline"]')
    for kind, sku in (("product_view", "D001"), ("add_to_cart", "D001"), ("product_view", "D003"),
                      ("support_opened", "D001")):
        await tl.locator(f'[data-testid="timeline-item"][data-kind="{kind}"][data-sku="{sku}"]').first.wait_for(timeout=T)
    assert "三合一防水冲锋衣" in await agent.locator('[data-testid="ctx-cart"]').inner_text()
    assert await agent.locator('[data-testid="ctx-reason"]').inner_text() != ""
    await agent.wait_for_selector('[data-testid="chat-log"] >> text=真让人生气', timeout=T)
    assert await agent.locator('[data-testid="bot-part-label"]').count() == 1
    await agent.screenshot(path=str(artifacts / "ws_agent_context.png"))

    # --- a coupon within the limit (default 50): done at once, the viewer is told
    await agent.select_option('[data-testid="comp-kind"]', "coupon")
    await agent.fill('[data-testid="comp-amount"]', "20")
    await agent.fill('[data-testid="comp-reason"]', "物流延误")
    await agent.click('[data-testid="comp-submit"]')
    await agent.wait_for_selector('[data-testid="action-item"][data-amount="20"][data-status="done"]', timeout=T)
    await viewer.wait_for_selector('[data-testid="msg-system"] >> text=¥20', timeout=T)

    # --- one above it: an approval request for the supervisor
    await agent.fill('[data-testid="comp-amount"]', "120")
    await agent.fill('[data-testid="comp-reason"]', "延误严重，补偿运费")
    await agent.click('[data-testid="comp-submit"]')
    pending = agent.locator('[data-testid="action-item"][data-amount="120"]')
    await agent.wait_for_selector('[data-testid="action-item"][data-amount="120"][data-status="pending_approval"]', timeout=T)
    approval = await pending.get_attribute("data-approval")
    assert approval
    card = admin.locator(f'[data-testid="approval-{approval}"]')
    await card.wait_for(timeout=T)
    assert "120" in await card.inner_text()
    await viewer.wait_for_selector('[data-testid="msg-system"] >> text=等待主管审批', timeout=T)
    await admin.screenshot(path=str(artifacts / "ws_admin_approval.png"))
    await card.locator('[data-testid="approve"]').click()
    await admin.wait_for_selector('[data-testid="no-approvals"]', timeout=T)
    await agent.wait_for_selector(
        f'[data-testid="action-item"][data-approval="{approval}"][data-status="done"]', timeout=T)
    await viewer.wait_for_selector('[data-testid="msg-system"] >> text=已为您发放优惠券 ¥120', timeout=T)
    await agent.screenshot(path=str(artifacts / "ws_agent_actions.png"))
    await viewer.screenshot(path=str(artifacts / "ws_viewer_told.png"))

    # --- the agent resolves; the rating prompt survives a reload of the viewer page
    await agent.click('[data-testid="resolve"]')
    await viewer.wait_for_selector('[data-testid="csat"][data-status="ask"]', timeout=T)
    assert "Alice" in await viewer.locator('[data-testid="csat-title"]').inner_text()
    await viewer.reload()
    await wait_online(viewer)
    await viewer.wait_for_selector('[data-testid="csat"][data-status="ask"]', timeout=T)
    await viewer.click('[data-testid="csat-star"][data-value="5"]')
    await viewer.fill('[data-testid="csat-comment"]', "处理得很快，谢谢")
    await viewer.screenshot(path=str(artifacts / "ws_viewer_csat.png"))
    await viewer.click('[data-testid="csat-submit"]')
    await viewer.wait_for_selector('[data-testid="csat-thanks"]', timeout=T)
    await viewer.screenshot(path=str(artifacts / "ws_viewer_csat_thanks.png"))

    # --- the dashboard shows the rating (and the granted compensation)
    row = dash.locator(f'[data-testid="room-{room}"]')
    await row.locator('[data-testid="room-csat"]:text("5.00 (1)")').wait_for(timeout=T)
    await dash.locator('[data-testid="agent-agent-ws"] [data-testid="agent-csat"]:text("5.00 (1)")').wait_for(timeout=T)
    assert "140" in await dash.locator('[data-testid="total-compensation"]').inner_text()
    await dash.screenshot(path=str(artifacts / "ws_dashboard.png"), full_page=True)

    errors = [line for line in logs if line.startswith("pageerror")]
    assert not errors, errors
