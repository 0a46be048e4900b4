"""Revocation across nodes, in a real Chromium: two ``livedesk serve`` processes sharing one
Redis (the bus) and one PostgreSQL (the accounts). An agent has the console open on node B;
an admin, signed in on node A's admin page, disables the agent: within 5 s the console on B
is closed (it says why, then goes to /login) and the agent cannot come back — its socket
token is refused by B, its session cookie mints no new token, its password no longer signs
in. Loopback only."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.cluster.nodes import Node, write_room
from tests.store.conftest import PG_SERVER, pg_database  # noqa: F401  (fixture)
from tests.wsclient import WSClient

from .conftest import DESKTOP, open_page, wait_online

pytestmark = [pytest.mark.browser, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
T = 15_000
PASSWORD = "correct horse battery staple"
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")


def user_add(db_url: str, user: str, role: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(PYTHONPATH=str(ROOT), LIVEDESK_DATABASE_URL=db_url)
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "user", "add", "--user", user,
                        "--role", role, "--password-stdin"], input=PASSWORD + "\n", env=env,
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def nodes(redis_server, pg_database, tmp_path):  # noqa: F811
    db_url = f"{PG_SERVER}/{pg_database}"
    room = write_room(tmp_path / "flash.json")
    user_add(db_url, "ann", "agent")  # the first accounts, before any node starts
    user_add(db_url, "root", "admin")
    env = {"LIVEDESK_DATABASE_URL": db_url}
    a = Node(redis_server.url, "A", rooms=[room], extra_env=env).start()
    try:
        b = Node(redis_server.url, "B", rooms=[room], extra_env=env).start()
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


async def sign_in(page, base: str, path: str, user: str) -> None:
    await page.goto(f"{base}{path}")
    await page.wait_for_url("**/login?**", timeout=T)
    await page.fill('[data-testid="login-user"]', user)
    await page.fill('[data-testid="login-password"]', PASSWORD)
    await page.click('[data-testid="login-submit"]')
    await page.wait_for_url(f"{base}{path}", timeout=T)
    await wait_online(page, timeout=T)


async def test_disabling_an_agent_on_one_node_closes_its_console_on_the_other(nodes, browser):
    node_a, node_b = nodes
    tokens: list[str] = []
    agent = await open_page(browser, "about:blank", DESKTOP)

    async def keep_token(resp) -> None:
        if resp.url.endswith("/api/auth/token") and resp.status == 200:
            tokens.append((await resp.json())["token"])

    agent.on("response", lambda r: asyncio.ensure_future(keep_token(r)))
    await sign_in(agent, node_b.url, "/agent", "ann")
    await agent.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=agent-item]')].length > 0", timeout=T)
    assert tokens, "the console got its socket token from the sign-in session"

    admin = await open_page(browser, "about:blank", DESKTOP)
    await sign_in(admin, node_a.url, "/admin", "root")
    row = admin.locator('[data-testid="account-ann"]')
    await row.wait_for(timeout=T)
    t0 = time.monotonic()
    await row.locator('[data-testid="account-toggle"]').click()

    # node B closes the console: the page says why
    await agent.wait_for_selector('[data-testid="revoked-banner"]', timeout=5000)
    closed_after = time.monotonic() - t0
    assert closed_after < 5, closed_after
    assert await agent.evaluate("document.body.dataset.revoked") == "account_changed"
    await admin.wait_for_selector('[data-testid="account-ann"][data-disabled="true"]', timeout=T)

    # and it cannot come back: B refuses the token (within its refresh), the cookie mints
    # nothing, the password signs nobody in
    async with aiohttp.ClientSession() as http:
        refused = None
        while time.monotonic() - t0 < 5 and refused is None:
            c = await WSClient(node_b.url, http).connect()
            reply = await c.hello(tokens[-1])
            if reply.get("type") == "error":
                refused = reply
            await c.close()
            if refused is None:
                await asyncio.sleep(0.2)
        assert refused is not None and refused["code"] == "unauthenticated", refused
        assert time.monotonic() - t0 < 5.5
    await agent.wait_for_url("**/login?**", timeout=T)
    assert "reason=account_changed" in agent.url
    status = await agent.evaluate("""async () => (await fetch('/api/auth/token', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: '{}'})).status""")
    assert status == 401
    await agent.fill('[data-testid="login-user"]', "ann")
    await agent.fill('[data-testid="login-password"]', PASSWORD)
    await agent.click('[data-testid="login-submit"]')
    await agent.wait_for_selector('[data-testid="login-error"] >> text=错误', timeout=T)
    for node in nodes:  # sign-in, exchanges, refusals: no token reached a log
        assert not JWT.search(node.log.read_text()), node.node_id
