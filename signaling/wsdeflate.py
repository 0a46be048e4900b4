"""permessage-deflate (RFC 7692) that costs what uncompressed sockets do.

Every browser offers ``permessage-deflate; client_max_window_bits``. Accepted as aiohttp
accepts it (context takeover), each socket owns a zlib compressor (~256 KiB of state at
aiohttp's settings) and each broadcast is compressed once *per socket*: at 1,500 watchers
that was 5.2× the memory and 2.7× the CPU of uncompressed sockets (issue 21). Here:

* **Negotiation** (:class:`DeflateResponse`): the answer always carries
  ``server_no_context_takeover`` (RFC 7692 §7.1.1.1 lets a server add it unasked), so no
  message the server sends may refer to an earlier one. A compressed message is then the
  same bytes whatever the socket has seen before: one compression serves every socket. The
  server's window is the one the client asked for (``server_max_window_bits``, default 15):
  it bounds nothing on this side, where there is one compressor per window size per
  process, so it is not lowered further.
* **Client→server**: the answer also carries ``client_no_context_takeover`` (§7.1.1.2: a
  server may require it unasked; every browser implements it), so each client message is
  self-contained and the server needs no inflater between messages. aiohttp's reader keeps
  one per socket for ever once the client sent a compressed message (measured: +11 KB RSS
  per socket, every browser compresses every message); the reader here
  (:class:`FreshContextReader`, aiohttp's own pure-Python reader) decompresses with
  aiohttp's code and drops the inflater after each message. A client that offered
  ``client_no_context_takeover`` itself gets the same answer.
* **aiohttp's own writes stay uncompressed** (its writer's ``compress`` is set to 0 after
  the handshake): the pre-``hello`` errors, close and ping frames. RFC 7692 §6 lets any
  message go uncompressed (RSV1 clear), and it means no per-socket compressor is ever made.
* **Compression** (:class:`Deflater`): one raw-deflate compressor per window size, ended by
  a full flush after every message (the compression state is reset: the next message
  cannot refer back). Frames under :data:`MIN_BYTES` are sent uncompressed (deflate gains
  nothing on them); frames over :data:`MAX_BYTES` too, so a compression never holds the
  event loop for more than about a millisecond.
* **One compression per broadcast, spliced per socket**: a broadcast differs per socket
  only by its closing ``"seq":n}``. Its shared head is compressed once; a full flush leaves
  the stream at a byte boundary right after the three header bits of an empty *stored*
  block, whose length fields (``00 00 ff ff``) are the four bytes RFC 7692 strips. Each
  socket's message is that prefix, then the stored block's length and the socket's own
  suffix as its contents, then one ``00`` byte: the header bits of the empty stored block
  the receiver completes by appending ``00 00 ff ff`` (§7.2.2). 5 bytes over the shared
  compression, no compression per socket.

aiohttp internals used (3.14): ``WebSocketResponse._handshake`` (its 4-tuple),
``_pre_start`` (returns the writer), ``_post_start`` (sets ``_reader``/``_parser`` and the
protocol's parser), ``WebSocketWriter.compress``, ``aiohttp._websocket.reader_py``
(``WebSocketReader._handle_frame``/``_decompressobj``, ``WebSocketDataQueue``) and
``RequestHandler._payload_parser``/``_data_received_cb``; ``tests/unit/test_wsdeflate.py``
fails naming them if an upgrade changes them.
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web
from aiohttp._websocket.reader_py import WebSocketDataQueue as PyDataQueue
from aiohttp._websocket.reader_py import WebSocketReader as PyReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

log = logging.getLogger(__name__)

LEVEL = 1  # Z_BEST_SPEED, as aiohttp: the frames are small JSON; speed is what costs
MEM_LEVEL = 8  # zlib's default; one compressor per process, so its memory is no matter
MIN_BYTES = 128  # a smaller message goes uncompressed: deflate's framing eats the gain
MAX_BYTES = 256 * 1024  # a larger one goes uncompressed: ~1 ms of compression at most
TAIL = b"\x00\x00\xff\xff"  # an empty stored block's LEN/NLEN, stripped (RFC 7692 §7.2.1)
_STORED_LEN = struct.Struct("<HH").pack

HOOKS = ("WebSocketResponse._handshake -> (headers, protocol, compress, notakeover)",
         "WebSocketResponse._pre_start -> (protocol, writer)",
         "WebSocketResponse._post_start/_reader/_parser/_max_msg_size/_decode_text",
         "WebSocketWriter.compress", "reader_py.WebSocketReader._handle_frame/_decompressobj",
         "reader_py.WebSocketDataQueue", "RequestHandler._payload_parser/_data_received_cb")


@dataclass(frozen=True, slots=True)
class Deflate:
    """What was negotiated on one socket: the server's window (``server_max_window_bits``)."""

    wbits: int = 15

    @property
    def header(self) -> str:
        """The ``Sec-WebSocket-Extensions`` answer."""
        ext = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        if self.wbits < 15:
            ext += f"; server_max_window_bits={self.wbits}"
        return ext


