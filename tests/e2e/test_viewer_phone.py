"""Issue 18, the viewer's side, in real Chromium (fake camera and microphone).

On a 390×844 phone (and the 1280×800 demo page), in Chinese and English: the support sheet is
half height and leaves ≥ 40 % of the stream uncovered (measured by elementFromPoint sampling
over the stream element: a point counts when what the viewer sees there belongs to the
stream), with the widget open and during a video call, whose view is a small floating window
(draggable, a tap expands it). Closing the widget during the call asks hang up / minimise;
minimised leaves an "in call" pill saying the camera is on; hanging up from the pill stops
every local track (getUserMedia is instrumented by an init script to keep every stream it
returned: each track must end). At every step a live local track has a visible indicator
(the floating window or the pill): a hidden call never keeps the camera on unseen.
After the agent resolves, the rating card does not hide the last message.

Screenshots of each state go to tests/artifacts/viewer/ (git-ignored).
"""

from __future__ import annotations

import pytest

from tests.conftest import ARTIFACTS

from .conftest import PHONE, open_page, wait_online
from .test_call import MEDIA, wait_frames

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not MEDIA, reason="gateway.media (the aiortc media server) is not available"),
]

T = 15_000
DEMO = {"width": 1280, "height": 800}
AGENT_VIEW = {"width": 1440, "height": 900}
SHOTS = ARTIFACTS / "viewer"

# every stream getUserMedia hands out, kept to check that each track ends (in every frame)
KEEP_STREAMS = """(() => {
  window.__gum = [];
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return;
  const orig = md.getUserMedia.bind(md);
  md.getUserMedia = async (c) => { const s = await orig(c); window.__gum.push(s); return s; };
})();"""

TRACKS = "() => (window.__gum || []).flatMap((s) => s.getTracks().map((t) => t.readyState))"

# share of ``sel``'s box (clipped to the viewport) where the element the viewer sees belongs
# to it: sampled on a 5 px grid with elementFromPoint (covering sheets, windows, shadow hosts
# all count as covering)
VISIBLE = """(sel) => {
  const el = document.querySelector(sel);
  const r = el.getBoundingClientRect();
  const x0 = Math.max(0, r.left), x1 = Math.min(innerWidth, r.right);
  const y0 = Math.max(0, r.top), y1 = Math.min(innerHeight, r.bottom);
  let seen = 0, all = 0;
  for (let y = y0 + 2; y < y1; y += 5) for (let x = x0 + 2; x < x1; x += 5) {
    all++;
    const hit = document.elementFromPoint(x, y);
    if (hit && el.contains(hit)) seen++;
  }
  return all ? seen / all : 0;
}"""

# the privacy rule: a live local track ⇒ the call is visibly on screen (window or pill)
PRIVACY = """() => {
  const live = (window.__gum || []).some((s) => s.getTracks().some((t) => t.readyState === 'live'));
  const shown = (sel) => { const e = document.querySelector(sel); if (!e) return false;
    const r = e.getBoundingClientRect(); const cs = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none'; };
  return {live, ok: !live || shown('[data-testid="call-dock"]') || shown('[data-testid="call-pill"]')};
}"""


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


async def assert_private(page) -> None:
    p = await page.evaluate(PRIVACY)
    assert p["ok"], f"a live local track with no call indicator on screen: {p}"


async def visible_share(page, sel: str = '[data-testid="stream"]') -> float:
    """What the viewer sees of ``sel`` once the page has settled: the sheet and the product
    card move with CSS transitions (0.2 s, longer on a busy machine), and a share measured
    mid-way is neither the before nor the after."""
    await page.wait_for_function(SETTLED, timeout=T)
    return await page.evaluate(VISIBLE, sel)


# no CSS transition running (infinite decorative animations do not count)
SETTLED = """() => document.getAnimations().every((a) =>
  !(a instanceof CSSTransition) || a.playState !== 'running')"""


def tag(lang: str, viewport: dict) -> str:
    return f"{viewport['width']}x{viewport['height']}_{lang}"


