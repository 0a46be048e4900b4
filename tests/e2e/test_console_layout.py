"""Issue 18, the agent console on real laptop screens (1280×800 and 1440×900, zh and en).

One real three-party call (viewer on a phone, agent, host; Chromium with a fake camera and
microphone). At every state of the console - idle, chatting, ringing, in a 1:1 call, in a
3-party call, resolved - the console is photographed at both sizes in both languages
(tests/artifacts/console/, ignored by git). In the 3-party call, at both sizes and in both
languages, LAYOUT_JS checks that every header and call control is visible and whole inside
its column: not outside it, not clipped by a scrolling or hidden-overflow ancestor, its
content not overflowing, its text on one line (no stacks of single characters); that the
chat column is at least 360 px wide; and that the self view overlaps no remote tile.
"""

from __future__ import annotations

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

from .conftest import PHONE, escalate, open_page, wait_online
from .test_call import wait_frames

try:
    import gateway.media.service  # noqa: F401
    MEDIA = True
except ImportError:
    MEDIA = False

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not MEDIA, reason="gateway.media (the aiortc media server) is not available"),
]

T = 15_000
SIZES = {"1280x800": {"width": 1280, "height": 800}, "1440x900": {"width": 1440, "height": 900}}
LANGS = ("zh", "en")


@pytest.fixture
async def gw():
    r = await start_gateway(Config(dev=True, port=free_port(), retain_s=600))
    try:
        yield r
    finally:
        await stop_gateway(r)


# Returns a list of problems (empty: the layout is right). ``groups``: [[column selector,
# [element selectors]]]; every visible element matched must be whole inside the column.
LAYOUT_JS = """(groups) => {
  const bad = [];
  const shown = (el) => {
    const r = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none';
  };
  const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5
      && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
  const name = (el) => el.dataset.testid || (el.className && String(el.className)) || el.tagName;
  // the visible box: the viewport cut by every ancestor that clips its overflow
  const clipOf = (el) => {
    let c = {left: 0, top: 0, right: innerWidth, bottom: innerHeight};
    for (let a = el.parentElement; a; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX === 'visible' && cs.overflowY === 'visible') continue;
      const r = a.getBoundingClientRect();
      c = {left: Math.max(c.left, r.left), top: Math.max(c.top, r.top),
           right: Math.min(c.right, r.right), bottom: Math.min(c.bottom, r.bottom)};
    }
    return c;
  };
  // lines of text: distinct tops of the text's line boxes
  const lines = (el) => {
    const tops = [];
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      if (!n.textContent.trim()) continue;
      const range = document.createRange(); range.selectNodeContents(n);
      for (const r of range.getClientRects()) {
        if (r.width < 1) continue;
        if (!tops.some((t) => Math.abs(t - r.top) < 4)) tops.push(r.top);
      }
    }
    return tops.length;
  };
  let checked = 0;
  for (const [colSel, sels] of groups) {
    const col = document.querySelector(colSel);
    if (!col || !shown(col)) { bad.push(`${colSel}: column not shown`); continue; }
    const cr = col.getBoundingClientRect();
    for (const sel of sels) {
      const els = [...col.querySelectorAll(sel)].filter(shown);
      if (!els.length) bad.push(`${sel}: nothing shown in ${colSel}`);
      for (const el of els) {
        checked++;
        const r = el.getBoundingClientRect();
        const what = `${name(el)} "${el.textContent.trim().slice(0, 20)}"`;
        if (!inside(r, cr)) bad.push(`${what}: outside ${colSel} (${Math.round(r.left)}..${Math.round(r.right)} vs ${Math.round(cr.left)}..${Math.round(cr.right)})`);
        if (!inside(r, clipOf(el))) bad.push(`${what}: clipped`);
        if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).textOverflow !== 'ellipsis')
          bad.push(`${what}: content overflows (${el.scrollWidth} > ${el.clientWidth})`);
        if (lines(el) > 1) bad.push(`${what}: text wraps onto ${lines(el)} lines`);
      }
    }
  }
  const chat = document.querySelector('[data-testid="chat-pane"]').getBoundingClientRect();
  if (chat.width < 360) bad.push(`chat column ${Math.round(chat.width)} px < 360`);
  const self = document.querySelector('[data-testid="self-tile"]');
  if (self && shown(self)) {
    const s = self.getBoundingClientRect();
    for (const t of document.querySelectorAll('[data-testid="call-tile"]')) {
      const r = t.getBoundingClientRect();
      const w = Math.min(s.right, r.right) - Math.max(s.left, r.left);
      const h = Math.min(s.bottom, r.bottom) - Math.max(s.top, r.top);
      if (w > 0.5 && h > 0.5) bad.push('self view overlaps a remote tile');
    }
  }
  return {bad, checked, chat: Math.round(chat.width)};
}"""

