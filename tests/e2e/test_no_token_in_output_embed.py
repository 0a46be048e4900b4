"""No token in any URL or log, for the embed (issue 17 item 6): the real ``livedesk serve``
process, a shop registered with ``livedesk shop add`` on its store, the shop's page on
another origin embedding the widget in Chromium — an identified viewer who chats, an
anonymous one, a refused identity (another shop's room), an expired one — then not one JWT,
shop secret or anonymous cookie may appear in the server's output, and no JWT in any URL
the browser requested. (tests/e2e/test_no_token_in_output.py covers the staff pages.)"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.children import die_with_parent
from tests.conftest import free_port

from .conftest import DESKTOP, open_page, wait_online
from .shop_site import ShopSite
from .test_embed import embed_frame
from .test_no_token_in_output import SECRET, wait_up

# slow (make test-all): the run-wide token watch (tests/token_watch.py) already reads every
# server output of make test, the embed flows' (e2e/test_embed.py) included
pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
T = 15_000


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    e.update(PYTHONPATH=str(ROOT), LIVEDESK_SECRET=SECRET, LIVEDESK_LOOP="asyncio",
             LIVEDESK_DRAIN_S="0", LIVEDESK_LOG_LEVEL="INFO", LIVEDESK_AUTH_REFRESH_S="0.3")
    return e


def cli(*argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", *argv], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=die_with_parent)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_no_token_in_server_output_after_embed_flows(browser, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = str(tmp_path / "store")
    site = ShopSite(base, "acme", "", "")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
                             "--data-dir", data], cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    secrets: list[str] = []
    cookies: list[str] = []
    urls: list[str] = []
    try:
        await asyncio.to_thread(wait_up, proc, base)
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/api/rooms") as r:
                room = (await r.json())["rooms"][0]["id"]
            site.room = room
            site.secret = cli("shop", "add", "--shop", "acme", "--room", room, "--origin",
                              site.origin, "--anonymous", "--data-dir", data).splitlines()[-1]
            other = cli("shop", "add", "--shop", "other", "--room", "other-room",
                        "--data-dir", data).splitlines()[-1]
            secrets += [site.secret, other]
            deadline = time.monotonic() + 20
            while True:  # the server sees the new shop at its next refresh
                async with http.get(f"{base}/api/embed/config?room={room}",
                                    headers={"Origin": site.origin}) as r:
                    if r.headers.get("Access-Control-Allow-Origin") == site.origin:
                        break
                assert time.monotonic() < deadline, "the server never saw the shop"
                await asyncio.sleep(0.2)
        await site.start()

        # an identified viewer chats
        page = await open_page(browser, "about:blank", DESKTOP)
        page.context.on("request", lambda r: urls.append(r.url))
        await page.goto(f"{site.origin}/?sub=alice")
        frame = await embed_frame(page)
        await wait_online(frame)
        await page.click('[data-testid="livedesk-launcher"]')
        await frame.fill('[data-testid="chat-input"]', "hello")
        await frame.click('[data-testid="chat-send"]')
        await frame.wait_for_selector('[data-testid="msg-mine"]', timeout=T)
        # an identity for another shop's room, and an expired one: refused at hello
        await page.evaluate("(t) => LiveDesk.identify({token: t})",
                            site.sign("eve", secret=other, kid="other"))
        frame = await embed_frame(page)
        await page.evaluate("(t) => LiveDesk.identify({token: t})",
                            site.sign("old", exp_in=-60))
        await asyncio.sleep(1.5)

        # an anonymous viewer chats (its cookie is a credential too)
        anon = await open_page(browser, "about:blank", DESKTOP)
        anon.context.on("request", lambda r: urls.append(r.url))
        await anon.goto(f"{site.origin}/?identify=0")
        aframe = await embed_frame(anon)
        await anon.click('[data-testid="livedesk-launcher"]')
        await wait_online(aframe)
        await aframe.fill('[data-testid="chat-input"]', "hi")
        await aframe.click('[data-testid="chat-send"]')
        await aframe.wait_for_selector('[data-testid="msg-mine"]', timeout=T)
        cookies += [c["value"] for c in await anon.context.cookies()
                    if c["name"] == "livedesk_anon"]
        assert cookies, "the anonymous viewer's cookie was kept"
    finally:
        await site.close()
        if proc.poll() is None:
            proc.terminate()
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    output = out + err
    assert "GET /embed" in output and "POST /api/embed/anonymous" in output, output[-3000:]
    assert site.signed, "the shop signed nothing"
    leaks = [line for line in output.splitlines() if JWT.search(line)
             or any(s in line for s in secrets + cookies)]
    assert not leaks, "credential in server output:\n" + "\n".join(leaks[:10])
    assert not [u for u in urls if JWT.search(u)], [u for u in urls if JWT.search(u)]
