"""permessage-deflate as ``signaling/wsdeflate.py`` does it, against real aiohttp servers and
real sockets: the compressed messages decompress with zlib to exactly what was sent, for a
receiver that keeps its context between messages and for one that starts afresh each time;
a broadcast is compressed once for every socket and spliced per socket; the answer to a
browser's offer carries ``server_no_context_takeover`` and ``client_no_context_takeover``;
no socket owns a compressor, nor an inflater between messages; the client's compressed
frames are read; a socket that did not offer deflate gets plain frames."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import zlib

import aiohttp
import pytest
from aiohttp import web

from signaling.auth import Claims
from signaling.bus import MemoryBus
from signaling.hub import Hub
from signaling.session import Prepared, Session
from signaling.wsdeflate import (
    HOOKS,
    MAX_BYTES,
    MIN_BYTES,
    TAIL,
    Deflater,
    DeflateResponse,
    inflate,
    splice,
)
from tests.conftest import free_port

CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"


def _text(n: int, salt: int = 0) -> bytes:
    """``n`` bytes of JSON-ish UTF-8 with repeats and Chinese, as room updates are."""
    unit = f'{{"sku":"D{salt:03d}","name":"冲锋衣 防水 {salt}","stock":{salt * 7}}},'.encode()
    out = (unit * (n // len(unit) + 1))[:n]
    return out.decode("utf-8", "ignore").encode()


# --- the compression itself ------------------------------------------------------------------

@pytest.mark.parametrize("wbits", [9, 12, 15])
def test_messages_decompress_with_and_without_the_receivers_context(wbits):
    d = Deflater()
    kept = zlib.decompressobj(-15)  # a receiver that keeps its context between messages
    for i, n in enumerate((MIN_BYTES, 300, 3_700, 20_000, 70_000, MAX_BYTES)):
        data = _text(n, i)
        z = d.message(data, wbits)
        assert z is not None and len(z) < len(data)
        assert not z.endswith(TAIL), "RFC 7692 §7.2.1: the 00 00 ff ff tail is removed"
        assert inflate(z) == data  # a fresh context per message (no context takeover)
        assert kept.decompress(z + TAIL) == data
        fresh_window = zlib.decompressobj(-wbits)  # the window the client allowed is enough
        assert fresh_window.decompress(z + TAIL) == data
    assert d.message(b"x" * (MIN_BYTES - 1), 15) is None, "small frames go uncompressed"
    assert d.message(b"x" * (MAX_BYTES + 1), 15) is None, "huge frames go uncompressed"


def test_no_message_refers_to_an_earlier_one():
    """The same payload compresses to the same bytes whatever went before: the shared
    compressor's full flush resets it, so one output serves every socket."""
    d = Deflater()
    data = _text(3_000, 1)
    first = d.message(data, 15)
    d.message(data, 15)  # a history that a context-keeping compressor would refer to
    d.message(_text(5_000, 2), 15)
    assert d.message(data, 15) == first
    assert Deflater().message(data, 15) == first


def test_spliced_broadcasts_are_the_head_with_each_sockets_suffix():
    d = Deflater()
    head = _text(3_600, 3)[:-1]
    prefix = d.prefix(head, 15)
    assert prefix is not None
    kept = [zlib.decompressobj(-15) for _ in range(3)]
    for seq in (0, 1, 9, 10, 12345, 2**40):
        suffix = b',"seq":%d}' % seq
        for k in kept:
            z = splice(prefix, suffix)
            assert k.decompress(z + TAIL) == head + suffix
            # unicast messages in between keep the stream valid for the next broadcast
            u = _text(500, seq % 7)
            assert k.decompress(d.message(u, 15) + TAIL) == u
        assert inflate(splice(prefix, suffix)) == head + suffix
    for n in (0, 1, 200, 65_535):  # a stored block holds up to 65,535 bytes
        suffix = b"s" * n
        assert inflate(splice(prefix, suffix)) == head + suffix
    assert d.prefix(b"x" * (MAX_BYTES + 1), 15) is None


def test_a_compressor_that_failed_is_not_reused():
    d = Deflater()
    with pytest.raises(TypeError):
        d.message("not bytes" * 40, 15)  # type: ignore[arg-type]
    data = _text(1_000, 4)
    assert inflate(d.message(data, 15)) == data


