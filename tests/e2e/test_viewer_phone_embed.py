"""Issue 18, the viewer's side inside a shop's own page (widget.js + /embed), on a 390×844
phone whose page is a full-screen stream player (the hardest case for the sheet).

The shop page's sheet is half height: ≥ 40 % of the player stays visible with the widget open
and during a video call (whose floating window lives inside the sheet). Tapping the launcher
during the call asks, inside the widget, hang up or minimise; minimised hides the sheet and the
shop page shows an "in call" pill saying the camera is on; back from the pill, the call is on
screen again; hanging up from the pill stops every local track in the widget's frame
(getUserMedia instrumented in every frame by an init script). At every step a live local
track has a visible indicator on the shop's page.
"""

from __future__ import annotations

import pytest

from .conftest import PHONE, wait_online
from .shop_site import ShopSite
from .test_call import MEDIA, wait_frames
from .test_embed import embed_frame, gw, shop  # noqa: F401  (gw: the fixture)
from .test_signin_e2e import add, signed_in_agent
from .test_viewer_phone import KEEP_STREAMS, TRACKS, VISIBLE, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not MEDIA, reason="gateway.media (the aiortc media server) is not available"),
]

T = 15_000


class PhoneShop(ShopSite):
    """The test shop's page made for a phone: a viewport meta and a full-screen player."""

    async def page(self, request):
        resp = await super().page(request)
        text = resp.text.replace(
            '<meta charset="utf-8">',
            '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        ).replace("#player{width:640px;height:360px;", "#player{width:100vw;height:100vh;")
        assert "100vh" in text, "the shop page's player style changed: update PhoneShop"
        resp.text = text
        return resp


@pytest.fixture
async def phone_site(gw):  # noqa: F811
    base = await shop(gw)
    await base.close()  # the shop is registered; serve its page made for a phone instead
    site = PhoneShop(gw.url, base.shop_id, base.secret, base.room)
    site.port = base.port
    site.origin = base.origin
    site.foreign = base.foreign
    await site.start()
    try:
        yield site
    finally:
        await site.close()


# on the shop's page: is any call indicator on screen — its pill, or the sheet (inside which
# the widget shows the floating window or its own pill)?
SHOP_SHOWS_CALL = """() => {
  const root = document.querySelector('[data-livedesk]').shadowRoot;
  const vis = (sel) => { const e = root.querySelector(sel); if (!e) return false;
    const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  return {pill: vis('[data-testid="livedesk-call-pill"]'), sheet: vis('[data-testid="livedesk-sheet"]')};
}"""
FRAME_SHOWS_CALL = """() => {
  const vis = (sel) => { const e = document.querySelector(sel); if (!e) return false;
    const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  return vis('[data-testid="call-dock"]') || vis('[data-testid="call-pill"]');
}"""


async def assert_private(page, frame) -> None:
    live = "live" in await frame.evaluate(TRACKS)
    if not live:
        return
    shop = await page.evaluate(SHOP_SHOWS_CALL)
    in_frame = await frame.evaluate(FRAME_SHOWS_CALL)
    assert shop["pill"] or (shop["sheet"] and in_frame), \
        f"a live local track with no call indicator on the shop's page: {shop}, frame {in_frame}"


# make test: Chinese; make test-all: English too (the same layout; words are checked in every
# language by tests/e2e/test_a11y_locale.py)
@pytest.mark.parametrize("lang", ["zh", pytest.param("en", marks=pytest.mark.slow)])
async def test_embed_on_a_phone_keeps_the_player_and_never_hides_a_call(gw, phone_site, browser, lang):  # noqa: F811
    logs: list[str] = []
    await add(gw, f"ann{lang}", name="Ann")
    agent = await signed_in_agent(browser, gw, f"ann{lang}", logs=logs)
    ctx = await browser.new_context(viewport=PHONE, permissions=["camera", "microphone"],
                                    device_scale_factor=1, is_mobile=True, has_touch=True,
                                    locale="zh-CN" if lang == "zh" else "en-US")
    await ctx.add_init_script(KEEP_STREAMS)
    if lang == "en":  # the stub's queue, as a shop page would configure it
        await ctx.add_init_script("window.LiveDesk = {q: [['configure', [{lang: 'en'}]]]};")
    page = await ctx.new_page()
    page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
    await page.goto(f"{phone_site.origin}/?sub=phone-{lang}")
    launcher = page.locator('[data-testid="livedesk-launcher"]')
    await launcher.wait_for(timeout=T)
    frame = await embed_frame(page)
    await wait_online(frame)
    name = f"embed_390x844_{lang}"
    await shot(page, f"idle_{name}")

    await launcher.click()
    await frame.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=T)
    sheet = page.locator('[data-testid="livedesk-sheet"]')
    await sheet.wait_for(state="visible")
    share_open = await page.evaluate(VISIBLE, '[data-testid="player"]')
    assert share_open >= 0.40, f"player visible with the widget open: {share_open:.0%}"
    # the widget's expand button grows the shop page's sheet; and back to half
    half_h = (await sheet.bounding_box())["height"]
    await frame.click('[data-testid="sheet-toggle"]')
    await page.wait_for_function(
        "() => document.querySelector('[data-livedesk]').shadowRoot.querySelector('.sheet.full') !== null")
    await page.wait_for_timeout(300)
    assert (await sheet.bounding_box())["height"] > half_h * 1.5
    await frame.click('[data-testid="sheet-toggle"]')
    await page.wait_for_function(
        "() => document.querySelector('[data-livedesk]').shadowRoot.querySelector('.sheet.full') === null")
    await page.wait_for_timeout(300)

    await frame.fill('[data-testid="chat-input"]', "还有M码吗" if lang == "zh" else "Is M in stock?")
    await frame.click('[data-testid="chat-send"]')
    await frame.wait_for_selector('[data-testid="msg-bot"]', timeout=T)
    await shot(page, f"chatting_{name}")
    await frame.click('[data-testid="talk-to-person"]')
    await frame.wait_for_selector('[data-testid="conv-state"][data-state="assigned"]', timeout=T)
    await agent.wait_for_selector('[data-testid="chat-state"][data-state="assigned"]', timeout=T)

    await frame.click('[data-testid="video-call"]')
    await frame.wait_for_selector('[data-testid="call-view"][data-state="ringing"]', timeout=T)
    await shot(page, f"ringing_{name}")
    await agent.wait_for_selector('[data-testid="incoming-call"] [data-testid="call-accept"]', timeout=T)
    await agent.click('[data-testid="call-accept"]')
    await wait_frames(frame, 1)
    await frame.wait_for_selector('[data-testid="call-view"][data-state="active"]', timeout=T)
    await frame.wait_for_selector('[data-testid="call-dock"][data-mode="float"]', state="visible")
    share_call = await page.evaluate(VISIBLE, '[data-testid="player"]')
    assert share_call >= 0.40, f"player visible during the call: {share_call:.0%}"
    await assert_private(page, frame)
    await shot(page, f"in_call_{name}")

    # the widget's ✕ during the call: it asks; minimise → the sheet hides, the shop page's pill
    await frame.click('[data-testid="close-support"]')
    await frame.wait_for_selector('[data-testid="call-close-dialog"]', state="visible", timeout=T)
    await shot(page, f"close_question_{name}")
    await frame.click('[data-testid="call-close-minimise"]')
    await sheet.wait_for(state="hidden", timeout=T)
    pill = page.locator('[data-testid="livedesk-call-pill"]')
    await pill.wait_for(state="visible", timeout=T)
    await page.wait_for_selector('[data-testid="livedesk-pill-camera"]', state="visible", timeout=T)
    assert (await pill.get_attribute("data-camera")) == "true"
    assert "live" in await frame.evaluate(TRACKS)  # the call goes on, and the pill says so
    assert (await page.locator('[data-testid="livedesk-pill-hangup"]').get_attribute("aria-label")) \
        == ("挂断" if lang == "zh" else "Hang up")
    await assert_private(page, frame)
    await shot(page, f"minimised_pill_{name}")

    # back from the pill: the sheet and the floating window
    await page.click('[data-testid="livedesk-pill-open"]')
    await sheet.wait_for(state="visible", timeout=T)
    await frame.wait_for_selector('[data-testid="call-dock"][data-mode="float"]', state="visible", timeout=T)
    await pill.wait_for(state="hidden")
    await assert_private(page, frame)
    # the shop's own code closes the sheet (LiveDesk.close()): no question, but the pill shows
    await page.evaluate("() => LiveDesk.close()")
    await sheet.wait_for(state="hidden", timeout=T)
    await pill.wait_for(state="visible", timeout=T)
    await assert_private(page, frame)

    # hang up from the shop page's pill: every local track in the frame ends
    await page.click('[data-testid="livedesk-pill-hangup"]')
    await frame.wait_for_function(
        "() => window.__gum.length > 0 && window.__gum.every((s) => s.getTracks().length > 0 && "
        "s.getTracks().every((t) => t.readyState === 'ended'))", timeout=T)
    await pill.wait_for(state="hidden", timeout=T)
    await agent.wait_for_selector('[data-testid="call-view"]', state="hidden", timeout=T)
    await assert_private(page, frame)
    errors = [line for line in logs if line.startswith("pageerror")]
    assert not errors, errors
    print(f"{name}: player visible {share_open:.0%} (widget open), {share_call:.0%} (in a call)")
    await ctx.close()

