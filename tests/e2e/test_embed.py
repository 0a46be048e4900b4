"""Issue 17, the embed, in real Chromium with two origins: the gateway on
``http://127.0.0.1:G``, a plain shop page on ``http://localhost:S`` (tests/e2e/shop_site.py)
that pastes the snippet and identifies its viewer with a token its backend signs with the
shop's secret. The viewer chats, escalates to an agent signed in with a password on the
sign-in page, and starts a video call whose frames render on both sides. The gateway runs
without ``--dev``. Refused, each a test: the embed page framed by an origin the shop did
not register; a postMessage from a foreign origin; a shop token for another shop's room.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time

import pytest

from gateway.auth import admin as A
from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

from .conftest import DESKTOP, open_page, wait_online
from .shop_site import ShopSite
from .test_call import MEDIA, wait_frames
from .test_signin_e2e import add, signed_in_agent

pytestmark = [pytest.mark.browser]

T = 15_000
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")


@pytest.fixture
async def gw(tmp_path):
    r = await start_gateway(Config(port=free_port(), secret=secrets.token_hex(32), retain_s=600,
                                   data_dir=tmp_path / "store", auth_refresh_s=0.2))
    try:
        yield r
    finally:
        await stop_gateway(r)


async def shop(gw, shop_id="acme", anonymous=False, room=None) -> ShopSite:
    room = room or gw.room_id
    site = ShopSite(gw.url, shop_id, "", room)
    added = await A.add_shop(gw.gw.auth.accounts, shop_id, (room,), (site.origin,),
                             anonymous=anonymous)
    site.secret = added.secret
    await gw.gw.auth.refresher.refresh()
    return await site.start()


@pytest.fixture
async def site(gw):
    s = await shop(gw)
    try:
        yield s
    finally:
        await s.close()


async def embed_frame(page, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for f in page.frames:
            if "/embed?" in f.url:
                return f
        await asyncio.sleep(0.1)
    raise AssertionError(f"no embed frame in {[f.url for f in page.frames]}")


def boxes_overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


@pytest.mark.skipif(not MEDIA, reason="gateway.media (the aiortc media server) is not available")
async def test_shop_page_embeds_widget_identifies_chats_escalates_and_video_calls(
        gw, site, browser, artifacts):
    logs: list[str] = []
    urls: list[str] = []
    await add(gw, "ann", name="Ann")
    agent = await signed_in_agent(browser, gw, "ann", logs=logs)
    await agent.wait_for_selector('[data-testid="sign-out"]', timeout=T)
    shop_page = await open_page(browser, "about:blank", DESKTOP, logs=logs)
    shop_page.context.on("request", lambda r: urls.append(r.url))
    await shop_page.goto(f"{site.origin}/?sub=alice")

    # the launcher, in its corner, off the shop's player
    launcher = shop_page.locator('[data-testid="livedesk-launcher"]')
    await launcher.wait_for(timeout=T)
    player = await shop_page.locator('[data-testid="player"]').bounding_box()
    assert not boxes_overlap(await launcher.bounding_box(), player)

    frame = await embed_frame(shop_page)
    assert frame.url.startswith(gw.url + "/embed?")
    try:
        await wait_online(frame)
    except Exception:
        print(logs, await frame.evaluate("() => window.__ldEmbed"),
              await shop_page.evaluate("() => window.shopEvents"))
        raise
    welcome = await frame.evaluate("() => window.__ld.client.welcome")
    assert (welcome["user"], welcome["role"], welcome["room"]) == ("acme:alice", "viewer",
                                                                  gw.room_id)
    assert await frame.evaluate("() => window.__ldEmbed.mode") == "shop"
    allow = await shop_page.locator('[data-testid="livedesk-frame"]').get_attribute("allow")
    assert allow == "camera; microphone; autoplay"

    # browsing from the shop's page reaches the gateway (browse.event, acked)
    await shop_page.evaluate("() => LiveDesk.track({event: 'add_to_cart', sku: 'D001'})")
    await frame.wait_for_function("() => window.__ld.browse.acked >= 2", timeout=T, polling=100)

    # open, chat with the bot, escalate to the agent
    await launcher.click()
    await frame.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=T)
    await frame.fill('[data-testid="chat-input"]', "what's the coupon code?")
    await frame.click('[data-testid="chat-send"]')
    await frame.wait_for_selector('[data-testid="msg-bot"]', timeout=T)
    await frame.click('[data-testid="talk-to-person"]')
    await frame.wait_for_selector('[data-testid="conv-state"][data-state="assigned"]', timeout=T)
    await agent.wait_for_selector('[data-testid="chat-state"][data-state="assigned"]', timeout=T)
    agent_session = next(s for s in gw.gw.hub.sessions.values() if s.user == "ann")
    assert agent_session.claims.issuer == "gateway"  # a token minted after the sign-in
    # what the shop's page reported (onScreen, track) is in the agent's handoff timeline
    await agent.wait_for_selector('[data-testid="timeline-item"][data-kind="add_to_cart"]'
                                  '[data-sku="D001"]', state="attached", timeout=T)

    # a video call: frames render on both sides
    await frame.click('[data-testid="video-call"]')
    await frame.wait_for_selector('[data-testid="call-view"][data-state="ringing"]', timeout=T)
    await agent.wait_for_selector('[data-testid="incoming-call"] [data-testid="call-accept"]',
                                  timeout=T)
    await agent.click('[data-testid="call-accept"]')
    v = await wait_frames(frame, 1)
    a = await wait_frames(agent, 1)
    await frame.wait_for_selector('[data-testid="call-view"][data-state="active"]', timeout=T)
    await shop_page.screenshot(path=str(artifacts / "e2e_embed_shop_call.png"))
    await agent.screenshot(path=str(artifacts / "e2e_embed_agent_call.png"))
    await frame.click('[data-testid="call-hangup"]')
    await frame.wait_for_selector('[data-testid="call-view"]', state="hidden", timeout=T)

    # the token went by postMessage only: in no URL the browser asked for
    assert site.signed, "the shop's backend signed nothing"
    assert not [u for u in urls if JWT.search(u)], [u for u in urls if JWT.search(u)]
    errors = [line for line in logs if line.startswith("pageerror")]
    assert not errors, errors
    print("frames", v, a)


async def test_embed_page_framed_by_an_unregistered_origin_is_refused(gw, site, browser):
    # the header: this room's shop's origin only; every other page keeps 'none'
    async with gw.http.get(f"{gw.url}/embed?room={gw.room_id}") as r:
        assert r.status == 200
        csp = r.headers["Content-Security-Policy"]
        assert csp.endswith(f"frame-ancestors {site.origin}"), csp
        assert "X-Frame-Options" not in r.headers
    async with gw.http.get(f"{gw.url}/agent") as r:
        assert r.headers["Content-Security-Policy"].endswith("frame-ancestors 'none'")
        assert r.headers["X-Frame-Options"] == "DENY"

    # Chromium: the registered origin may frame it, another origin may not
    ok = await open_page(browser, f"{site.origin}/frame-embed", DESKTOP)
    framed = await embed_frame(ok)
    await framed.wait_for_function("() => !!window.__ldEmbed", timeout=T, polling=100)
    logs: list[str] = []
    bad = await open_page(browser, f"{site.foreign}/frame-embed", DESKTOP, logs=logs)
    await bad.wait_for_load_state("load")
    await bad.wait_for_function("() => document.getElementById('f') !== null")
    await asyncio.sleep(1.0)
    children = [f for f in bad.frames if f is not bad.main_frame]
    assert children, "the iframe element is there"
    for f in children:  # nothing of the widget runs in it
        info = await f.evaluate("() => ({embed: typeof window.__ldEmbed, "
                                "widget: !!document.querySelector('[data-testid=widget]')})")
        assert info == {"embed": "undefined", "widget": False}, (f.url, info)
    # and the snippet on an unregistered origin draws no launcher, and says why
    page = await open_page(browser, f"{site.foreign}/?identify=0", DESKTOP)
    await page.wait_for_function(
        "() => window.shopEvents.some((e) => e[0] === 'error' && e[1] === 'not_allowed')",
        timeout=T)
    assert await page.locator('[data-testid="livedesk-launcher"]').count() == 0


async def test_postmessage_from_a_foreign_origin_is_ignored(gw, site, browser):
    # 1. the widget's frame: a foreign page opens /embed in a window of its own and posts a
    #    token of its choosing to it (the viewer would chat as the attacker): ignored
    foreign = await open_page(browser, f"{site.foreign}/opener", DESKTOP)
    async with foreign.expect_popup() as popup_info:
        await foreign.click("#go")
    popup = await popup_info.value
    await popup.wait_for_function("() => window.__ldEmbed && window.__ldEmbed.ignored >= 6",
                                  timeout=T, polling=100)
    state = await popup.evaluate("() => ({mode: window.__ldEmbed.mode, accepted: "
                                 "window.__ldEmbed.accepted, welcome: window.__ld.client.welcome})")
    assert state == {"mode": "waiting", "accepted": 0, "welcome": None}, state

    # 2. the shop's page: a foreign frame in it (an ad) forges the widget's messages: ignored
    page = await open_page(browser, f"{site.origin}/?identify=0&ad=1", DESKTOP)
    frame = await embed_frame(page)
    await frame.wait_for_function("() => window.__ldEmbed && window.__ldEmbed.mode === 'signin'",
                                  timeout=T, polling=100)
    await page.click('[data-testid="livedesk-launcher"]')
    await page.wait_for_function("() => LiveDesk.ignored >= 9", timeout=T, polling=100)
    events = await page.evaluate("() => window.shopEvents")
    assert ["status", "forged"] not in events and events.count(["ready"]) == 1, events
    assert await page.locator('[data-testid="livedesk-sheet"]').is_visible()  # no forged close
    signin = frame.locator('[data-testid="embed-signin"]')
    assert await signin.get_attribute("class") == "embed-signin"  # shown (not .hidden)
    assert "登录" in await signin.text_content()
    assert await frame.evaluate("() => window.__ld.client.welcome") is None

    # the shop's own page can identify (its origin is the registered one)
    await page.evaluate("(t) => LiveDesk.identify({token: t})", site.sign("bob"))
    await wait_online(frame)
    assert await frame.evaluate("() => window.__ld.client.welcome.user") == "acme:bob"
    # another viewer signs in on the shop's site: the widget starts over as them
    await page.evaluate("(t) => LiveDesk.identify({token: t})", site.sign("carol"))
    await frame.wait_for_function(
        "() => window.__ld && window.__ld.client.welcome && "
        "window.__ld.client.welcome.user === 'acme:carol'", timeout=T, polling=100)


async def test_a_shop_token_for_another_shops_room_is_refused_in_the_widget(gw, site, browser):
    other = await A.add_shop(gw.gw.auth.accounts, "other", ("other-room",), (site.origin,))
    await gw.gw.auth.refresher.refresh()
    page = await open_page(browser, f"{site.origin}/?identify=0", DESKTOP)
    frame = await embed_frame(page)
    await frame.wait_for_function("() => window.__ldEmbed && window.__ldEmbed.mode === 'signin'",
                                  timeout=T, polling=100)
    # signed by the other shop, naming acme's room: refused by the gateway at hello
    token = site.sign("eve", secret=other.secret, kid="other")
    await page.evaluate("(t) => LiveDesk.identify({token: t})", token)
    await page.wait_for_function(
        "() => window.shopEvents.some((e) => e[0] === 'identity_expired')", timeout=T)
    assert await frame.evaluate("() => window.__ld.client.welcome") is None


@pytest.fixture
async def open_shop(gw):
    s = await shop(gw, "openshop", anonymous=True)
    try:
        yield s
    finally:
        await s.close()


async def test_anonymous_viewer_keeps_its_identity_and_history_in_this_browser(
        gw, open_shop, browser):
    """A shop that admits anonymous viewers: no identify, yet the widget connects as an
    anonymous viewer bound to this browser by the gateway's cookie — in a cross-site frame
    (localhost page, 127.0.0.1 gateway), where Chromium keeps only a Partitioned cookie.
    A reload is the same viewer with its conversation; another browser is someone else."""
    page = await open_page(browser, f"{open_shop.origin}/?identify=0", DESKTOP)
    frame = await embed_frame(page)
    await frame.wait_for_function("() => window.__ldEmbed && window.__ldEmbed.mode === "
                                  "'anonymous'", timeout=T, polling=100)
    await asyncio.sleep(0.5)  # a page view alone makes no anonymous identity
    assert await frame.evaluate("() => window.__ld.client.welcome") is None
    assert not [c for c in await page.context.cookies() if c["name"] == "livedesk_anon"]
    await page.click('[data-testid="livedesk-launcher"]')
    await wait_online(frame)
    user = await frame.evaluate("() => window.__ld.client.welcome.user")
    assert user.startswith("~anon:openshop:"), user
    await frame.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=T)
    await frame.fill('[data-testid="chat-input"]', "还有M码吗")
    await frame.click('[data-testid="chat-send"]')
    await frame.wait_for_selector('[data-testid="msg-mine"]:has-text("还有M码吗")', timeout=T)

    await page.reload()
    frame = await embed_frame(page)
    await page.click('[data-testid="livedesk-launcher"]')
    await wait_online(frame)
    assert await frame.evaluate("() => window.__ld.client.welcome.user") == user
    await frame.wait_for_selector('[data-testid="msg-mine"]:has-text("还有M码吗")', timeout=T)

    other = await open_page(browser, f"{open_shop.origin}/?identify=0", DESKTOP)
    other_frame = await embed_frame(other)
    await other.click('[data-testid="livedesk-launcher"]')
    await wait_online(other_frame)
    assert await other_frame.evaluate("() => window.__ld.client.welcome.user") != user
