"""A server shutting down closes its sockets first, with 1001 (going away).

aiohttp waits for every request handler before it closes the application's resources, and a
WebSocket handler returns only when its socket closes: without the ``on_shutdown`` step
(gateway/app.py → ``Hub.detach_all``) a shutdown with a connected browser sat out the
server's shutdown timeout, and the client saw no proper close. Clients treat 1001 as "resume
elsewhere" (docs/protocol.md)."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.conftest import start_gateway
from tests.wsclient import WSClient


async def test_shutdown_closes_every_socket_with_1001_before_waiting_for_handlers():
    r = await start_gateway()
    http = aiohttp.ClientSession()
    try:
        clients = []
        for i in range(3):
            c = await WSClient(r.url, http).connect()
            w = await c.hello(r.token("viewer", f"v-shut-{i}", r.room_id, None))
            assert w["type"] == "welcome", w
            clients.append(c)
        await r.http.close()
        # the deadline only turns a hang (the old behaviour: the handlers' wait ran out) into
        # a failure; what is checked is how the sockets were closed
        await asyncio.wait_for(r.runner.cleanup(), 15)
        for c in clients:
            async with c._cond:
                await asyncio.wait_for(c._cond.wait_for(lambda c=c: c.closed_code is not None), 5)
            assert c.closed_code == 1001, c.closed_code
    finally:
        await http.close()