HEADER = ['.topbar', [':scope > *']]
CHAT_HEAD = ['[data-testid="chat-pane"]', [
    '[data-testid="chat-viewer"]', '[data-testid="chat-state"]', '.head-actions > button',
    '.menu-wrap > button']]
CALL = ['[data-testid="chat-pane"]', [
    '[data-testid="call-status"]', '[data-testid="call-timer"]', '[data-testid="call-controls"] > button',
    '[data-testid="invite-host-select"]', '[data-testid="invite-host"]']]
COLUMN_HEADS = ['[data-testid="console"] nav', ['.h']]
CONTEXT_HEADS = ['[data-testid="context-panel"]', ['.ctx-head .h', '.ab-head b', '[data-testid="comp-submit"]']]


async def set_lang(page, lang: str) -> None:
    cur = await page.evaluate("document.documentElement.lang")
    if cur.startswith(lang):
        return
    await page.click('[data-testid="lang-switch"]')
    await page.wait_for_function(f"() => document.documentElement.lang.startsWith('{lang}')")


async def each_size_and_lang(page, state: str, artifacts, check: bool = False) -> list[dict]:
    """Screenshot ``state`` at every size and language; with ``check``, run LAYOUT_JS too."""
    out = []
    shots = artifacts / "console"
    shots.mkdir(parents=True, exist_ok=True)
    for size, vp in SIZES.items():
        await page.set_viewport_size(vp)
        for lang in LANGS:
            await set_lang(page, lang)
            await page.wait_for_timeout(150)  # a layout pass and a frame
            await page.screenshot(path=str(shots / f"agent_{state}_{size}_{lang}.png"))
            if check:
                groups = [HEADER, CHAT_HEAD, CALL, COLUMN_HEADS]
                if vp["width"] >= 1400:  # a column of its own there (a closed drawer below)
                    groups.append(CONTEXT_HEADS)
                r = await page.evaluate(LAYOUT_JS, groups)
                r.update(size=size, lang=lang)
                out.append(r)
    await set_lang(page, "zh")
    await page.set_viewport_size(SIZES["1440x900"])
    return out


