"""Finding 11, viewer name part (issue 13), in real Chromium: the agent console shows the
token's name as the viewer's name and the viewer's own choice only as "nickname: …"."""

from __future__ import annotations

import pytest

from tests.conftest import start_gateway, stop_gateway

from .conftest import DESKTOP, open_page, wait_online

pytestmark = pytest.mark.browser


async def test_agent_console_shows_the_nickname_as_a_nickname(browser):
    gw = await start_gateway()
    try:
        page = await open_page(browser, f"{gw.url}/agent?user=agent-e2e&name=Alice", DESKTOP)
        await wait_online(page)
        await page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=agent-item]')].length > 0",
            timeout=10_000)
        v = await gw.client("viewer", "v-9", room=gw.room_id, name="小王")
        cid = (await v.request("conversation.open", room=gw.room_id, name="Alice"))["conversation"]
        await v.request("conversation.escalate", conversation=cid)
        await page.wait_for_selector('[data-testid="ctx-nickname"]', timeout=10_000)
        who = await page.locator('[data-testid="ctx-viewer"] .who-name b').inner_text()
        assert who == "小王"
        nick = await page.locator('[data-testid="ctx-nickname"]').inner_text()
        assert "昵称" in nick and "Alice" in nick
    finally:
        await stop_gateway(gw)
