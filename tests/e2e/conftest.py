"""End-to-end fixtures: a real gateway in-process and headless Chromium (fake camera/mic).

Never runs ``playwright install``: Chromium is the system one at /usr/bin/chromium.

Network safety (docs/testing.md#network-safety): browser calls exchange media over loopback
only. Every gateway these tests start keeps its media on 127.0.0.1
(``tests.conftest.LOOPBACK_MEDIA``), and Chromium runs with a WebRTC IP handling policy under
which it never binds a socket to a non-loopback address (``CHROMIUM_ARGS``).
"""

from __future__ import annotations

import os
import shutil

import pytest

import tests.conftest
from tests.conftest import ARTIFACTS, start_gateway, stop_gateway

CHROMIUM = os.environ.get("LIVEDESK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
    # keep timers and media running in background tabs/contexts
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows", "--autoplay-policy=no-user-gesture-required",
    # WebRTC on one UDP socket bound to the any address (0.0.0.0 / ::) instead of one socket
    # per interface address. With the default policy Chromium also binds one to eth0's
    # address and sends connectivity checks from it to the gateway's 127.0.0.1 candidate; the
    # gateway then learns that address as peer-reflexive and answers it: media over a
    # non-loopback address. From the any-address socket, packets to 127.0.0.1 leave with the
    # source 127.0.0.1 (the kernel's choice), so every pair is loopback on both ends. The
    # socket is still announced under the default route's address (a host candidate the
    # gateway's loopback-only policy ignores; see benchmarks/call_setup.py for browser pairs).
    # --allow-loopback-in-peer-connection is not needed (nor enough: it adds a 127.0.0.1
    # socket but keeps the eth0 one). Checked by e2e/test_call_loopback.py.
    "--webrtc-ip-handling-policy=default_public_and_private_interfaces",
    # Chromium 156's desktop UI preloads its omnibox popup (a WebUI page,
    # chrome://omnibox-popup.top-chrome/omnibox_popup_aim.html, in a renderer of its own) for
    # every window, i.e. for every Playwright page, a few seconds after the page opens:
    # ~150 ms of main-thread work (custom elements, style sheets) that landed inside the call
    # set-up benchmark's window on the viewer's CPU, and on the CPU of every e2e test. No
    # phone browser and no page of ours has it (docs/performance.md, "Call set-up").
    "--disable-features=WebUIOmniboxAimPopup,WebUIOmniboxPopup,WebUIOmniboxFullPopup",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM)


async def launch(pw):
    return await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@pytest.fixture(autouse=True)
def _media_on_loopback(monkeypatch):
    """Every gateway a browser test starts keeps its media on loopback (its module's own
    Config included)."""
    monkeypatch.setattr(tests.conftest, "ALWAYS_LOOPBACK_MEDIA", True)


@pytest.fixture
async def browser():
    if not chromium_available():
        pytest.fail(f"no Chromium at {CHROMIUM} (make system-deps installs Debian chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await launch(pw)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def gw():
    r = await start_gateway()
    try:
        yield r
    finally:
        await stop_gateway(r)


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


async def open_page(browser, url: str, viewport: dict, *, phone: bool = False, logs: list | None = None):
    """A page in its own browser context (its own storage: a separate user)."""
    ctx = await browser.new_context(
        viewport=viewport, permissions=["camera", "microphone"],
        device_scale_factor=1, is_mobile=phone, has_touch=phone, locale="zh-CN")
    page = await ctx.new_page()
    if logs is not None:
        page.on("console", lambda m: logs.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
    await page.goto(url)
    return page


async def wait_online(page, timeout: float = 10_000):
    await page.wait_for_selector('[data-testid="conn-state"][data-state="online"]', state="attached",
                                 timeout=timeout)


async def escalate(viewer, agent, timeout: float = 15_000) -> None:
    """The viewer opens the widget, asks for a person, and both sides show the conversation
    assigned (the start of every chat and call test with an agent on line)."""
    await viewer.click('[data-testid="open-support"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=timeout)
    await viewer.click('[data-testid="talk-to-person"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="assigned"]', timeout=timeout)
    await agent.wait_for_selector('[data-testid="chat-state"][data-state="assigned"]', timeout=timeout)