async def test_console_layout_in_every_state_sizes_and_languages(gw, browser, artifacts):
    logs: list[str] = []
    agent = await open_page(browser, f"{gw.url}/agent?user=agent-lay&name=Alice%20Zhang",
                            SIZES["1440x900"], logs=logs)
    host = await open_page(browser, f"{gw.url}/host?user=host-1&name=山月", SIZES["1440x900"], logs=logs)
    viewer = await open_page(browser, f"{gw.url}/?user=viewer-lay&name=小王", PHONE, phone=True, logs=logs)
    for p in (agent, host, viewer):
        await wait_online(p)
    await each_size_and_lang(agent, "idle", artifacts)

    await escalate(viewer, agent, T)

    # a canned reply goes into the composer for editing; nothing is sent until Enter, and
    # its placeholders are filled from the live room when it is sent
    lines_before = await agent.locator('[data-testid="chat-log"] .msg').count()
    reply = agent.locator('[data-testid="reply-item"][data-id^="promo-"]').first
    await reply.wait_for(timeout=T)
    await reply.click()
    text = await agent.input_value('[data-testid="chat-input"]')
    assert "{promo." in text, text
    await agent.wait_for_timeout(300)
    assert await agent.locator('[data-testid="chat-log"] .msg').count() == lines_before
    await agent.press('[data-testid="chat-input"]', "End")
    await agent.keyboard.type(" 😊")
    await agent.press('[data-testid="chat-input"]', "Enter")
    sent = agent.locator('[data-testid="msg-mine"]').last
    await sent.wait_for(timeout=T)
    body = await sent.locator(".bubble").inner_text()
    assert "{" not in body and "😊" in body and any(ch.isdigit() for ch in body), body
    # English console: the same reply in English, placeholders kept
    await set_lang(agent, "en")
    en = await agent.locator('[data-testid="reply-item"][data-id^="promo-"]').first.inner_text()
    assert "left" in en and "{promo." in en, en
    await set_lang(agent, "zh")

    # keyboard: "?" lists the shortcuts; Esc closes; "r" focuses the composer
    await agent.locator('[data-testid="chat-log"]').focus()
    await agent.keyboard.press("?")
    await agent.wait_for_selector('[data-testid="help-overlay"]:not(.hidden)', timeout=T)
    assert await agent.locator('[data-testid="help-key"]').count() >= 8
    await agent.keyboard.press("Escape")
    await agent.wait_for_selector('[data-testid="help-overlay"]', state="hidden", timeout=T)
    await agent.locator('[data-testid="chat-log"]').focus()
    await agent.keyboard.press("r")
    assert await agent.evaluate("document.activeElement.dataset.testid") == "chat-input"

    # below 1,400 px the context is a drawer: closed, it takes no room; opened, it is whole
    await agent.set_viewport_size(SIZES["1280x800"])
    assert not await agent.locator('[data-testid="context-panel"]').is_visible()
    await agent.click('[data-testid="ctx-toggle"]')
    await agent.wait_for_function(
        "() => { const r = document.querySelector('[data-testid=context-panel]').getBoundingClientRect();"
        " return r.left >= 0 && r.right <= innerWidth + 0.5 && r.width >= 360; }", timeout=T)
    await agent.screenshot(path=str(artifacts / "console" / "agent_chatting_drawer_1280x800_zh.png"))
    await agent.keyboard.press("Escape")
    await agent.wait_for_function("() => !document.body.classList.contains('ctx-open')", timeout=T)
    await agent.set_viewport_size(SIZES["1440x900"])
    await each_size_and_lang(agent, "chatting", artifacts)

    await viewer.click('[data-testid="video-call"]')
    await agent.wait_for_selector('[data-testid="incoming-call"] [data-testid="call-accept"]', timeout=T)
    await each_size_and_lang(agent, "ringing", artifacts)
    # the ring is a row of its own: it covers no header
    for size, vp in SIZES.items():
        await agent.set_viewport_size(vp)
        overlap = await agent.evaluate("""() => {
          const a = document.querySelector('[data-testid=incoming-call]').getBoundingClientRect();
          return [...document.querySelectorAll('.chat-head, .topbar')].some((el) => {
            const b = el.getBoundingClientRect();
            return Math.min(a.right, b.right) > Math.max(a.left, b.left) && Math.min(a.bottom, b.bottom) > Math.max(a.top, b.top);
          }); }""")
        assert not overlap, size
    await agent.set_viewport_size(SIZES["1440x900"])
    await agent.click('[data-testid="call-accept"]')
    await wait_frames(agent, 1)
    await agent.wait_for_selector('[data-testid="call-view"][data-state="active"]', timeout=T)
    # call buttons are disabled while in a call
    assert await agent.locator('[data-testid="agent-video-call"]').is_disabled()
    assert await agent.locator('[data-testid="agent-voice-call"]').is_disabled()
    await each_size_and_lang(agent, "call_1to1", artifacts)

    # the call strip is resizable from the keyboard: a focusable separator whose value is the
    # strip's height; ↓ makes it taller by 20 px, ↑ shorter, Home/End go to its CSS limits
    sep = agent.locator('[data-testid="call-resize"]')
    assert await sep.get_attribute("role") == "separator" and await sep.get_attribute("aria-label")
    strip = agent.locator('[data-testid="call-column"]')

    async def strip_height() -> int:
        return round((await strip.bounding_box())["height"])

    h0 = await strip_height()
    assert int(await sep.get_attribute("aria-valuenow")) == h0
    await sep.focus()
    await agent.keyboard.press("ArrowDown")
    await agent.keyboard.press("ArrowDown")
    assert await strip_height() == h0 + 40
    assert int(await sep.get_attribute("aria-valuenow")) == h0 + 40
    await agent.keyboard.press("ArrowUp")
    assert await strip_height() == h0 + 20
    await agent.keyboard.press("Home")
    assert await strip_height() == int(await sep.get_attribute("aria-valuemin")) == 150
    await agent.keyboard.press("End")
    hmax = int(await sep.get_attribute("aria-valuemax"))
    assert await strip_height() == hmax > h0 + 40, hmax
    assert int(await sep.get_attribute("aria-valuenow")) == hmax
    await strip.evaluate("el => { el.style.height = ''; }")  # back to the default for the photos

    # the host is picked from the room's connected hosts, and the invitation says about whom
    sel = agent.locator('[data-testid="invite-host-select"]')
    await agent.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=invite-host-select] option')].some((o) => o.value === 'host-1')",
        timeout=T)
    assert "山月" in await sel.inner_text()
    assert await sel.get_attribute("aria-label")
    await agent.click('[data-testid="invite-host"]')
    await host.wait_for_selector('[data-testid="incoming-call"] [data-testid="call-join"]', timeout=T)
    invite_text = await host.locator('[data-testid="incoming-text"]').inner_text()
    assert "小王" in invite_text and "Alice Zhang" in invite_text, invite_text
    await host.click('[data-testid="call-join"]')
    await wait_frames(agent, 2, senders=[host, viewer])
    await wait_frames(host, 2, senders=[agent, viewer])

    # tiles are named "name · role"
    labels = await agent.eval_on_selector_all('[data-testid="call-tile"] .label', "els => els.map(e => e.textContent)")
    assert any("小王" in x and "观众" in x for x in labels), labels
    assert any("山月" in x and "主播" in x for x in labels), labels

    results = await each_size_and_lang(agent, "call_3party", artifacts, check=True)
    problems = [(r["size"], r["lang"], r["bad"]) for r in results if r["bad"]]
    assert not problems, problems
    assert all(r["checked"] >= 15 and r["chat"] >= 360 for r in results), results

    # camera off shows an avatar with "camera off", not a black tile
    await viewer.click('[data-testid="call-camera"]')
    tile = agent.locator('[data-testid="call-tile"][data-role="viewer"]')
    await agent.wait_for_function(
        "() => document.querySelector('[data-testid=call-tile][data-role=viewer]')?.classList.contains('cam-off')",
        timeout=T)
    assert "摄像头已关闭" in await tile.locator(".avatar-off").inner_text()
    await agent.screenshot(path=str(artifacts / "console" / "agent_call_3party_camoff_1440x900_zh.png"))

    await agent.click('[data-testid="call-hangup"]')
    await agent.wait_for_selector('[data-testid="call-view"]', state="hidden", timeout=T)
    await agent.wait_for_selector('[data-testid="agent-video-call"]:not([disabled])', timeout=T)
    await agent.click('[data-testid="resolve"]')
    await agent.wait_for_selector('[data-testid="chat-state"][data-state="resolved"]', timeout=T)
    await each_size_and_lang(agent, "resolved", artifacts)

    shots = sorted(p.name for p in (artifacts / "console").glob("agent_*_*_*.png"))
    for state in ("idle", "chatting", "ringing", "call_1to1", "call_3party", "resolved"):
        for size in SIZES:
            for lang in LANGS:
                assert f"agent_{state}_{size}_{lang}.png" in shots
    errors = [entry for entry in logs if entry.startswith("pageerror")]
    assert not errors, errors
    for r in results:
        print("layout", r["size"], r["lang"], "checked", r["checked"], "chat", r["chat"])
