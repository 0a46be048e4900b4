"""Issue 3, end to end: the host panel drives the live room; the viewer page follows live.

Host (1440×900) puts a product on screen, edits its stock, stops/starts a promotion,
creates one, and posts an announcement; the viewer page (390×844) shows the product on
screen, its stock and the pinned announcement in its open conversation within moments.
"""

from __future__ import annotations

import pytest

import gateway.app  # noqa: F401  (registers every message type)
from signaling.protocol import registered_types

from .conftest import DESKTOP, PHONE, open_page, wait_online

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif("room.watch" not in registered_types(),
                       reason="room.* is not registered on this server yet"),
]

T = 10_000


async def test_host_panel_drives_the_room(gw, browser, artifacts):
    logs: list[str] = []
    host = await open_page(browser, f"{gw.url}/host?user=host-1&name=山月", DESKTOP, logs=logs)
    await wait_online(host)
    await host.wait_for_selector('[data-testid="product-row"]', timeout=T)
    viewer = await open_page(browser, f"{gw.url}/?user=viewer-h&name=小李", PHONE, phone=True, logs=logs)
    await wait_online(viewer)

    # live counters are there
    await host.wait_for_selector('[data-testid="counter-open"]', timeout=T)
    assert await host.locator('[data-testid="counter-gift"]').count() >= 1

    # put a product that is not on screen now on screen
    row = host.locator('[data-testid="product-row"][data-onscreen="false"]').first
    sku = await row.get_attribute("data-sku")
    name = await row.locator(".name").inner_text()
    await row.locator('[data-testid="onscreen-btn"]').click()
    await host.wait_for_selector(f'[data-testid="product-row"][data-sku="{sku}"][data-onscreen="true"]', timeout=T)
    await viewer.wait_for_selector(f'[data-testid="product-name"] >> text={name}', timeout=T)

    # edit its stock
    row = host.locator(f'[data-testid="product-row"][data-sku="{sku}"]')
    await row.locator('[data-testid="stock-input"]').fill("7")
    await row.locator('[data-testid="stock-save"]').click()
    await viewer.wait_for_selector('[data-testid="product-stock"][data-stock="7"]', timeout=T)
    await host.wait_for_selector(f'[data-testid="counter-stock"][data-sku="{sku}"]', timeout=T)

    # stop and start the first promotion
    item = host.locator('[data-testid="promo-item"]').first
    pid = await item.get_attribute("data-promo")
    await item.locator('[data-testid="promo-stop"]').click()
    await host.wait_for_selector(f'[data-testid="promo-item"][data-promo="{pid}"][data-active="false"]', timeout=T)
    await host.locator(f'[data-testid="promo-item"][data-promo="{pid}"] [data-testid="promo-start"]').click()
    await host.wait_for_selector(f'[data-testid="promo-item"][data-promo="{pid}"][data-active="true"]', timeout=T)

    # create a new first-N gift promotion: the viewer's counters show it
    await host.click('[data-testid="promo-new"]')
    await host.fill('[data-testid="promo-id"]', "E2E1")
    await host.select_option('[data-testid="promo-kind"]', "first_n_gift")
    await host.fill('[data-testid="promo-text"]', "前20名送帆布袋")
    await host.fill('[data-testid="promo-limit"]', "20")
    await host.fill('[data-testid="promo-gift"]', "帆布袋")
    await host.click('[data-testid="promo-save"]')
    await host.wait_for_selector('[data-testid="promo-item"][data-promo="E2E1"]', timeout=T)
    await viewer.wait_for_selector('[data-testid="promo-counter"][data-promo="E2E1"][data-left="20"]', timeout=T)

    # the viewer opens support; the host announces; the widget pins it in the conversation
    await viewer.click('[data-testid="open-support"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=T)
    await host.fill('[data-testid="announce-text"]', "今晚8点加播一场，福利加倍！")
    await host.click('[data-testid="announce-send"]')
    await host.wait_for_selector('[data-testid="announcement-item"] >> text=福利加倍', timeout=T)
    await viewer.wait_for_selector('[data-testid="pinned-text"] >> text=福利加倍', timeout=T)
    await viewer.wait_for_selector('[data-testid="msg-announcement"] >> text=福利加倍', timeout=T)

    await host.screenshot(path=str(artifacts / "e2e_host_panel.png"))
    await viewer.screenshot(path=str(artifacts / "e2e_host_viewer.png"))
    await viewer.click('[data-testid="close-support"]')
    await viewer.screenshot(path=str(artifacts / "e2e_stream_page.png"))
    errors = [l for l in logs if l.startswith("pageerror")]
    assert not errors, errors
