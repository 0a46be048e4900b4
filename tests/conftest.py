"""Shared fixtures: a real gateway on a free port, and protocol clients that talk to it."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.app import GATEWAY, create_app
from gateway.config import Config
from gateway.http_api import server_options
from tests import loopback_ice, token_watch
from tests.backends import BACKENDS, MEMORY, Backend, free_port
from tests.wsclient import WSClient

__all__ = ["ARTIFACTS", "LOOPBACK_MEDIA", "LOOPBACK_MEDIA_ENV", "Running", "free_port",
           "media_on_loopback", "start_gateway", "stop_gateway"]


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
# every module under these is about support state, so every one must be a parity module
PARITY_DIRS = (ROOT / "tests" / "workspace", ROOT / "tests" / "abuse")


# Network safety (docs/testing.md#network-safety): a gateway whose WebRTC media stays on
# loopback. It gathers host candidates on 127.0.0.1 only, and of the candidates a browser
# names it contacts none but 127/8 and ::1 (everything else is a denied range).
LOOPBACK_MEDIA: dict[str, object] = {
    "media_address": ["127.0.0.1"],
    "ice_denied_ranges": ["0.0.0.0/0", "::/0"],
    "ice_allow_loopback": True,
}
# the same for a `livedesk serve` process, in its environment
LOOPBACK_MEDIA_ENV: dict[str, str] = {
    "LIVEDESK_MEDIA_ADDRESS": "127.0.0.1",
    "LIVEDESK_ICE_DENIED_RANGES": "0.0.0.0/0,::/0",
    "LIVEDESK_ICE_ALLOW_LOOPBACK": "on",
}
# Every gateway start_gateway starts keeps its media on loopback, whatever its config says:
# turned on for browser tests by tests/e2e/conftest.py (their modules build their own
# Configs). A gateway started without a config always does.
ALWAYS_LOOPBACK_MEDIA = False


def media_on_loopback(config: Config) -> Config:
    """``config`` with :data:`LOOPBACK_MEDIA` set (in place; returned for chaining)."""
    for name, value in LOOPBACK_MEDIA.items():
        setattr(config, name, list(value) if isinstance(value, list) else value)
    return config


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
    config = config or media_on_loopback(MEMORY.config(retain_s=600))
    if ALWAYS_LOOPBACK_MEDIA:
        media_on_loopback(config)
    config.port = config.port or free_port()
    app = create_app(config, **kw)
    runner = web.AppRunner(app, **server_options(config))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config.port).start()
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    r = Running(app, runner, f"http://127.0.0.1:{config.port}", http)
    _check_backend(r, config)
    return r


def _check_backend(r: Running, config: Config) -> None:
    """A parity run that silently fell back to memory would pass and prove nothing: the
    support state must live where the config says."""
    from gateway.support.redis_backend import RedisBackend
    on_redis = isinstance(r.gw.support.backend, RedisBackend)
    assert on_redis == bool(config.redis_url), (config.redis_url, type(r.gw.support.backend))


async def stop_gateway(r: Running) -> None:
    for c in r.clients:
        await c.close()
    await r.http.close()
    await r.runner.cleanup()


def pytest_generate_tests(metafunc):
    """In a module marked ``parity`` every test that uses ``backend`` (``gateway`` does) runs
    once per backend; ``one_backend(name, why=...)`` pins it to one, and
    ``parity_xfail(name, reason=...)`` marks one backend's run as a known, strict failure."""
    if "backend" not in metafunc.fixturenames or not metafunc.definition.get_closest_marker("parity"):
        return
    only = metafunc.definition.get_closest_marker("one_backend")
    names = [only.args[0]] if only else list(BACKENDS)
    known = {m.args[0]: m.kwargs["reason"]
             for m in metafunc.definition.iter_markers("parity_xfail")}
    params = [pytest.param(n, id=n, marks=[pytest.mark.xfail(strict=True, reason=known[n])]
                           if n in known else []) for n in names]
    metafunc.parametrize("backend", params, indirect=True)


def pytest_sessionstart(session):
    logging.getLogger().addHandler(token_watch.TokenSpotter())


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any server output of the whole session holds a token
    (``tests/token_watch.py``)."""
    found, read = token_watch.findings()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if found:
        if reporter is not None:
            reporter.write_line(f"TOKEN IN SERVER OUTPUT ({len(found)} lines; tests/token_watch.py):",
                                red=True)
            for line in found[:20]:
                reporter.write_line("  " + line)
        session.exitstatus = 1
    elif reporter is not None and read:
        reporter.write_line(f"token watch: no token in {read} server output files or in the "
                            f"in-process logs")


def pytest_collection_modifyitems(config, items):
    """Every test of a ``parity`` module runs on both backends or says why it cannot
    (``one_backend``); a new test that does neither stops the run here, not in review.
    Redis runs also carry the ``redis`` marker, so ``-m redis`` selects them."""
    lonely, unmarked = [], []
    for item in items:
        if item.get_closest_marker("parity") is None:
            if any(Path(item.path).is_relative_to(d) for d in PARITY_DIRS):
                unmarked.append(item.nodeid)
            continue
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("backend") if callspec else None
        if name == "redis":
            item.add_marker(pytest.mark.redis)
        if name is None and item.get_closest_marker("one_backend") is None:
            lonely.append(item.nodeid)
    if unmarked:
        raise pytest.UsageError("every workspace and abuse test runs on both backends: mark "
                                "its module "
                                "pytestmark = pytest.mark.parity: " + ", ".join(unmarked))
    if lonely:
        raise pytest.UsageError(
            "tests in a parity module must use the backend fixture (or gateway) or be marked "
            "one_backend(name, why=...): " + ", ".join(lonely))


@pytest.fixture(scope="session", autouse=True)
def _ice_on_loopback():
    """Every in-process aiortc peer (test clients, bare connections, the gateways' own agents)
    gathers on, is given and sends to loopback only, for the whole run
    (``tests/loopback_ice.py``; docs/testing.md#network-safety)."""
    loopback_ice.install()
    try:
        yield
    finally:
        loopback_ice.uninstall()


@pytest.fixture(autouse=True)
def _no_datagram_off_loopback(_ice_on_loopback):
    """A test during which an ICE agent of this process tried to send to a non-loopback
    address fails (nothing was sent: ``loopback_ice`` refused it)."""
    start = len(loopback_ice.REFUSED)
    yield
    refused = loopback_ice.REFUSED[start:]
    assert not refused, ("an ICE agent tried to send to a non-loopback address (refused, not "
                         f"sent; docs/testing.md#network-safety): {refused[:10]}")


@pytest.fixture(scope="session")
def parity_redis():
    """One redis-server for the whole session's parity runs (flushed before each test by
    ``backend``); not durable, since no parity test restarts it."""
    from tests.redis_server import redis_url_or_server
    url, srv = redis_url_or_server(durable=False)
    try:
        yield url
    finally:
        if srv is not None:
            srv.cleanup()


@pytest.fixture
def backend(request) -> Backend:
    """The backend this run of the test uses: memory unless the module is marked ``parity``
    (then each backend in turn). The Redis one starts empty: flushed before the test."""
    name = getattr(request, "param", "memory")
    if name == "memory":
        return MEMORY
    import redis
    url = request.getfixturevalue("parity_redis")
    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()
    return Backend("redis", url)


@pytest.fixture
async def gateway(backend: Backend):
    r = await start_gateway(backend.config(retain_s=600))
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
