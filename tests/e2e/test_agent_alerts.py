"""Issue 18, agent alerts and presence, in real Chromium.

* A desktop notification fires for a new assignment and for a ringing call, with the
  permission granted through Playwright's context permissions. ``window.Notification`` is
  wrapped by an init script that records every construction and passes the real permission
  through, so the assertions fail if the page does not notify (or notifies without it).
* An unanswered ring notifies again (every 10 s while it rings); the title carries a badge.
  Declined mid-tone, the ring's notes stop at once and the page's AudioContext is suspended
  once no tone plays (web/js/alerts.js).
* A closed agent tab is offline within 15 s: gone from signaling presence at once, and the
  gateway's agent status (what queue.update tells every agent and the dashboard) turns
  ``offline`` after ``agent_offline_after_s`` (10 s).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import DESKTOP, wait_online

pytestmark = [pytest.mark.browser]

T = 15_000

# records notifications; permission is the real one (granted by the test's context)
RECORD_NOTIFICATIONS = """(() => {
  const Real = window.Notification;
  window.__notes = [];
  class Recorded {
    constructor(title, opts = {}) {
      window.__notes.push({title, body: opts.body || "", tag: opts.tag || "", at: Date.now()});
      this.onclick = null;
    }
    close() {}
    static get permission() { return Real ? Real.permission : "denied"; }
    static requestPermission() { return Real ? Real.requestPermission() : Promise.resolve("denied"); }
  }
  window.Notification = Recorded;
})();"""


async def agent_page(browser, url: str):
    ctx = await browser.new_context(viewport=DESKTOP, permissions=["notifications"],
                                    locale="zh-CN", device_scale_factor=1)
    await ctx.add_init_script(RECORD_NOTIFICATIONS)
    page = await ctx.new_page()
    logs: list[str] = []
    page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
    await page.goto(url)
    return page, logs


async def notes(page) -> list[dict]:
    return await page.evaluate("window.__notes")


async def test_agent_notified_for_assignment_and_ring_and_renotified(gw, browser, artifacts):
    agent, logs = await agent_page(browser, f"{gw.url}/agent?user=agent-al&name=Alice")
    await wait_online(agent)
    assert await agent.evaluate("Notification.permission") == "granted"
    # the header's "enable alerts" button is for a permission not yet given
    assert await agent.locator('[data-testid="alerts-enable"]').is_hidden()
    await agent.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=agent-item]')].some((e) => e.dataset.status === 'available')",
        timeout=T)

    viewer = await gw.client("viewer", "v-al", room=gw.room_id, name="小王")
    cid = (await viewer.request("conversation.open", room=gw.room_id))["conversation"]
    await viewer.request("message.send", conversation=cid, text="我要退货", client_msg_id="m1")
    await viewer.request("conversation.escalate", conversation=cid)
    await agent.wait_for_selector('[data-testid="chat-state"][data-state="assigned"]', timeout=T)
    await agent.wait_for_function("() => window.__notes.length >= 1", timeout=T)
    first = (await notes(agent))[0]
    assert "小王" in first["title"] and first["tag"] == f"conv-{cid}", first

    # the viewer rings (voice); the console notifies, badges the title, and notifies again
    # while nobody answers
    await viewer.request("call.request", conversation=cid, video=False)
    await agent.wait_for_selector('[data-testid="incoming-call"] [data-testid="call-accept"]', timeout=T)
    await agent.wait_for_function(
        "() => window.__notes.filter((n) => n.tag.startsWith('ring-')).length >= 1", timeout=T)
    t0 = time.monotonic()
    title = await agent.title()
    assert title.startswith("(") and "客服工作台" in title, title
    assert await agent.evaluate("document.body.dataset.badge") != "0"
    await agent.screenshot(path=str(artifacts / "alerts_agent_ringing.png"))
    await agent.wait_for_function(
        "() => window.__notes.filter((n) => n.tag.startsWith('ring-')).length >= 2", timeout=14_000)
    rings = [n for n in await notes(agent) if n["tag"].startswith("ring-")]
    assert len({n["tag"] for n in rings}) == 1  # the same ring, re-notified
    assert 8.0 <= (rings[1]["at"] - rings[0]["at"]) / 1000 <= 12.5, rings
    assert time.monotonic() - t0 < 14

    # declined from the keyboard ("d"): the ring stops, so do its notifications and the badge
    await agent.locator("body").click(position={"x": 5, "y": 300})
    # a ring tone is playing (0.48 s of notes) when the agent declines: it stops at once
    ringing = "[...window.__ld.alerts.voices.values()].filter((t) => t === 'ring').length"
    before = await agent.evaluate(ringing)  # the re-notify's notes may still be playing
    await agent.evaluate("window.__ld.alerts.beep('ring')")
    assert await agent.evaluate("window.__ld.alerts.audio.state") == "running"
    assert await agent.evaluate(ringing) == before + 3
    await agent.keyboard.press("d")
    await agent.wait_for_selector('[data-testid="incoming-call"]', state="hidden", timeout=T)
    assert await agent.evaluate("window.__ld.alerts.voices.size") == 0
    # with no tone left the page's AudioContext is suspended (a running one renders silence
    # through the audio service for as long as the console is open)
    await agent.wait_for_function("() => window.__ld.alerts.audio.state === 'suspended'", timeout=2_000)
    # the re-notify timer is gone (no 10 s wait needed to see that nothing follows)
    assert await agent.evaluate("window.__ld.alerts.ring") is None
    n_after = len(await notes(agent))
    await agent.wait_for_timeout(1_000)
    assert len(await notes(agent)) == n_after
    assert not (await agent.title()).startswith("(")
    assert not logs, logs


async def test_closed_agent_tab_is_offline_within_15_s(gw, browser):
    agent, logs = await agent_page(browser, f"{gw.url}/agent?user=agent-gone&name=Bob")
    await wait_online(agent)
    watcher = await gw.client("agent", "agent-watch", name="Watcher")
    await watcher.request("agent.status", status="away")  # never takes the conversation

    async def status_of(user: str) -> str | None:
        q = await watcher.request("queue.get")
        return next((a["status"] for a in q.get("agents", []) if a["user"] == user), None)

    deadline = time.monotonic() + T / 1000
    while await status_of("agent-gone") != "available":
        assert time.monotonic() < deadline, "the console never set itself available"
        await agent.wait_for_timeout(100)
    hub = gw.gw.hub
    assert hub.online("agent-gone")

    closed_at = time.monotonic()
    await agent.context.close()
    # signaling presence: the socket is gone at once
    while hub.online("agent-gone"):
        assert time.monotonic() - closed_at < 5, "the socket outlived the tab"
        await asyncio.sleep(0.1)
    assert await hub.presence_of("agent-gone") == []
    # the gateway's agent status, as every agent (and the dashboard) sees it
    ev = await watcher.wait_for(
        lambda f: f.get("type") == "queue.update"
        and any(a["user"] == "agent-gone" and a["status"] == "offline" for a in f.get("agents", [])),
        timeout=15)
    took = time.monotonic() - closed_at
    assert ev and took < 15, took
    assert await status_of("agent-gone") == "offline"
    print(f"closed tab offline after {took:.1f} s")