class Deflater:
    """Raw-deflate compression of whole messages, stateless between calls.

    One zlib compressor per window size (in practice one: browsers do not bound the server's
    window), shared by every socket of the event loop that owns it; every call ends with
    ``Z_FULL_FLUSH``, which resets the compression state, so no output refers to an earlier
    one. Compressing a message costs one ``compress`` + ``flush``; the state (~256 KiB at
    window 15, memLevel 8) exists once, not per socket.
    """

    def __init__(self, level: int = LEVEL, mem_level: int = MEM_LEVEL,
                 min_bytes: int = MIN_BYTES, max_bytes: int = MAX_BYTES):
        self.level = level
        self.mem_level = mem_level
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self._by_wbits: dict[int, Any] = {}  # wbits → zlib compressor

    def _deflate(self, data: bytes, wbits: int) -> bytes:
        """``data`` as raw deflate ending in a full flush, ``00 00 ff ff`` stripped: the
        stream stops right after the header bits of an empty stored block."""
        c = self._by_wbits.get(wbits)
        if c is None:
            c = self._by_wbits[wbits] = zlib.compressobj(self.level, zlib.DEFLATED, -wbits,
                                                         self.mem_level)
        try:
            out = c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)
        except BaseException:
            # a compressor interrupted between compress and flush holds part of a message:
            # never reuse it
            del self._by_wbits[wbits]
            raise
        if not out.endswith(TAIL):  # zlib always ends a full flush so; refuse anything else
            del self._by_wbits[wbits]
            raise zlib.error("full flush did not end in an empty stored block")
        return out[:-4]

    def message(self, data: bytes, wbits: int) -> bytes | None:
        """The payload of one compressed message (RSV1 set), or ``None``: send ``data``
        uncompressed (too small or too large to be worth it)."""
        if not self.min_bytes <= len(data) <= self.max_bytes:
            return None
        return self._safely(data, wbits)

    def prefix(self, head: bytes, wbits: int) -> bytes | None:
        """A broadcast's shared head compressed once, for :func:`splice` (``None``: too
        large, send it uncompressed)."""
        if len(head) > self.max_bytes:
            return None
        return self._safely(head, wbits)

    def _safely(self, data: bytes, wbits: int) -> bytes | None:
        """A zlib failure costs this message its compression, never the fan-out loop that
        is writing it to thousands of sockets (the next call gets a new compressor)."""
        try:
            return self._deflate(data, wbits)
        except zlib.error as e:
            log.error("deflate failed (%s); the message goes uncompressed", e)
            return None


def splice(prefix: bytes, suffix: bytes) -> bytes:
    """One socket's compressed message: the shared ``prefix`` (from :meth:`Deflater.prefix`),
    a stored block holding this socket's ``suffix`` (at most 65,535 bytes), and the header
    bits of the empty stored block whose ``00 00 ff ff`` the receiver appends."""
    n = len(suffix)
    return prefix + _STORED_LEN(n, n ^ 0xFFFF) + suffix + b"\x00"


def inflate(payload: bytes) -> bytes:
    """What a receiver makes of one compressed message with a fresh context (tests, tools)."""
    d = zlib.decompressobj(-15)
    return d.decompress(payload + TAIL) + d.flush()


class FreshContextReader(PyReader):
    """aiohttp's WebSocket reader, dropping its inflater after every complete message: with
    ``client_no_context_takeover`` no message refers to an earlier one, so none is kept
    (a socket idles with no zlib state; a message costs one inflater set-up, microseconds)."""

    def _handle_frame(self, fin: Any, opcode: Any, payload: Any, compressed: Any) -> None:
        try:
            super()._handle_frame(fin, opcode, payload, compressed)
        finally:
            if fin:
                self._decompressobj = None


class DeflateResponse(web.WebSocketResponse):
    """aiohttp's ``WebSocketResponse`` with the negotiation above: ``deflate`` is what was
    agreed (``None``: the client did not offer permessage-deflate, or offered only what
    zlib cannot do, and every frame goes uncompressed as before)."""

    deflate: Deflate | None = None

    def _handshake(self, request: Any) -> Any:
        headers, protocol, compress, notakeover = super()._handshake(request)
        if compress:
            self.deflate = Deflate(wbits=int(compress))
            headers[hdrs.SEC_WEBSOCKET_EXTENSIONS] = self.deflate.header
            notakeover = True
        return headers, protocol, compress, notakeover

    def _pre_start(self, request: Any) -> Any:
        protocol, writer = super()._pre_start(request)
        writer.compress = 0  # aiohttp's own writes go uncompressed: no compressor per socket
        return protocol, writer

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        super()._post_start(request, protocol, writer)
        if self.deflate is None:
            return
        # the same reader aiohttp set, in its pure-Python form that lets the inflater go
        # (nothing was read in between: no await since aiohttp set its own)
        handler = request.protocol
        loop = self._loop
        assert loop is not None  # set by _pre_start
        queue = PyDataQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        parser = FreshContextReader(queue, self._max_msg_size, compress=True,
                                    decode_text=self._decode_text)
        callback = handler._data_received_cb
        handler._payload_parser = None
        self._reader, self._parser = queue, parser
        handler.set_parser(parser, data_received_cb=callback)
