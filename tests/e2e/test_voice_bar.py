"""Issue 18, the call UI of a voice call in the agent console (real Chromium, fake audio).

A voice call is a compact bar (avatars with "name · role", the timer, the controls), not a
video-sized black box; who speaks is shown from the audio level (a WebAudio AnalyserNode on
each track): Chromium's fake microphone beeps, so the viewer's avatar at the agent lights up.
Muting is shown to the other side.
"""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, PHONE, escalate, open_page, wait_online
from .test_console_layout import MEDIA

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not MEDIA, reason="gateway.media (the aiortc media server) is not available"),
]

T = 15_000

# Remembers every user whose voice-bar avatar turned "speaking" (a MutationObserver).
SPOKE_JS = """() => {
  window.__spoke = new Set();
  new MutationObserver((ms) => {
    for (const m of ms) {
      const el = m.target;
      if (el.dataset.testid === "voice-participant" && el.dataset.speaking === "true") window.__spoke.add(el.dataset.user);
    }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-speaking"]});
}"""


async def test_voice_call_is_a_compact_bar_with_speaking(gw, browser, artifacts):
    logs: list[str] = []
    agent = await open_page(browser, f"{gw.url}/agent?user=agent-vb&name=Alice", DESKTOP, logs=logs)
    viewer = await open_page(browser, f"{gw.url}/?user=viewer-vb&name=小王", PHONE, phone=True, logs=logs)
    for p in (agent, viewer):
        await wait_online(p)
    await escalate(viewer, agent, T)

    await viewer.click('[data-testid="voice-call"]')
    await agent.wait_for_selector('[data-testid="incoming-call"] [data-testid="call-accept"]', timeout=T)
    await agent.click('[data-testid="call-accept"]')
    await agent.wait_for_selector('[data-testid="call-view"][data-state="active"][data-kind="voice"]', timeout=T)

    dock = await agent.locator('[data-testid="call-column"]').bounding_box()
    assert dock and dock["height"] <= 120, dock
    assert await agent.locator('[data-testid="remote-video"]').count() == 0
    assert await agent.locator('[data-testid="call-camera"]').is_hidden()
    people = agent.locator('[data-testid="voice-participant"]')
    assert await people.count() == 2
    names = await people.all_inner_texts()
    assert any("小王" in n and "观众" in n for n in names), names
    assert any("Alice" in n and "客服" in n for n in names), names
    # controls: icons with labels and accessible names
    for tid in ("call-mute", "call-hangup"):
        assert await agent.locator(f'[data-testid="{tid}"]').get_attribute("aria-label")

    # speaking: the viewer's beeping microphone lights the viewer's avatar at the agent. Each
    # beep lights it for one meter sample (150 ms) every 1.5 s; a polled selector (Playwright
    # polls every 500 ms, a divisor of the beep period) can stay in phase with the gaps and
    # miss every one under load (seen in CI), so the page itself latches the first one
    await agent.evaluate(SPOKE_JS)
    await agent.wait_for_function("() => window.__spoke.has('viewer-vb')", timeout=T)
    (artifacts / "console").mkdir(parents=True, exist_ok=True)
    await agent.screenshot(path=str(artifacts / "console" / "agent_voice_call_1440x900_zh.png"))
    timer = await agent.locator('[data-testid="call-timer"]').inner_text()
    await agent.wait_for_function(
        f"() => document.querySelector('[data-testid=call-timer]').textContent !== '{timer}'", timeout=T)

    # the viewer mutes: the agent's bar says so
    await viewer.click('[data-testid="call-mute"]')
    await agent.wait_for_function(
        "() => document.querySelector('[data-testid=voice-participant][data-user=viewer-vb]').textContent.includes('静音')",
        timeout=T)
    await agent.click('[data-testid="call-hangup"]')
    await agent.wait_for_selector('[data-testid="call-view"]', state="hidden", timeout=T)
    assert not [entry for entry in logs if entry.startswith("pageerror")], logs
