"""Gateways with a store (accounts live there), and the store fixtures of tests/store (both
backends, the real PostgreSQL: unreachable is a failure, never a skip)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys

import pytest

from gateway.auth import admin as A
from gateway.cli import main as cli_main
from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.store.conftest import backends, pg_database  # noqa: F401  (fixtures)

PASSWORD = "correct horse battery staple"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def gw(tmp_path):
    config = Config(dev=True, port=free_port(), data_dir=tmp_path / "store",
                    auth_refresh_s=0.2, login_lockout_s=60.0)
    r = await start_gateway(config)
    try:
        yield r
    finally:
        await stop_gateway(r)


async def add_user(gw, user: str, roles=("agent",), rooms=(), password: str = PASSWORD):
    return await A.add_user(gw.gw.auth.accounts, A.NewAccount(
        user=user, roles=tuple(roles), password=password, name=user.title(),
        rooms=tuple(rooms)))


async def login(gw, user: str, password: str = PASSWORD, headers=None):
    """(status, body, session cookie value or None)."""
    async with gw.http.post(f"{gw.url}/api/auth/login", json={"user": user,
                                                             "password": password},
                            headers=headers) as resp:
        cookie = resp.cookies.get("livedesk_session")
        return resp.status, await resp.json(), (cookie.value if cookie else None), resp


async def socket_token(gw, cookie: str | None, **body):
    headers = {**JSON, **({"Cookie": f"livedesk_session={cookie}"} if cookie else {})}
    async with gw.http.post(f"{gw.url}/api/auth/token", json=body or {},
                            headers=headers) as resp:
        return resp.status, await resp.json()


async def hello(gw, token: str) -> dict:
    c = await gw.client()
    return await c.hello(token)


async def run_cli(argv: list[str], stdin: str = "", env: dict | None = None,
                  monkeypatch=None) -> tuple[int, str, str]:
    """``livedesk …`` in a thread (its own event loop), stdout/stderr captured."""
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            old = sys.stdin
            sys.stdin = io.StringIO(stdin)
            try:
                return cli_main(argv)
            finally:
                sys.stdin = old

    if monkeypatch is not None:
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
    code = await asyncio.to_thread(run)
    return code, out.getvalue(), err.getvalue()
