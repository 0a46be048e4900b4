"""Network safety (docs/testing.md#network-safety): a browser call uses loopback only.

After a real call in headless Chromium, every candidate pair of every page's
RTCPeerConnection, and every candidate and pair of the gateway's ICE agents, is 127/8 or
::1 on both ends. Two calls: viewer ↔ gateway ↔ agent (the real pages), and the direct
browser ↔ browser call of ``benchmarks/call_setup.py`` (its relay moves the candidates to
loopback). Each also shows media flowed, so an empty list of pairs cannot pass.

What would make it fail: Chromium without ``--webrtc-ip-handling-policy=…`` binds a socket
to eth0's address and checks the gateway's 127.0.0.1 candidate from it (a pair
``192.0.2.x → 127.0.0.1`` on the page; a peer-reflexive ``192.0.2.x`` in the gateway's agent,
which answers it); a gateway config without ``LOOPBACK_MEDIA`` gathers on eth0 and checks
the browser's announced eth0 candidate.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import DESKTOP, PHONE, wait_online
from .ice_addresses import (
    TRACK_PCS_JS,
    browser_pairs,
    gateway_agents,
    non_loopback_browser_pairs,
)
from .test_call import MEDIA

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not MEDIA, reason="gateway.media (the aiortc media server) is not available"),
]

T = 15_000


async def _page(browser, url: str, viewport: dict):
    ctx = await browser.new_context(viewport=viewport, permissions=["camera", "microphone"])
    await ctx.add_init_script(TRACK_PCS_JS)
    page = await ctx.new_page()
    await page.goto(url)
    return page


async def _flowing(page, timeout: float = 15.0) -> list[dict]:
    """The page's connections once one has a succeeded pair that received bytes."""
    deadline = time.monotonic() + timeout
    conns: list[dict] = []
    while time.monotonic() < deadline:
        conns = await browser_pairs(page)
        if any(p["state"] == "succeeded" and p["bytesReceived"] > 0
               for c in conns for p in c["pairs"]):
            return conns
        await asyncio.sleep(0.2)
    raise AssertionError(f"{page.url}: no media flowing: {conns}")


async def test_gateway_call_uses_loopback_only(gw, browser):
    assert gw.gw.config.media_address == ["127.0.0.1"] and gw.gw.config.ice_allow_loopback
    agent = await _page(browser, f"{gw.url}/agent?user=agent-lo&name=Alice", DESKTOP)
    viewer = await _page(browser, f"{gw.url}/?user=viewer-lo&name=V", PHONE)
    for p in (agent, viewer):
        await wait_online(p)
    await viewer.click('[data-testid="open-support"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=T)
    await viewer.click('[data-testid="talk-to-person"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="assigned"]', timeout=T)
    await viewer.click('[data-testid="video-call"]')
    await agent.wait_for_selector('[data-testid="incoming-call"] [data-testid="call-accept"]',
                                  timeout=T)
    await agent.click('[data-testid="call-accept"]')

    for page in (viewer, agent):
        conns = await _flowing(page)
        assert not non_loopback_browser_pairs(conns), (page.url, conns)
    agents = gateway_agents(gw)
    assert {a.owner for a in agents} == {"viewer-lo", "agent-lo"}, agents
    for a in agents:
        assert a.succeeded and a.local and a.remote, a
        assert not a.non_loopback(), a
    await viewer.evaluate("window.__ld.calls.hangup()")


async def test_direct_browser_call_uses_loopback_only(browser):
    from benchmarks.call_setup import start_relay

    runner, url = await start_relay()
    pages = []
    try:
        pages.append(agent := await _page(browser, f"{url}/p2p?role=agent", DESKTOP))
        pages.append(viewer := await _page(browser, f"{url}/p2p?role=viewer", PHONE))
        await agent.evaluate("window.ready")
        await viewer.evaluate("window.ready")
        await viewer.evaluate("window.tap()")
        for page in (viewer, agent):
            conns = await _flowing(page)
            assert not non_loopback_browser_pairs(conns), (page.url, conns)
    finally:
        for page in pages:  # their sockets first: the relay's cleanup waits for open ones
            await page.context.close()
        await runner.cleanup()