# make test: the phone in Chinese and the desktop demo page in English (both languages, both
# layouts); make test-all: the other two pairings as well (`slow`: docs/testing.md)
@pytest.mark.parametrize("lang,viewport", [
    ("zh", PHONE), pytest.param("en", PHONE, marks=pytest.mark.slow),
    pytest.param("zh", DEMO, marks=pytest.mark.slow), ("en", DEMO)],
    ids=["phone-zh", "phone-en", "demo-zh", "demo-en"])
async def test_viewer_overlay_keeps_the_stream_and_never_hides_a_call(gw, browser, lang, viewport):
    logs: list[str] = []
    phone = viewport is PHONE
    host = await gw.client("host", "host-1", room=gw.room_id, name="山月")
    r = await host.request("room.on_screen", room=gw.room_id, sku="D001")
    assert r["type"] == "ack", r
    name = tag(lang, viewport)
    ctx = await browser.new_context(viewport=viewport, permissions=["camera", "microphone"],
                                    device_scale_factor=1, is_mobile=phone, has_touch=phone,
                                    locale="zh-CN" if lang == "zh" else "en-US")
    await ctx.add_init_script(KEEP_STREAMS)
    viewer = await ctx.new_page()
    viewer.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
    await viewer.goto(f"{gw.url}/?user=viewer-ph-{lang}-{viewport['width']}&name=小王&lang={lang}")
    await wait_online(viewer)
    await viewer.wait_for_selector('[data-testid="product-card"]', timeout=T)
    await shot(viewer, f"idle_{name}")

    # live numbers: the host sets the jacket's stock to 3; the stream page's product card and
    # its gift counter follow, and the counter says the stock caps it (not "3/100")
    gift = viewer.locator('[data-testid="promo-counter"][data-promo="PD1"]')
    await gift.wait_for(timeout=T)
    assert await gift.get_attribute("data-capped") == "false"
    r = await host.request("room.stock", room=gw.room_id, sku="D001", stock=3)
    assert r["type"] == "ack", r
    await viewer.wait_for_selector('[data-testid="product-stock"][data-stock="3"]', timeout=T)
    await viewer.wait_for_selector('[data-testid="promo-counter"][data-promo="PD1"][data-left="3"]'
                                   '[data-capped="true"]', timeout=T)
    words = await gift.inner_text()
    assert "/100" not in words and ("受库存限制" in words if lang == "zh" else "limited by stock" in words), words

    # the sheet opens at half height: the stream and the product card stay in sight
    await viewer.click('[data-testid="open-support"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=T)
    share_open = await visible_share(viewer)
    assert share_open >= 0.40, f"stream visible with the widget open: {share_open:.0%}"
    card_seen = await visible_share(viewer, '[data-testid="product-card"]')
    assert card_seen >= 0.95, f"the on-screen product is covered: {card_seen:.0%} visible"
    if phone:
        # expandable by the handle's button and by a drag; back to half the same ways
        widget = viewer.locator('[data-testid="widget"]')
        await viewer.click('[data-testid="sheet-toggle"]')
        await viewer.wait_for_selector('[data-testid="widget"][data-size="full"]')
        assert await viewer.get_attribute('[data-testid="sheet-toggle"]', "aria-expanded") == "true"
        await viewer.click('[data-testid="sheet-toggle"]')
        await viewer.wait_for_selector('[data-testid="widget"][data-size="half"]')
        await viewer.wait_for_timeout(300)  # the height transition
        box = await viewer.locator('[data-testid="sheet-handle"]').bounding_box()
        x, y = box["x"] + 60, box["y"] + box["height"] / 2
        await viewer.mouse.move(x, y)
        await viewer.mouse.down()
        for dy in (20, 80, 200):
            await viewer.mouse.move(x, y - dy)
        await viewer.mouse.up()
        await viewer.wait_for_selector('[data-testid="widget"][data-size="full"]')
        await viewer.wait_for_timeout(300)
        box = await viewer.locator('[data-testid="sheet-handle"]').bounding_box()
        x, y = box["x"] + 60, box["y"] + box["height"] / 2
        await viewer.mouse.move(x, y)
        await viewer.mouse.down()
        for dy in (20, 80, 150):
            await viewer.mouse.move(x, y + dy)
        await viewer.mouse.up()
        await viewer.wait_for_selector('[data-testid="widget"][data-size="half"]')
        await viewer.wait_for_timeout(300)  # the height transition
        assert (await widget.bounding_box())["height"] <= viewport["height"] * 0.5

    await viewer.fill('[data-testid="chat-input"]', "这件卫衣有M码吗" if lang == "zh" else "Is size M in stock?")
    await viewer.press('[data-testid="chat-input"]', "Enter")
    await viewer.wait_for_selector('[data-testid="msg-bot"]', timeout=T)
    await shot(viewer, f"chatting_{name}")

    # no agent yet: queued
    await viewer.click('[data-testid="talk-to-person"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="queued"]', timeout=T)
    await viewer.wait_for_selector('[data-testid="queue-position"]', timeout=T)
    await shot(viewer, f"queued_{name}")

    agent = await open_page(browser, f"{gw.url}/agent?user=agent-ph-{lang}-{viewport['width']}&name=Alice",
                            AGENT_VIEW, logs=logs)
    await wait_online(agent)
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="assigned"]', timeout=T)
    await agent.wait_for_selector('[data-testid="chat-state"][data-state="assigned"]', timeout=T)

    # a video call: a small floating window over the stream, the sheet stays half
    await viewer.click('[data-testid="video-call"]')
    await viewer.wait_for_selector('[data-testid="call-view"][data-state="ringing"]', timeout=T)
    dock = viewer.locator('[data-testid="call-dock"]')
    await dock.wait_for(state="visible", timeout=T)
    await assert_private(viewer)
    await shot(viewer, f"ringing_{name}")
    await agent.wait_for_selector('[data-testid="incoming-call"] [data-testid="call-accept"]', timeout=T)
    await agent.click('[data-testid="call-accept"]')
    await wait_frames(viewer, 1)
    await viewer.wait_for_selector('[data-testid="call-view"][data-state="active"]', timeout=T)
    assert await dock.get_attribute("data-mode") == "float"
    share_call = await visible_share(viewer)
    assert share_call >= 0.40, f"stream visible during the call, widget open: {share_call:.0%}"
    # the floating window's controls: each reachable and named
    for tid in ("call-mute", "call-camera", "call-hangup"):
        b = dock.locator(f'[data-testid="{tid}"]')
        assert await b.is_visible(), tid
        assert (await b.get_attribute("aria-label") or "").strip(), tid
    await assert_private(viewer)
    await shot(viewer, f"in_call_{name}")

    # drag the window by its top line; a tap expands it, another shrinks it back
    before = await dock.bounding_box()
    sx, sy = before["x"] + 20, before["y"] + 12
    await viewer.mouse.move(sx, sy)
    await viewer.mouse.down()
    for dx in (10, 60, 140):
        await viewer.mouse.move(sx - dx, sy + dx / 2)
    await viewer.mouse.up()
    after = await dock.bounding_box()
    assert after["x"] < before["x"] - 100 and after["y"] > before["y"] + 40, (before, after)
    assert after["x"] >= 0 and after["x"] + after["width"] <= viewport["width"]
    assert await dock.get_attribute("data-mode") == "float"  # a drag is not a tap
    await viewer.mouse.click(after["x"] + 20, after["y"] + 12)
    await viewer.wait_for_selector('[data-testid="call-dock"][data-mode="expanded"]')
    assert (await dock.bounding_box())["width"] > after["width"] * 2
    await shot(viewer, f"in_call_expanded_{name}")
    await viewer.click('[data-testid="call-dock-expand"]')
    await viewer.wait_for_selector('[data-testid="call-dock"][data-mode="float"]')

    if phone:  # dragging the half sheet down during the call asks too (and cancel keeps it)
        box = await viewer.locator('[data-testid="sheet-handle"]').bounding_box()
        x, y = box["x"] + 60, box["y"] + box["height"] / 2
        await viewer.mouse.move(x, y)
        await viewer.mouse.down()
        for dy in (20, 120, 250):
            await viewer.mouse.move(x, y + dy)
        await viewer.mouse.up()
        await viewer.wait_for_selector('[data-testid="call-close-dialog"]', state="visible")
        await viewer.keyboard.press("Escape")
        await viewer.wait_for_selector('[data-testid="call-close-dialog"]', state="detached")
        assert await viewer.locator('[data-testid="widget"]').is_visible()
        await assert_private(viewer)

    # closing the widget during the call asks; cancel keeps everything as it was
    await viewer.click('[data-testid="close-support"]')
    dialog = viewer.locator('[data-testid="call-close-dialog"]')
    await dialog.wait_for(state="visible")
    await shot(viewer, f"close_question_{name}")
    await viewer.click('[data-testid="call-close-cancel"]')
    await dialog.wait_for(state="detached")
    assert await viewer.locator('[data-testid="widget"]').is_visible()
    # minimise: the widget closes, the call goes on in the pill, which says the camera is on
    await viewer.click('[data-testid="close-support"]')
    await viewer.click('[data-testid="call-close-minimise"]')
    await viewer.wait_for_selector('[data-testid="widget"]', state="hidden")
    pill = viewer.locator('[data-testid="call-pill"]')
    await pill.wait_for(state="visible")
    assert await dock.is_hidden()
    assert await pill.get_attribute("data-camera") == "true"
    assert await viewer.locator('[data-testid="call-pill-camera"]').is_visible()
    assert await viewer.evaluate(TRACKS) and "live" in await viewer.evaluate(TRACKS)
    await assert_private(viewer)
    await shot(viewer, f"minimised_pill_{name}")
    # back from the pill, and down to it again with the window's own button
    await viewer.click('[data-testid="call-pill-open"]')
    await dock.wait_for(state="visible")
    assert await pill.is_hidden()
    await viewer.click('[data-testid="call-dock-minimise"]')
    await pill.wait_for(state="visible")
    await assert_private(viewer)

    # hang up from the pill: every local track ends, the call ends at the agent too
    await viewer.click('[data-testid="call-pill-hangup"]')
    await viewer.wait_for_function(
        "() => window.__gum.length > 0 && window.__gum.every((s) => s.getTracks().length > 0 && "
        "s.getTracks().every((t) => t.readyState === 'ended'))", timeout=T)
    await pill.wait_for(state="hidden")
    await agent.wait_for_selector('[data-testid="call-view"]', state="hidden", timeout=T)
    await assert_private(viewer)

    # the agent says what was done and resolves: the rating card leaves that line in sight
    await viewer.click('[data-testid="open-support"]')
    last = "已为您发放退款 ¥80" if lang == "zh" else "Refund of ¥80 issued to you"
    for i in range(8):  # enough lines to scroll the half sheet's log
        await agent.fill('[data-testid="chat-input"]', f"#{i} …")
        await agent.press('[data-testid="chat-input"]', "Enter")
    await agent.fill('[data-testid="chat-input"]', last)
    await agent.press('[data-testid="chat-input"]', "Enter")
    await viewer.wait_for_selector(f'[data-testid="msg-agent"] >> text={last}', timeout=T)
    await agent.click('[data-testid="resolve"]')
    await viewer.wait_for_selector('[data-testid="csat"]:not(.hidden)', timeout=T)
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="resolved"]', timeout=T)
    await viewer.wait_for_timeout(300)
    seen = await viewer.evaluate("""(text) => {
        const log = document.querySelector('[data-testid="chat-log"]').getBoundingClientRect();
        const m = [...document.querySelectorAll('[data-testid="msg-agent"]')].find((e) => e.textContent.includes(text));
        const r = m.querySelector('.bubble').getBoundingClientRect();
        const csat = document.querySelector('[data-testid="csat"]').getBoundingClientRect();
        const l = document.querySelector('[data-testid="chat-log"]');
        return {top: r.top >= log.top - 1, bottom: r.bottom <= log.bottom + 1, clear: r.bottom <= csat.top + 1,
                dbg: [l.scrollTop, l.scrollHeight, l.clientHeight, r.top, r.bottom, log.top, log.bottom, csat.top, csat.height]};
    }""", last)
    dbg = seen.pop("dbg")
    assert seen == {"top": True, "bottom": True, "clear": True}, (seen, dbg)
    await shot(viewer, f"resolved_rating_{name}")
    # choosing a star opens the comment box; the line stays in sight
    await viewer.click('[data-testid="csat-star"][data-value="5"]')
    await viewer.wait_for_selector('[data-testid="csat-comment"]')
    await viewer.wait_for_timeout(300)
    assert await viewer.evaluate("""(text) => {
        const log = document.querySelector('[data-testid="chat-log"]').getBoundingClientRect();
        const m = [...document.querySelectorAll('[data-testid="msg-agent"]')].find((e) => e.textContent.includes(text));
        const r = m.querySelector('.bubble').getBoundingClientRect();
        return r.bottom <= log.bottom + 1 && r.top >= log.top - 1;
    }""", last)

    # reconnecting: the socket drops and stays away a moment
    await viewer.evaluate("""() => {
        const c = window.__ld.client;
        window.__savedUrls = c.urls;
        c.urls = ['ws://127.0.0.1:9/ws'];
        c.dropSocket();
    }""")
    await viewer.wait_for_selector('[data-testid="conn-state"][data-state="reconnecting"]',
                                   state="attached", timeout=T)
    await shot(viewer, f"reconnecting_{name}")
    await viewer.evaluate("() => { window.__ld.client.urls = window.__savedUrls; }")
    await wait_online(viewer, timeout=15_000)

    errors = [line for line in logs if line.startswith("pageerror")]
    assert not errors, errors
    print(f"{name}: stream visible {share_open:.0%} (widget open), {share_call:.0%} (in a call)")
    await ctx.close()


