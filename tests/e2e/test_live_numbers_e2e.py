"""Issue 18, live numbers on the staff pages: one source (the room's live counters) and one
formatter (common.js giftLine) for every figure about a first-N gift.

The viewer looks at the jacket and puts it in the cart, then asks for a person: the agent's
context panel lists the jacket's gift among "promotions for this viewer" with the number
left. The host then sets the jacket's stock to 3: the context panel's promotion line and its
live section both say 3 left, capped by stock, and the host panel's gift tile says 3 left
with "claimed 68/100" next to it (not "3/100" beside "claimed 68/100").
"""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, open_page, wait_online

pytestmark = [pytest.mark.browser]

T = 10_000


async def test_gift_numbers_are_live_and_agree(gw, browser, artifacts):
    logs: list[str] = []
    agent = await open_page(browser, f"{gw.url}/agent?user=agent-ln&name=Alice", DESKTOP, logs=logs)
    host = await open_page(browser, f"{gw.url}/host?user=host-1&name=山月", DESKTOP, logs=logs)
    for p in (agent, host):
        await wait_online(p)
    await host.wait_for_selector('[data-testid="counter-gift"][data-promo="PD1"]', timeout=T)
    await agent.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=agent-item]')].some((e) => e.dataset.status === 'available')",
        timeout=T)

    room = gw.room_id
    viewer = await gw.client("viewer", "v-ln", room=room, name="小林")
    cid = (await viewer.request("conversation.open", room=room))["conversation"]
    await viewer.request("browse.event", room=room, kind="product_view", sku="D001")
    await viewer.request("browse.event", room=room, kind="add_to_cart", sku="D001")
    await viewer.request("message.send", conversation=cid, text="冲锋衣有赠品吗", client_msg_id="m1")
    await viewer.request("conversation.escalate", conversation=cid)
    await agent.wait_for_selector('[data-testid="chat-state"][data-state="assigned"]', timeout=T)
    promo = agent.locator('[data-testid="ctx-promos"] [data-testid="promo-left"][data-promo="PD1"]')
    await promo.wait_for(timeout=T)
    await agent.wait_for_selector('[data-testid="ctx-promos"] [data-testid="promo-left"][data-promo="PD1"][data-left="32"]', timeout=T)

    # the host sets the jacket's stock to 3: every figure follows, and they agree
    row = host.locator('[data-testid="product-row"][data-sku="D001"]')
    await row.locator('[data-testid="stock-input"]').fill("3")
    await row.locator('[data-testid="stock-save"]').click()
    await agent.wait_for_selector('[data-testid="promo-left"][data-promo="PD1"][data-left="3"]', timeout=T)
    assert "受库存限制" in await promo.inner_text()
    assert await promo.get_attribute("data-snapshot") == "32"  # the handoff said 32: not shown
    live = agent.locator('[data-testid="ctx-gift"][data-promo="PD1"]')
    await agent.wait_for_selector('[data-testid="ctx-gift"][data-promo="PD1"][data-left="3"][data-capped="true"]', timeout=T)
    assert "已领 68/100" in await live.inner_text()

    tile = host.locator('[data-testid="counter-gift"][data-promo="PD1"]')
    await host.wait_for_selector('[data-testid="counter-gift"][data-promo="PD1"][data-left="3"][data-capped="true"]', timeout=T)
    assert (await tile.locator(".n").inner_text()).strip() == "3"
    line = await tile.locator('[data-testid="counter-gift-line"]').inner_text()
    assert "剩 3" in line and "受库存限制" in line and "已领 68/100" in line, line
    summary = await host.locator('[data-testid="promo-item"][data-promo="PD1"]').inner_text()
    assert line in summary, (line, summary)

    # English: the same numbers in words
    await host.click('[data-testid="lang-switch"]')
    line_en = await tile.locator('[data-testid="counter-gift-line"]').inner_text()
    assert line_en == "3 left (capped by stock) · 68/100 claimed", line_en
    await host.screenshot(path=str(artifacts / "live_numbers_host.png"))
    await agent.screenshot(path=str(artifacts / "live_numbers_agent.png"))
    assert not [entry for entry in logs if entry.startswith("pageerror")], logs