def test_a_zlib_failure_sends_the_message_uncompressed():
    class Broken:
        def compress(self, data):
            return b"garbage"

        def flush(self, mode):
            return b""  # not the empty stored block a full flush ends with

    d = Deflater()
    d._by_wbits[15] = Broken()
    assert d.message(_text(1_000, 5), 15) is None
    assert d.prefix(_text(1_000, 5), 15) is not None, "a new compressor after the failure"


# --- on real sockets -------------------------------------------------------------------------

class Server:
    """An aiohttp endpoint answering with ``DeflateResponse``; the test drives its sockets."""

    def __init__(self):
        self.sockets: asyncio.Queue = asyncio.Queue()
        self.received: list[str] = []

    async def handler(self, request):
        ws = DeflateResponse()
        await ws.prepare(request)
        await self.sockets.put(ws)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.received.append(msg.data)
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


class RawClient:
    """A WebSocket client on a bare TCP socket, so the test sees the frames' bytes (RSV1,
    the compressed payload) exactly as a browser receives them."""

    async def connect(self, port: int, offer: str | None) -> dict[str, str]:
        self.r, self.w = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET /ws HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if offer is not None:
            lines.append(f"Sec-WebSocket-Extensions: {offer}")
        self.w.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await self.r.readuntil(b"\r\n\r\n")).decode()
        status, *rest = head.strip().split("\r\n")
        assert " 101 " in status, status
        return {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in rest)}

    async def frame(self) -> tuple[int, bytes]:
        """(first byte, payload) of the next frame (server frames are not masked)."""
        b0, b1 = await asyncio.wait_for(self.r.readexactly(2), 5)
        assert not b1 & 0x80
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.r.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.r.readexactly(8))[0]
        return b0, await self.r.readexactly(n)

    def close(self) -> None:
        self.w.close()


