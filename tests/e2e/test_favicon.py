"""Issue 18: no page load ends in a 404 for the favicon (or anything else). The pages name
/static/favicon.svg; a browser that still asks for /favicon.ico gets the same SVG."""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, wait_online

pytestmark = [pytest.mark.browser]


async def test_favicon_served_and_no_page_load_404s(gw, browser):
    async with gw.http.get(gw.url + "/favicon.ico") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("image/svg+xml")
        assert (await r.text()).startswith("<svg")
    for path in ("/agent?user=agent-fav", "/host?user=host-1"):
        failed: list[str] = []
        ctx = await browser.new_context(viewport=DESKTOP)
        page = await ctx.new_page()
        page.on("response", lambda resp, out=failed: resp.status >= 400 and out.append(f"{resp.status} {resp.url}"))
        await page.goto(gw.url + path)
        await wait_online(page)
        icon = await page.evaluate("document.querySelector('link[rel=icon]')?.href")
        assert icon and icon.endswith("/static/favicon.svg"), icon
        await page.wait_for_timeout(300)
        assert not failed, (path, failed)
        await ctx.close()
