"""Issue 17 in a real Chromium, against a gateway without ``--dev`` (a store, accounts):

* an agent opens /agent, is sent to /login, signs in with a password, comes back to the
  console, gets an assigned conversation and replies (the viewer is a protocol client);
* five wrong passwords, then the sign-in page says the account is throttled, in words;
* the sign-out button closes the socket (the gateway closes it: 4403) and the page ends on
  /login saying so;
* the admin page lists accounts and disables one: that agent's open console is closed at
  once and sent to /login;
* the console renews its token on the live socket (``auth``) without reconnecting.

Loopback only."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from gateway.auth import admin as A
from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

from .conftest import DESKTOP, open_page, wait_online

pytestmark = pytest.mark.browser

T = 10_000
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def gw(tmp_path):
    config = Config(port=free_port(), secret=secrets.token_hex(32), data_dir=tmp_path / "store",
                    auth_refresh_s=0.5, login_lockout_s=900.0)
    r = await start_gateway(config)
    try:
        yield r
    finally:
        await stop_gateway(r)


async def add(gw, user: str, roles=("agent",), name: str = "") -> None:
    await A.add_user(gw.gw.auth.accounts, A.NewAccount(
        user=user, roles=tuple(roles), password=PASSWORD, name=name or user.title()))


async def sign_in(page, user: str, password: str = PASSWORD) -> None:
    await page.fill('[data-testid="login-user"]', user)
    await page.fill('[data-testid="login-password"]', password)
    await page.click('[data-testid="login-submit"]')


async def signed_in_agent(browser, gw, user: str = "ann", logs=None):
    page = await open_page(browser, f"{gw.url}/agent", DESKTOP, logs=logs)
    await page.wait_for_url("**/login?**", timeout=T)  # no session: sent to sign in
    assert "next=%2Fagent" in page.url
    await sign_in(page, user)
    await page.wait_for_url(f"{gw.url}/agent", timeout=T)  # and back
    await wait_online(page)
    return page


async def test_agent_signs_in_and_works_in_the_console(gw, browser):
    await add(gw, "ann", name="Ann")
    logs: list[str] = []
    agent = await signed_in_agent(browser, gw, logs=logs)
    assert "token" not in agent.url
    await agent.wait_for_selector('[data-testid="sign-out"]', timeout=T)
    # the socket is ann's, with a token the gateway signed after the sign-in
    s = next(s for s in gw.gw.hub.sessions.values() if s.user == "ann")
    assert (s.role, s.claims.issuer) == ("agent", "gateway")
    await agent.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=agent-item]')].length > 0", timeout=T)

    viewer = await gw.client("viewer", "v-e2e", room=gw.room_id, name="小王")
    cid = (await viewer.request("conversation.open", room=gw.room_id))["conversation"]
    await viewer.request("message.send", conversation=cid, text="这件卫衣有M码吗",
                         client_msg_id="m1")
    await viewer.request("conversation.escalate", conversation=cid)
    await agent.wait_for_selector('[data-testid="conv-item"][data-state="assigned"]', timeout=T)
    await agent.wait_for_selector('[data-testid="chat-log"] >> text=这件卫衣有M码吗', timeout=T)
    await agent.fill('[data-testid="chat-input"]', "您好，M码有货的")
    await agent.press('[data-testid="chat-input"]', "Enter")
    await viewer.wait_for(lambda f: f.get("type") == "message"
                          and f.get("text") == "您好，M码有货的", timeout=10)
    assert not [entry for entry in logs if entry.startswith("pageerror")], logs


async def test_five_wrong_passwords_then_a_clear_throttled_message(gw, browser):
    await add(gw, "ann")
    page = await open_page(browser, f"{gw.url}/login", DESKTOP)
    err = page.locator('[data-testid="login-error"]')
    for i in range(5):
        await sign_in(page, "ann", f"wrong password {i}")
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=login-error]').textContent.includes('错误')",
            timeout=T)
        await page.evaluate("document.querySelector('[data-testid=login-error]').textContent=''")
    await sign_in(page, "ann")  # the right one, while locked
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=login-error]').textContent.includes('分钟')",
        timeout=T)
    text = await err.inner_text()
    assert "尝试次数过多" in text and "15 分钟" in text, text
    assert page.url.endswith("/login")  # not signed in
    await page.click('[data-testid="lang-switch"]')
    assert "Too many attempts, try again in 15 min" in await err.inner_text()


async def test_sign_out_closes_the_socket(gw, browser):
    await add(gw, "ann")
    agent = await signed_in_agent(browser, gw)
    await agent.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=agent-item]')].length > 0", timeout=T)
    assert any(s.user == "ann" and s.attached for s in gw.gw.hub.sessions.values())
    t0 = time.monotonic()
    await agent.click('[data-testid="sign-out"]')
    await agent.wait_for_selector('[data-testid="revoked-banner"]', timeout=T)
    assert await agent.evaluate("document.body.dataset.revoked") == "signed_out"
    # the gateway closed it (the page did not navigate away yet: the banner is up)
    for _ in range(50):
        if not any(s.user == "ann" for s in gw.gw.hub.sessions.values()):
            break
        await asyncio.sleep(0.1)
    assert not any(s.user == "ann" for s in gw.gw.hub.sessions.values())
    assert time.monotonic() - t0 < 5
    await agent.wait_for_url("**/login?**", timeout=T)
    assert "reason=signed_out" in agent.url
    await agent.wait_for_selector('[data-testid="login-reason"] >> text=退出登录', timeout=T)
    # the session is over: the console sends the user back to sign in
    await agent.goto(f"{gw.url}/agent")
    await agent.wait_for_url("**/login?**", timeout=T)


async def test_admin_page_disables_an_agent_and_the_console_closes(gw, browser):
    await add(gw, "ann")
    await add(gw, "root", roles=("admin",), name="Root")
    agent = await signed_in_agent(browser, gw)
    admin = await open_page(browser, f"{gw.url}/admin", DESKTOP)
    await admin.wait_for_url("**/login?**", timeout=T)
    await sign_in(admin, "root")
    await admin.wait_for_url(f"{gw.url}/admin", timeout=T)
    await wait_online(admin)
    row = admin.locator('[data-testid="account-ann"]')
    await row.wait_for(timeout=T)
    assert "客服" in await row.locator('[data-testid="account-roles"]').inner_text()
    t0 = time.monotonic()
    await row.locator('[data-testid="account-toggle"]').click()
    await admin.wait_for_selector('[data-testid="account-ann"][data-disabled="true"]', timeout=T)
    await agent.wait_for_selector('[data-testid="revoked-banner"]', timeout=5000)
    assert time.monotonic() - t0 < 5
    assert await agent.evaluate("document.body.dataset.revoked") == "account_changed"
    await agent.wait_for_url("**/login?**", timeout=T)
    await sign_in(agent, "ann")
    await agent.wait_for_selector('[data-testid="login-error"] >> text=错误', timeout=T)
    # the admin adds an account from the page, which can then sign in
    await admin.fill('[data-testid="add-user"]', "bea")
    await admin.fill('[data-testid="add-password"]', PASSWORD)
    await admin.click('[data-testid="add-submit"]')
    await admin.wait_for_selector('[data-testid="account-bea"]', timeout=T)
    assert (await gw.gw.auth.accounts.account("bea")).roles == ("agent",)


async def test_the_console_renews_its_token_on_the_live_socket(tmp_path, browser):
    config = Config(port=free_port(), secret=secrets.token_hex(32), data_dir=tmp_path / "s",
                    socket_token_ttl_s=35)  # renewed at 80 %, at least 30 s early: ~5 s
    gw = await start_gateway(config)
    try:
        await add(gw, "ann")
        page = await signed_in_agent(browser, gw)
        s = next(s for s in gw.gw.hub.sessions.values() if s.user == "ann")
        first_exp = s.claims.exp
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and s.claims.exp == first_exp:
            await asyncio.sleep(0.5)
        assert s.claims.exp > first_exp  # renewed on the same session, by `auth`
        assert s.attached and gw.gw.hub.sessions.get(s.id) is s  # the same socket
        assert [x.id for x in gw.gw.hub.sessions.values() if x.user == "ann"] == [s.id]
        await page.context.close()  # before the gateway: a live page would hold its shutdown
    finally:
        await stop_gateway(gw)


async def test_single_sign_on_from_the_sign_in_page(tmp_path, browser):
    """The sign-in page's SSO link, through a real OIDC provider on loopback, back to the
    console the user asked for, online with the provider's mapped role."""
    from tests.auth.oidc_provider import Provider

    idp = await Provider(free_port()).start()
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    secret = idp.add_client("livedesk", public + "/auth/oidc/callback")
    config = Config(port=port, secret=secrets.token_hex(32), data_dir=tmp_path / "s",
                    public_url=public, oidc_issuer=idp.issuer, oidc_client_id="livedesk",
                    oidc_client_secret=secret, oidc_role_map={"support-agents": "agent"})
    gw = await start_gateway(config)
    try:
        idp.add_user("kim@example.test", "Kim", groups=("support-agents",))
        idp.next_user = "kim@example.test"
        page = await open_page(browser, f"{gw.url}/agent", DESKTOP)
        await page.wait_for_url("**/login?**", timeout=T)
        sso = page.locator('[data-testid="login-sso"]')
        await sso.wait_for(state="visible", timeout=T)
        await sso.click()
        await page.wait_for_url(f"{gw.url}/agent", timeout=T)
        await wait_online(page)
        s = next(s for s in gw.gw.hub.sessions.values() if s.user == "kim@example.test")
        assert (s.role, s.claims.issuer, s.claims.name) == ("agent", "gateway", "Kim")
        # a tampered ID token: refused, back on /login, saying so in words
        await page.click('[data-testid="sign-out"]')
        await page.wait_for_url("**/login?**", timeout=T)
        idp.tamper_next_id_token = True
        await sso.click()
        await page.wait_for_url("**/login?**reason=sso_failed**", timeout=T)
        assert "单点登录失败" in await page.locator('[data-testid="login-reason"]').inner_text()
    finally:
        await stop_gateway(gw)
        await idp.stop()