async def test_a_browsers_offer_is_answered_without_server_context_takeover():
    async with Server() as srv:
        c = RawClient()
        headers = await c.connect(srv.port, CHROMIUM_OFFER)
        assert headers["sec-websocket-extensions"] == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        ws = await srv.sockets.get()
        assert ws.deflate is not None and ws.deflate.wbits == 15
        assert ws._writer.compress == 0, f"aiohttp must not compress by itself: {HOOKS}"
        await ws.send_str("aiohttp's own write: " + "x" * 500)
        b0, payload = await c.frame()
        assert b0 == 0x81, "aiohttp's own writes go uncompressed (RSV1 clear)"
        assert payload.decode().endswith("x" * 500)
        assert ws._writer._compressobj is None, "no compressor per socket"
        c.close()

        # a client that bounds the server's window gets it, and frames that respect it
        c = RawClient()
        headers = await c.connect(srv.port, "permessage-deflate; server_max_window_bits=10")
        assert headers["sec-websocket-extensions"] == (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10")
        ws = await srv.sockets.get()
        s = Session(id="w", claims=Claims(user="u", role="viewer"), deflater=Deflater())
        s.attach(ws)
        s.send({"type": "note", "text": _text(4_000, 5).decode()})
        b0, payload = await c.frame()
        assert b0 == 0xC1
        got = zlib.decompressobj(-10).decompress(payload + TAIL)
        assert json.loads(got)["seq"] == 1
        c.close()

        # no offer, or one zlib cannot do (a window of 8): plain frames, as before
        for offer in (None, "permessage-deflate; server_max_window_bits=8", "x-webkit-foo"):
            c = RawClient()
            headers = await c.connect(srv.port, offer)
            assert "sec-websocket-extensions" not in headers, offer
            ws = await srv.sockets.get()
            assert ws.deflate is None
            s = Session(id="p", claims=Claims(user="u", role="viewer"), deflater=Deflater())
            s.attach(ws)
            s.send(Prepared({"type": "room.update", "pad": "y" * 3000}))
            b0, payload = await c.frame()
            assert b0 == 0x81 and json.loads(payload)["seq"] == 1
            c.close()


class CountingDeflater(Deflater):
    def __init__(self):
        super().__init__()
        self.prefixes = 0

    def prefix(self, head, wbits):
        self.prefixes += 1
        return super().prefix(head, wbits)


async def test_a_broadcast_is_compressed_once_for_every_socket():
    deflater = CountingDeflater()
    hub = Hub(MemoryBus(), deflater=deflater)
    async with Server() as srv:
        clients = []
        for i in range(6):
            c = RawClient()
            await c.connect(srv.port, CHROMIUM_OFFER if i < 5 else None)  # the last: plain
            ws = await srv.sockets.get()
            s = hub.new_session(Claims(user=f"u{i}", role="viewer"), ws)
            s.send({"type": "welcome"})  # seq 1, a unicast below MIN_BYTES: uncompressed
            hub.watch(s, "room:demo")
            clients.append(c)
        event = {"type": "room.update", "room": "demo", "products": _text(3_500, 6).decode()}
        for _ in range(2):
            hub._deliver_topic("room:demo", {"e": event})
        assert deflater.prefixes == 2, "one compression per broadcast, not per socket"
        prefixes = set()
        for i, c in enumerate(clients):
            b0, payload = await c.frame()
            assert (b0, json.loads(payload)["seq"]) == (0x81, 1)
            for seq in (2, 3):
                b0, payload = await c.frame()
                if i < 5:
                    assert b0 == 0xC1, "RSV1: compressed"
                    assert len(payload) < 1_000
                    text = inflate(payload)
                    prefixes.add(payload[:-len(b',"seq":2}') - 5])
                else:
                    assert b0 == 0x81
                    text = payload
                assert json.loads(text) == dict(event, seq=seq)
            c.close()
        assert len(prefixes) == 1, "every socket got the same compressed bytes"
        for s in list(hub.sessions.values()):
            assert s._direct is not None
            assert s._direct._writer._compressobj is None


async def test_aiohttp_clients_both_ways_and_no_inflater_kept_between_messages():
    """aiohttp's client as the browser: it reads the server's compressed frames; it is told
    ``client_no_context_takeover`` and obeys (a full flush per message), and the server
    reads its compressed frames, as it does those of a client that starts a fresh
    compressor for every message (``compress=`` per call); between messages the server's
    reader holds no inflater (``FreshContextReader``)."""
    hub = Hub(MemoryBus())
    async with Server() as srv, aiohttp.ClientSession() as http:
        client = await http.ws_connect(f"http://127.0.0.1:{srv.port}/ws", compress=15)
        assert client.compress == 15 and client.client_notakeover
        ws = await srv.sockets.get()
        s = hub.new_session(Claims(user="u", role="viewer"), ws)
        hub.watch(s, "t")
        sent = []
        for i in range(20):
            event = {"type": "room.update", "i": i, "products": _text(2_000 + 97 * i, i).decode()}
            if i % 3 == 2:
                s.send(dict(event))  # a unicast, compressed on its own
            else:
                hub._deliver_topic("t", {"e": event})
            sent.append(dict(event, seq=i + 1))
        got = [json.loads((await client.receive(timeout=5)).data) for _ in sent]
        assert got == sent
        texts = [f"client says {i} " + _text(600, i).decode() for i in range(6)]
        for t in texts:
            await client.send_str(t)  # one compressor, fully flushed after each message
        fresh = await http.ws_connect(f"http://127.0.0.1:{srv.port}/ws", compress=15)
        for t in texts:
            await fresh.send_str(t, compress=15)  # a fresh compressor per message
        texts = texts * 2
        for _ in range(100):
            if len(srv.received) == len(texts):
                break
            await asyncio.sleep(0.02)
        assert srv.received == texts
        assert ws._parser._decompressobj is None, "no inflater kept between messages"
        await client.close()
        await fresh.close()


async def test_a_flow_controlled_deflate_socket_gets_its_frames_compressed_in_order():
    async with Server() as srv:
        c = RawClient()
        await c.connect(srv.port, CHROMIUM_OFFER)
        ws = await srv.sockets.get()
        s = Session(id="f", claims=Claims(user="u", role="viewer"), deflater=Deflater())
        s.attach(ws)
        protocol = ws._writer.protocol
        s.send(Prepared({"type": "room.update", "i": 0, "pad": "a" * 800}))
        protocol.pause_writing()
        s.send(Prepared({"type": "room.update", "i": 1, "pad": "b" * 800}))
        s.send({"type": "note", "i": 2, "pad": "c" * 800})
        assert s._writer is not None
        await asyncio.sleep(0.05)
        protocol.resume_writing()
        for i in range(3):
            b0, payload = await c.frame()
            assert b0 == 0xC1
            assert json.loads(inflate(payload))["i"] == i
        c.close()
