"""Shared fixtures: a real gateway on a free port, and protocol clients that talk to it."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.app import GATEWAY, create_app
from gateway.config import Config
from gateway.http_api import server_options
from tests.wsclient import WSClient


def pytest_asyncio_loop_factories(config, item):
    """Tests marked ``uvloop`` run on uvloop's loop, the one ``livedesk serve`` runs on
    (``LIVEDESK_LOOP=auto``); everything else on asyncio's."""
    if item.get_closest_marker("uvloop") is None:
        import asyncio

        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"uvloop": uvloop.new_event_loop}

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
ARTIFACTS = ROOT / "tests" / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """A gateway app served on a real TCP port, plus helpers to mint tokens and clients."""

    def __init__(self, app: web.Application, runner: web.AppRunner, url: str,
                 http: aiohttp.ClientSession):
        self.app = app
        self.runner = runner
        self.url = url
        self.http = http
        self.gw = app[GATEWAY]
        self.clients: list[WSClient] = []

    def token(self, role: str, user: str, room: str | None = None, name: str | None = None,
              ttl: int = 600) -> str:
        return self.gw.tokens.issue(user, role, room=room, name=name, ttl_s=ttl)

    async def client(self, role: str | None = None, user: str | None = None,
                     room: str | None = None, name: str | None = None) -> WSClient:
        c = await WSClient(self.url, self.http).connect()
        self.clients.append(c)
        if role:
            w = await c.hello(self.token(role, user or f"{role}-{len(self.clients)}", room, name))
            assert w["type"] == "welcome", w
        return c

    @property
    def room_id(self) -> str:
        return self.gw.rooms.ids()[0]


async def start_gateway(config: Config | None = None, **kw) -> Running:
    config = config or Config(dev=True, port=free_port(), retain_s=600)
    config.port = config.port or free_port()
    app = create_app(config, **kw)
    runner = web.AppRunner(app, **server_options(config))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config.port).start()
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    return Running(app, runner, f"http://127.0.0.1:{config.port}", http)


async def stop_gateway(r: Running) -> None:
    for c in r.clients:
        await c.close()
    await r.http.close()
    await r.runner.cleanup()


@pytest.fixture
async def gateway():
    r = await start_gateway()
    try:
        yield r
    finally:
        await stop_gateway(r)


@pytest.fixture
def redis_server():
    """A fresh redis-server (or REDIS_URL, flushed) per test."""
    from tests.redis_server import redis_url_or_server
    url, srv = redis_url_or_server()
    if srv is None:
        import redis
        redis.Redis.from_url(url).flushdb()
    try:
        yield srv if srv is not None else type("External", (), {"url": url, "restart": None})()
    finally:
        if srv is not None:
            srv.cleanup()
