"""Stored XSS, kept as a test (issue 13, build 12): payloads stored through the protocol
and the REST API (chat text, names, an escalation reason, a compensation reason, promotion
texts, announcements, a shop notice) are rendered by every page — viewer widget, agent
console, host panel, dashboard, admin — in real Chromium. No script may run, and the
payload must be shown as text.

The pages run with ``bypass_csp``: the CSP would block inline handlers anyway (that is
tested in tests/security/test_http_hardening.py); here the escaping itself is under test,
so a page that built HTML from a stored string fails even though the CSP would save it.
"""

from __future__ import annotations

import pytest

from tests.conftest import stop_gateway
from tests.workspace.helpers import start

from .conftest import CHROMIUM, DESKTOP, PHONE, chromium_available

pytestmark = pytest.mark.browser

T = 10_000
# Short enough for bounded fields (names), long enough to be three different vectors.
NAME = '<img src=x onerror=__xss(1)>'
TEXT = ('X5S<img src=x onerror=__xss(2)><script>__xss(3)</script>'
        '<svg onload=__xss(4)>"><iframe src=javascript:__xss(5)>')
MARK_NAME = "<img src=x onerror=__xss(1)>"
MARK_TEXT = "<script>__xss(3)</script>"

TRAP = """
window.__xss_hits = [];
window.__xss = (n) => { window.__xss_hits.push(n); };
"""


async def seed(gw):
    """Store payloads everywhere a client can put text; return the ids the pages need."""
    room = gw.room_id
    host = await gw.client("host", "host-x", room=room, name=NAME)
    r = await host.request("room.promo.upsert", room=room,
                           promotion={"id": "PX", "kind": "coupon", "text": TEXT,
                                      "code": "SAVE20", "threshold": 200, "amount": 20})
    assert r["type"] == "ack", r
    a = await gw.client("agent", "a-xss", name=NAME)
    assert (await a.request("agent.status", status="available"))["type"] == "ack"
    v = await gw.client("viewer", "v-xss", room=room, name=NAME)
    conv = (await v.request("conversation.open", room=room))["conversation"]
    await v.request("message.send", conversation=conv, text=TEXT, client_msg_id="x1")
    r = await v.request("conversation.escalate", conversation=conv, reason=TEXT)
    assert r["type"] == "ack", r
    await a.event("conversation.assigned", conversation=conv)
    await a.request("message.send", conversation=conv, text=TEXT, client_msg_id="a1")
    r = await a.request("action.compensate", conversation=conv, kind="coupon", amount=120,
                        reason=TEXT)
    assert r.get("status") == "pending_approval", r
    r = await host.request("room.announce", room=room, text=TEXT)
    assert r["type"] == "ack", r
    service = gw.token("service", "shop")
    async with gw.http.post(f"{gw.url}/api/rooms/{room}/notices",
                            json={"kind": "announcement", "text": TEXT},
                            headers={"Authorization": f"Bearer {service}"}) as resp:
        assert resp.status == 200, await resp.text()
    return conv


async def open_trapped(browser, url, viewport, phone=False):
    ctx = await browser.new_context(viewport=viewport, bypass_csp=True, is_mobile=phone,
                                    has_touch=phone, locale="zh-CN",
                                    permissions=["camera", "microphone"])
    page = await ctx.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.add_init_script(TRAP)
    await page.goto(url)
    return page, dialogs, errors


async def shows(page, text: str) -> None:
    await page.wait_for_function("(t) => document.body.innerText.includes(t)", arg=text,
                                 timeout=T)


async def test_stored_payloads_render_as_text_on_every_page(browser):
    if not chromium_available():
        pytest.fail(f"no Chromium at {CHROMIUM} (make system-deps installs Debian chromium)")
    gw = await start(max_compensation_default=50)
    try:
        await seed(gw)
        base = gw.url
        pages = {}
        # viewer widget: the same viewer user sees its conversation, the promotion, the
        # announcement and the notice
        p = pages["viewer"] = await open_trapped(browser, f"{base}/?user=v-xss", PHONE, phone=True)
        await p[0].click('[data-testid="open-support"]')
        await shows(p[0], MARK_TEXT)
        # agent console: the viewer's name, messages, the escalation reason
        p = pages["agent"] = await open_trapped(browser, f"{base}/agent?user=a-xss", DESKTOP)
        await p[0].click('[data-testid="conv-item"]')
        await shows(p[0], MARK_TEXT)
        await shows(p[0], MARK_NAME)
        # host panel: promotions and announcements
        p = pages["host"] = await open_trapped(browser, f"{base}/host?user=host-x", DESKTOP)
        await shows(p[0], MARK_TEXT)
        # admin: the approval with its reason, the agent's and the viewer's names
        p = pages["admin"] = await open_trapped(browser, f"{base}/admin?user=boss", DESKTOP)
        await shows(p[0], MARK_TEXT)
        await shows(p[0], MARK_NAME)
        # dashboard: agents by name
        p = pages["dashboard"] = await open_trapped(browser, f"{base}/dashboard?user=dash", DESKTOP)
        await shows(p[0], MARK_NAME)

        for name, (page, dialogs, errors) in pages.items():
            await page.wait_for_timeout(300)  # let any injected <img onerror> fire
            hits = await page.evaluate("window.__xss_hits")
            assert hits == [], f"{name}: injected script ran: {hits}"
            assert dialogs == [], f"{name}: dialog opened: {dialogs}"
            assert not await page.locator("iframe, body script:not([src]), img[src='x']").count(), \
                f"{name}: payload became markup"
            assert not [e for e in errors if "__xss" in e], errors
    finally:
        await stop_gateway(gw)
