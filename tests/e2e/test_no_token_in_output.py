"""No token in any URL or log (issue 13, finding 4): the real ``livedesk serve`` process,
every page loaded in Chromium with a token (``#token=`` as the pages now take it, and the
old ``?token=`` too), REST calls with bearer tokens, a WebSocket hello; then not one JWT
may appear in the server's stdout or stderr. Loopback only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from signaling import TokenAuthority
from tests.children import die_with_parent
from tests.conftest import free_port

from .conftest import CHROMIUM, DESKTOP, chromium_available, wait_online

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
SECRET = "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe"
PAGES = {"/": "viewer", "/agent": "agent", "/host": "host", "/dashboard": "admin",
         "/history": "supervisor",
         "/admin": "admin"}


def serve(port: int, data_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(PYTHONPATH=str(ROOT), LIVEDESK_SECRET=SECRET, LIVEDESK_LOOP="asyncio",
               LIVEDESK_DRAIN_S="0", LIVEDESK_LOG_LEVEL="INFO")
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
                             "--data-dir", str(data_dir)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=die_with_parent)


def wait_up(proc, base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail("livedesk serve did not come up")


async def test_no_jwt_in_server_output_after_pages_and_rest_calls(browser, tmp_path):
    if not chromium_available():
        pytest.fail(f"no Chromium at {CHROMIUM} (make system-deps installs Debian chromium)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    page_failures: list[str] = []
    proc = serve(port, tmp_path / "data")  # its own store, not the repository's ./data
    try:
        wait_up(proc, base)
        async with aiohttp.ClientSession() as http, http.get(base + "/api/rooms") as r:
            room = (await r.json())["rooms"][0]["id"]
        auth = TokenAuthority(SECRET)

        def token(role: str, user: str) -> str:
            return auth.issue(user, role, room=room if role in ("viewer", "host", "service")
                              else None, name=user, ttl_s=600)

        from playwright.async_api import TimeoutError as PlaywrightTimeout

        ctx = await browser.new_context(viewport=DESKTOP)
        for path, role in PAGES.items():
            tok = token(role, f"{role}-{path.strip('/') or 'widget'}")
            page = await ctx.new_page()
            await page.goto(f"{base}{path}#token={tok}")
            try:
                if path == "/history":  # REST only, no socket: its first search answered
                    await page.wait_for_selector(
                        '[data-testid="history-status"]:not(:empty):not(.error)', timeout=10_000)
                else:
                    await wait_online(page)
            except PlaywrightTimeout:
                page_failures.append(f"{path}: not online with #token=")
            if "token" in page.url:  # read once, gone from the address bar
                page_failures.append(f"{path}: token left in the address bar")
            # the old way: ignored, and removed from the address bar as well
            await page.goto(f"{base}{path}?token={tok}&lang=en")
            try:
                await page.wait_for_function("() => !location.search.includes('token')",
                                             timeout=5_000)
            except PlaywrightTimeout:
                page_failures.append(f"{path}: ?token= left in the address bar")
            await page.close()

        async with aiohttp.ClientSession() as http:
            service = {"Authorization": f"Bearer {token('service', 'shop')}"}
            async with http.post(f"{base}/api/rooms/{room}/orders", headers=service,
                                 json={"order_id": "o-1", "user": "v1", "sku": "D001",
                                       "qty": 1}) as r:
                assert r.status == 200, await r.text()
            async with http.post(f"{base}/api/rooms/{room}/notices", headers=service,
                                 json={"kind": "announcement", "text": "hi"}) as r:
                assert r.status == 200, await r.text()
            admin = token("admin", "boss")
            async with http.get(f"{base}/api/dashboard",
                                headers={"Authorization": f"Bearer {admin}"}) as r:
                assert r.status == 200
            async with http.get(f"{base}/api/dashboard?token={admin}",
                                headers={"Authorization": f"Bearer {admin}x"}) as r:
                assert r.status == 401  # a bad token is refused without being echoed
            async with http.get(f"{base}/ws?token={admin}") as r:
                await r.read()
            async with http.ws_connect(f"ws://127.0.0.1:{port}/ws?token={admin}") as ws:
                await ws.send_json({"type": "hello", "id": 1, "token": admin, "protocol": 1})
                welcome = await ws.receive_json(timeout=10)
                assert welcome["type"] == "welcome", welcome
                await ws.send_json({"type": "hello", "id": 2, "token": admin + "x",
                                    "protocol": 1})
                await ws.receive_json(timeout=10)
    finally:
        if proc.poll() is None:
            proc.terminate()
        out, err = proc.communicate(timeout=30)
    output = out + err
    # the access log was on (a JSON line without --dev: its quotes are escaped)
    assert re.search(r'GET /admin HTTP/1\.1\\?" 200', output), output[-3000:]
    leaks = [line for line in output.splitlines() if JWT.search(line)]
    assert not leaks, "JWT in server output:\n" + "\n".join(leaks[:10])
    assert not page_failures, page_failures
