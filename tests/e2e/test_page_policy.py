"""Pages under the new rules (issue 13, finding 10): ``?gw=`` is accepted only for gateway
origins the server lists, so a link cannot send the page's socket and token elsewhere.
(The CSP itself is exercised by every other e2e test: the pages run under it.) Loopback
only: the unlisted gateway is 127.0.0.1 on a port nobody listens on."""

from __future__ import annotations

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

from .conftest import DESKTOP, open_page, wait_online

pytestmark = pytest.mark.browser


async def test_unlisted_gw_is_ignored_and_listed_gw_is_used(browser):
    other = free_port()  # nothing listens here
    config = Config(dev=True, port=free_port())
    config.gateway_origins = [f"ws://127.0.0.1:{free_port()}"]
    r = await start_gateway(config)
    try:
        logs: list[str] = []
        page = await open_page(browser, f"{r.url}/agent?user=a-gw&gw=ws://127.0.0.1:{other}",
                               DESKTOP, logs=logs)
        await wait_online(page)  # on its own origin: the unlisted gateway was not tried
        urls = await page.evaluate("window.__ld.client.urls")
        assert urls == [r.url.replace("http://", "ws://") + "/ws"], urls
        assert any("ignoring ?gw=" in line for line in logs), logs

        listed = r.gw.config.gateway_origins[0]
        page2 = await open_page(browser, f"{r.url}/agent?user=a-gw2&gw={listed}", DESKTOP)
        urls = await page2.evaluate("window.__ld.client.urls")
        assert urls == [listed + "/ws"], urls
    finally:
        await stop_gateway(r)
