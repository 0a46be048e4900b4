"""Issue 20's must-show in real Chromium: the host hears what the room is asking.

One gateway, one browser. Twenty viewers (protocol clients over the WebSocket) ask whether the
jacket comes in M, each in their own words → the host panel (the real page) shows ONE group
with 20 viewers; the host taps "pin answer", edits the prefilled text and pins it → the next
viewer, on the real viewer page, sees the announcement and gets the pinned answer first from
the bot, and the host panel shows one viewer asked since the pin. Then, through the server's
real paths (no DOM injected): six complaints about one product raise an anomaly flag, a
promotion with ``starts_at`` puts the room in surge and it leaves by itself — on the host
panel, and on the dashboard (its radar per room, the surge on/off events in its event list,
the daily report CSV). The radar states are checked with axe-core and the locale scan in zh
and en on the way (tests/e2e/page_checks.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.radar.test_radar_protocol import ASKS, GROUP, ask

from .conftest import DESKTOP, PHONE, open_page, wait_online
from .page_checks import (
    ROOT,
    axe_violations,
    blocking,
    data_strings,
    scan_problems,
    ui_texts,
)

pytestmark = pytest.mark.browser

T = 15_000
EDITED = "冲锋衣M码今晚8点补货200件，现在可以先拍，按付款顺序发货。"
COMPLAINT = "轻量防滑登山鞋质量太差了，我要投诉"
DATA = data_strings(ROOT / "gateway/demo/room_demo.json", ROOT / "gateway/demo/commerce_demo.json")


@pytest.fixture
async def gw():
    r = await start_gateway(Config(dev=True, port=free_port(), retain_s=600, rate_per_s=1000.0,
                                   rate_burst=1000, radar_tick_s=0.2, surge_calm_s=10.0,
                                   # the complaints wait for a person (no agent here): 6 queued
                                   surge_exit_queue=10))
    try:
        yield r
    finally:
        await stop_gateway(r)


async def checked(page, lang: str, state: str, problems: list[str], artifacts, user: list[str]) -> None:
    """axe-core (0 critical/serious) and the locale scan on the page as it is now."""
    for v in blocking(await axe_violations(page)):
        problems.append(f"{lang}/{state}: axe {v['id']} {v['help']} at {[n['target'] for n in v['nodes']]}")
    for p in scan_problems(await ui_texts(page), lang, sorted([*DATA, *user], key=len, reverse=True)):
        problems.append(f"{lang}/{state}: locale {p}")
    await page.screenshot(path=str(artifacts / f"radar_{lang}_{state}.png"), full_page=True)


async def test_twenty_viewers_one_group_pin_flag_and_surge_on_host_panel_and_dashboard(gw, browser, artifacts):
    room = gw.room_id
    logs: list[str] = []
    problems: list[str] = []
    # what people typed, and the promotion this test adds to the catalogue (product data)
    user = ["Host", "host-1", "dash", room, *ASKS, EDITED, COMPLAINT, "FLASH", "冲锋衣限时秒杀"]
    host = await open_page(browser, f"{gw.url}/host?user=host-1&name=Host", DESKTOP, logs=logs)
    await wait_online(host)
    await host.wait_for_selector('[data-testid="radar"] [data-testid="radar-empty"]', timeout=T)
    dash = await open_page(browser, f"{gw.url}/dashboard?user=dash", DESKTOP, logs=logs)
    await wait_online(dash)
    await dash.wait_for_selector(f'[data-testid="radar-room-{room}"]', timeout=T)

    # twenty viewers, twenty wordings → one group of twenty on the host panel
    await asyncio.gather(*(ask(gw, f"v{i}", text) for i, text in enumerate(ASKS)))
    group = host.locator(f'[data-testid="radar-group"][data-group="{GROUP}"]')
    await host.wait_for_selector(f'[data-testid="radar-group"][data-group="{GROUP}"][data-viewers="20"]', timeout=T)
    jacket_groups = await host.locator('[data-testid="radar-group"][data-group^="stock|D001|"]').count()
    assert jacket_groups == 1
    assert await group.locator('[data-testid="radar-example"]').count() == 2
    assert "20" in await group.locator('[data-testid="radar-viewers"]').inner_text()
    # the windows: 1 and 15 minutes hold them too (read by GET), back to 5 (the pushes)
    for w in ("60", "900", "300"):
        await host.click(f'[data-testid="radar-window"][data-window="{w}"]')
        await host.wait_for_selector(f'[data-testid="radar-body"][data-window="{w}"] '
                                     f'[data-testid="radar-group"][data-group="{GROUP}"][data-viewers="20"]', timeout=T)
    await checked(host, "zh", "host_radar_group", problems, artifacts, user)

    # one tap: the dialog opens with a prefilled answer naming the product; the host edits it
    await group.locator('[data-testid="radar-pin"]').click()
    dialog = host.locator(f'[data-testid="pin-dialog"][data-group="{GROUP}"]')
    await dialog.wait_for(state="visible", timeout=T)
    prefilled = await dialog.locator('[data-testid="pin-text"]').input_value()
    assert "三合一防水冲锋衣" in prefilled and "M" in prefilled, prefilled
    await checked(host, "zh", "host_pin_dialog", problems, artifacts, user)
    await dialog.locator('[data-testid="pin-text"]').fill(EDITED)
    await dialog.locator('[data-testid="pin-submit"]').click()
    await dialog.wait_for(state="detached", timeout=T)
    await host.wait_for_selector(f'[data-testid="radar-group"][data-group="{GROUP}"][data-pinned="true"] '
                                 f'[data-testid="radar-since-pin"][data-n="0"]', timeout=T)
    assert EDITED in await group.locator('[data-testid="radar-pinned"]').inner_text()
    # the pinned announcement, on the host panel's list
    await host.wait_for_selector(f'[data-testid="announcement-item"] >> text={EDITED}', timeout=T)

    # the next viewer (the real widget) sees the announcement and gets the pinned answer first
    viewer = await open_page(browser, f"{gw.url}/?user=v-next&name=Next", PHONE, phone=True, logs=logs)
    await wait_online(viewer)
    await viewer.click('[data-testid="open-support"]')
    await viewer.wait_for_selector(f'[data-testid="pinned-text"] >> text={EDITED}', timeout=T)
    await viewer.fill('[data-testid="chat-input"]', "冲锋衣M码还有货吗？")
    await viewer.press('[data-testid="chat-input"]', "Enter")
    bot = viewer.locator('[data-testid="msg-bot"] .bubble').last
    await bot.wait_for(timeout=T)
    assert (await bot.inner_text()).strip().startswith(EDITED), await bot.inner_text()
    # the host sees the question counted since the pin: 21 in the window, 1 after the pin
    await host.wait_for_selector(f'[data-testid="radar-group"][data-group="{GROUP}"][data-viewers="21"] '
                                 f'[data-testid="radar-since-pin"][data-n="1"]', timeout=T)

    # six complaints about one product → a flag, on the host panel and the dashboard
    async def complain(i: int) -> None:
        v = await gw.client("viewer", f"v-flag-{i}", room=room)
        cid = (await v.request("conversation.open", room=room))["conversation"]
        r = await v.request("message.send", conversation=cid, text=COMPLAINT, client_msg_id=f"f{i}")
        assert r["type"] == "message", r

    await asyncio.gather(*(complain(i) for i in range(6)))
    flag = '[data-testid="radar-flag"][data-sku="D003"][data-kind="complaint"]'
    await host.wait_for_selector(flag, timeout=T)
    text = await host.locator(flag).inner_text()
    assert "6 条投诉" in text and "轻量防滑登山鞋" in text and "预期" in text, text
    await dash.wait_for_selector(f'[data-testid="radar-room-{room}"] {flag}', timeout=T)
    await dash.wait_for_selector('[data-testid="dash-event"][data-kind="flag_raised"]', timeout=T)

    # the host sets up a flash sale with starts_at (the promotion form): agents are warned,
    # surge is on at its start, then off by itself (surge_calm_s 10 s)
    await host.click('[data-testid="promo-new"]')
    await host.fill('[data-testid="promo-id"]', "FLASH")
    await host.select_option('[data-testid="promo-kind"]', "discount")
    await host.fill('[data-testid="promo-text"]', "冲锋衣限时秒杀")
    await host.fill('[data-testid="promo-sku"]', "D001")
    starts = datetime.fromtimestamp(time.time() + 4, UTC).isoformat(timespec="seconds")
    await host.fill('[data-testid="promo-starts-at"]', starts)
    await host.click('[data-testid="promo-save"]')
    await host.wait_for_selector('[data-testid="promo-item"][data-promo="FLASH"]', timeout=T)
    await dash.wait_for_selector('[data-testid="dash-event"][data-kind="surge_warning"]', timeout=T)
    on = '[data-testid="radar-surge"][data-on="true"][data-reason="promotion:FLASH"]'
    await host.wait_for_selector(on, timeout=T)
    await dash.wait_for_selector(f'[data-testid="radar-room-{room}"] {on}', timeout=T)
    await dash.wait_for_selector('[data-testid="dash-event"][data-kind="surge_on"]', timeout=T)
    assert "高峰模式中" in await host.locator('[data-testid="radar-surge"]').inner_text()
    await checked(host, "zh", "host_radar_flag_surge", problems, artifacts, user)
    await host.click('[data-testid="lang-switch"]')  # the same states in English
    assert "In surge since" in await host.locator('[data-testid="radar-surge"]').inner_text()
    assert "6 complaints in 2 min" in await host.locator(flag).inner_text()
    await checked(host, "en", "host_radar_flag_surge", problems, artifacts, user)
    await checked(dash, "zh", "dashboard_radar", problems, artifacts, user)
    await dash.click('[data-testid="lang-switch"]')
    await checked(dash, "en", "dashboard_radar", problems, artifacts, user)

    await host.wait_for_selector('[data-testid="radar-surge"][data-on="false"]', timeout=T)
    await dash.wait_for_selector('[data-testid="dash-event"][data-kind="surge_off"]', timeout=T)

    # the dashboard's daily report: today's per-product figures as CSV
    async with dash.expect_download(timeout=T) as dl:
        await dash.click(f'[data-testid="radar-report"][data-room="{room}"]')
    path = await (await dl.value).path()
    rows = [line.split(",") for line in open(path, encoding="utf-8").read().splitlines()]
    assert rows[0] == ["day", "room", "sku", "questions", "complaint", "return_refund", "safety"]
    by_sku = {r[2]: r for r in rows[1:]}
    assert by_sku["D001"][3] == "21" and by_sku["D003"][4] == "6", rows

    for p in (host, dash, viewer):
        await p.context.close()
    assert not problems, "\n".join(problems)
    errors = [line for line in logs if line.startswith("pageerror")]
    assert not errors, errors