async def test_closing_during_a_voice_call_can_hang_up(gw, browser):
    """The other answer to the question: hang up. The camera/microphone stop, nothing of the
    call stays on the page; a voice call floats as a compact bar."""
    ctx = await browser.new_context(viewport=PHONE, permissions=["camera", "microphone"],
                                    device_scale_factor=1, is_mobile=True, has_touch=True)
    await ctx.add_init_script(KEEP_STREAMS)
    viewer = await ctx.new_page()
    agent = await open_page(browser, f"{gw.url}/agent?user=agent-ph-voice&name=Alice", AGENT_VIEW)
    await viewer.goto(f"{gw.url}/?user=viewer-ph-voice&name=小李")
    await wait_online(viewer)
    await wait_online(agent)
    await viewer.click('[data-testid="open-support"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=T)
    await viewer.click('[data-testid="talk-to-person"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="assigned"]', timeout=T)
    await viewer.click('[data-testid="voice-call"]')
    await agent.wait_for_selector('[data-testid="incoming-call"] [data-testid="call-accept"]', timeout=T)
    await agent.click('[data-testid="call-accept"]')
    await viewer.wait_for_selector('[data-testid="call-view"][data-state="active"]', timeout=T)
    dock = viewer.locator('[data-testid="call-dock"]')
    assert await dock.get_attribute("data-kind") == "voice"
    box = await dock.bounding_box()
    assert box["height"] <= 80, box  # a compact bar, not a box
    assert await viewer.locator('[data-testid="call-camera"]').is_hidden()
    share = await visible_share(viewer)
    assert share >= 0.40, share
    await assert_private(viewer)
    await shot(viewer, "voice_call_390x844_zh")
    await viewer.click('[data-testid="close-support"]')
    await viewer.click('[data-testid="call-close-hangup"]')
    await viewer.wait_for_selector('[data-testid="widget"]', state="hidden")
    await viewer.wait_for_function(
        "() => window.__gum.length > 0 && window.__gum.every((s) => s.getTracks().every((t) => t.readyState === 'ended'))",
        timeout=T)
    assert await dock.is_hidden() and await viewer.locator('[data-testid="call-pill"]').is_hidden()
    await agent.wait_for_selector('[data-testid="call-view"]', state="hidden", timeout=T)
    await assert_private(viewer)
    await ctx.close()
