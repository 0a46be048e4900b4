"""A node whose start fails half-way closes exactly what had started.

One aiohttp cleanup context per resource (``gateway/app.py``): when one resource's start
raises, aiohttp closes the resources started before it, in reverse order, and never starts
the rest. Real objects throughout; the failure is real too (a Redis URL pointing at a port
nobody listens on, so the support backend's start, which loads state from Redis, fails).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from gateway.app import GATEWAY, create_app
from gateway.config import Config
from gateway.http_api import server_options
from tests.conftest import free_port


def _stopped(task: asyncio.Task | None) -> bool:
    return task is not None and task.done()


async def test_backend_start_failure_closes_bus_presence_and_hub():
    dead = free_port()  # nothing listens here
    config = Config(dev=True, port=free_port(), redis_url=f"redis://127.0.0.1:{dead}/0")
    app = create_app(config)
    gw = app[GATEWAY]
    runner = web.AppRunner(app, **server_options(config))
    t0 = time.monotonic()
    with pytest.raises(Exception) as failed:
        await runner.setup()
    assert "Connect" in type(failed.value).__name__ or "connect" in str(failed.value).lower(), \
        failed.value
    # before cleanup, the earlier resources are running: the test can see them stop
    assert gw.bus._listener is not None and not gw.bus._listener.done()
    assert gw.presence is not None and not gw.presence._task.done()
    assert gw.hub._reaper is not None and not gw.hub._reaper.done()
    await runner.cleanup()
    await asyncio.sleep(0)
    # started before the failure: closed
    assert _stopped(gw.bus._listener)
    assert _stopped(gw.presence._task)
    assert _stopped(gw.hub._reaper)
    # after the failure: never started
    assert gw.support.backend._tail is None
    assert not gw.support._tasks
    assert gw.media._watch is None
    assert gw.workspace._tasks == []
    assert time.monotonic() - t0 < 60


async def test_last_resource_failing_closes_every_earlier_one():
    """The bot's warm-up is the last resource; when it raises, all the others close."""

    class BrokenBot:
        async def respond(self, query):  # never reached
            raise AssertionError

        def warm_up(self) -> None:
            raise RuntimeError("tables missing")

    config = Config(dev=True, port=free_port())
    app = create_app(config, responder=BrokenBot())
    gw = app[GATEWAY]
    runner = web.AppRunner(app, **server_options(config))
    with pytest.raises(RuntimeError, match="tables missing"):
        await runner.setup()
    assert not gw.hub._reaper.done()
    assert gw.workspace._tasks and not any(t.done() for t in gw.workspace._tasks)
    assert gw.support._tasks  # the retention sweep
    await runner.cleanup()
    await asyncio.sleep(0)
    assert _stopped(gw.hub._reaper)
    assert all(t.done() for t in gw.workspace._tasks)
    assert all(t.done() for t in gw.support._tasks) or not gw.support._tasks
