"""Broadcast frames written straight to the transport (``signaling/wsframe.py``), against a
real aiohttp server and client: what the client reads is exactly what was written, in
order with frames sent the ordinary way, at every length class; a socket whose aiohttp
writer compresses by itself is left to aiohttp; a closing socket and flow control make the
caller queue the frame for its writer task, which waits for the transport; the aiohttp
internals it needs are named if an upgrade removes them. (permessage-deflate through
``signaling/wsdeflate.py``: ``tests/unit/test_wsdeflate.py``.)"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys

import aiohttp
from aiohttp import WSMsgType, web

from signaling.auth import Claims
from signaling.bus import MemoryBus
from signaling.hub import Hub
from signaling.session import Prepared, Session
from signaling.wsframe import direct_writer
from tests.conftest import free_port


class Server:
    """One aiohttp WebSocket endpoint; the test drives the server-side socket directly."""

    def __init__(self, **ws_kwargs):
        self.kwargs = ws_kwargs
        self.sockets: asyncio.Queue = asyncio.Queue()

    async def handler(self, request):
        ws = web.WebSocketResponse(**self.kwargs)
        await ws.prepare(request)
        await self.sockets.put(ws)
        async for _msg in ws:  # until the client closes (the close handshake is answered)
            pass
        return ws

    async def __aenter__(self):
        app = web.Application()
        app.router.add_get("/ws", self.handler)
        self.runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


async def test_direct_frames_arrive_intact_and_in_order_with_ordinary_ones():
    async with Server() as srv, aiohttp.ClientSession() as http:
        client = await http.ws_connect(f"http://127.0.0.1:{srv.port}/ws")
        ws = await srv.sockets.get()
        direct = direct_writer(ws)
        assert direct is not None, "aiohttp changed: see signaling/wsframe.HOOKS"
        write = direct.write
        sent = []
        for n in (0, 5, 125, 126, 127, 4000, 65535, 65536, 200_000):  # every header form
            text = json.dumps({"n": n, "pad": "ü" * (n // 2)})
            assert write(text.encode())
            await ws.send_str(text + "!")  # aiohttp's path in between: order must hold
            sent += [text, text + "!"]
        got = [(await client.receive(timeout=5)) for _ in sent]
        assert [m.type for m in got] == [WSMsgType.TEXT] * len(sent)
        assert [m.data for m in got] == sent
        await client.close()


async def test_aiohttps_own_compression_closing_and_flow_control_are_not_written_directly():
    async with Server() as srv, aiohttp.ClientSession() as http:
        client = await http.ws_connect(f"http://127.0.0.1:{srv.port}/ws", compress=15)
        ws = await srv.sockets.get()
        assert direct_writer(ws) is None, "aiohttp's own deflate: its frames must be compressed"
        await client.close()
    async with Server() as srv, aiohttp.ClientSession() as http:
        client = await http.ws_connect(f"http://127.0.0.1:{srv.port}/ws")
        ws = await srv.sockets.get()
        write = direct_writer(ws).write
        ws._writer.protocol._paused = True  # the transport asked us to stop
        assert write(b'{"x":1}') is False
        ws._writer.protocol._paused = False
        assert write(b'{"x":2}') is True
        await client.close()
        await asyncio.sleep(0.1)
        assert write(b'{"x":3}') is False  # closing: aiohttp's path raises for the caller
    assert direct_writer(object()) is None  # a test double / a changed aiohttp


async def test_session_broadcast_goes_direct_and_is_queued_while_paused():
    async with Server() as srv, aiohttp.ClientSession() as http:
        client = await http.ws_connect(f"http://127.0.0.1:{srv.port}/ws")
        ws = await srv.sockets.get()
        s = Session(id="s1", claims=Claims(user="u", role="viewer"))
        s.attach(ws)
        assert s._direct is not None
        calls = []
        original = ws.send_frame

        async def counting(*a, **kw):
            calls.append(a)
            return await original(*a, **kw)

        ws.send_frame = counting
        for i in range(3):
            s.send(Prepared({"type": "room.update", "i": i}))
        assert calls == [], "a broadcast to a ready socket went through aiohttp's coroutine"
        protocol = ws._writer.protocol
        protocol.pause_writing()
        s.send(Prepared({"type": "room.update", "i": 3}))  # paused: queued for the writer task
        s.send({"type": "note", "i": 4})
        assert s._writer is not None and len(s._out) == 2
        await asyncio.sleep(0.05)
        assert len(s._out) == 1, "the writer task took the first frame and waits for the drain"
        protocol.resume_writing()
        await asyncio.sleep(0.05)
        assert s._writer is None and not s._out
        assert calls == [], "the direct path's writer task wrote them, not aiohttp's send_frame"
        got = [json.loads((await client.receive(timeout=5)).data) for _ in range(5)]
        assert [(g["i"], g["seq"]) for g in got] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
        assert [f.seq for f in s.frames_after(0)] == [1, 2, 3, 4, 5]  # all retained for resume
        await client.close()


async def test_topic_broadcast_reaches_sessions_in_the_order_they_watched():
    hub = Hub(MemoryBus())
    order = []

    class Probe(Session):
        def send(self, event):
            order.append(self.id)
            return 1

    ids = [f"s{i}" for i in (5, 3, 9, 1, 7, 2)]
    for sid in ids:
        s = Probe(id=sid, claims=Claims(user=sid, role="viewer"))
        hub.sessions[sid] = s
        hub.watch(s, "room:demo")
    hub.unwatch(hub.sessions["s9"], "room:demo")
    hub.watch(hub.sessions["s9"], "room:demo")  # re-watching puts it last
    hub._deliver_topic("room:demo", {"e": {"type": "room.update"}})
    assert order == ["s5", "s3", "s1", "s7", "s2", "s9"]


def test_serving_process_gc_policy():
    """``livedesk serve``'s GC policy (gateway.cli.tune_gc), in a fresh interpreter."""
    code = ("import gc; from gateway.cli import tune_gc, GC_THRESHOLDS; tune_gc(); "
            "print(gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 10000)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["True", "True"], out
    from gateway.cli import GC_THRESHOLDS

    assert gc.get_threshold() != GC_THRESHOLDS, "importing gateway.cli changed this process's GC"
