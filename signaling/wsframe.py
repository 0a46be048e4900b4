"""Writing WebSocket text frames straight to the socket's transport.

A room broadcast writes one frame to each of thousands of sockets in one loop turn. Through
aiohttp's public path each write is a coroutine (``WebSocketResponse.send_frame`` →
``WebSocketWriter.send_frame``) driven to completion, a check of compression and flow
control, and then ``transport.write(header + payload)``. For a server socket that is not
being flow-controlled, the last step is all the protocol requires (RFC 6455 §5.2: FIN +
opcode, payload length; server frames are not masked), so :class:`DirectWriter` does just
that. On a socket that negotiated permessage-deflate (:mod:`signaling.wsdeflate`) it also
compresses, statelessly: the message is compressed with the process's shared
:class:`~signaling.wsdeflate.Deflater` (RSV1 set), and a broadcast is compressed once for
every socket and spliced per socket (:meth:`DirectWriter.splice`). No socket owns a
compressor.

:meth:`DirectWriter.write` reports ``False`` when the socket is closing or the transport is
paused by flow control; the caller then queues the frame for its writer task, which awaits
:meth:`DirectWriter.send` (it waits for the transport to drain, then writes the same bytes).
Frame order is kept because the caller only writes directly while nothing is queued.

aiohttp internals used (3.9–3.14): ``WebSocketResponse._writer`` (a ``WebSocketWriter``
with ``transport``, ``protocol``, ``compress``, ``use_mask``, ``_closing``) and
``BaseProtocol._paused`` / ``_drain_helper``; :func:`direct_writer` returns ``None`` when any
is missing (the caller then uses aiohttp's ``send_frame``), and ``tests/unit/
test_wsframe.py`` fails naming it.
"""

from __future__ import annotations

import struct
from typing import Any

from .wsdeflate import Deflater, splice

_LEN1 = struct.Struct("!BB").pack
_LEN2 = struct.Struct("!BBH").pack
_LEN3 = struct.Struct("!BBQ").pack
TEXT_FIN = 0x81
TEXT_FIN_RSV1 = 0xC1  # a compressed text message (RFC 7692 §6: RSV1 on its first frame)

HOOKS = ("WebSocketResponse._writer", "WebSocketWriter.transport/protocol/compress/"
         "use_mask/_closing", "BaseProtocol._paused/_drain_helper")


def frame(payload: bytes, first: int = TEXT_FIN) -> bytes:
    """One unmasked frame: ``first`` (FIN, RSV bits, opcode), the length, the payload."""
    n = len(payload)
    return (_LEN1(first, n) if n < 126 else _LEN2(first, 126, n) if n < 65536
            else _LEN3(first, 127, n)) + payload


class DirectWriter:
    """The direct path of one prepared aiohttp ``WebSocketResponse`` (see module doc).

    ``wbits``: the server window negotiated for permessage-deflate, or ``None`` when the
    socket did not negotiate it (frames go out exactly as aiohttp would write them)."""

    __slots__ = ("_writer", "_protocol", "_transport", "_write", "_is_closing", "wbits",
                 "deflater")

    def __init__(self, writer: Any, wbits: int | None, deflater: Deflater):
        self._writer = writer
        self._protocol = writer.protocol
        self._transport = writer.transport
        self._write = writer.transport.write
        self._is_closing = writer.transport.is_closing
        self.wbits = wbits
        self.deflater = deflater

    def _ready(self) -> bool:
        return not (self._writer._closing or self._protocol._paused or self._is_closing())

    def _bytes(self, payload: bytes) -> bytes:
        """The whole frame of one text message, compressed when negotiated and worth it."""
        wbits = self.wbits
        if wbits is not None:
            z = self.deflater.message(payload, wbits)
            if z is not None:
                return frame(z, TEXT_FIN_RSV1)
        return frame(payload)

    def write(self, payload: bytes) -> bool:
        """Write one text message (UTF-8 ``payload``) now: ``False`` if the socket is
        closing or behind (flow control), and nothing was written."""
        if not self._ready():
            return False
        self._write(self._bytes(payload))
        return True

    def splice(self, head: bytes, suffix: bytes, cache: dict[int, bytes | None]) -> bool:
        """:meth:`write` of ``head + suffix`` for a broadcast: ``head`` is shared by every
        socket it goes to and compressed at most once per window size (``cache``, owned by
        the broadcast); ``suffix`` is this socket's own (at most 65,535 bytes)."""
        if not self._ready():
            return False
        self._write(self._spliced(head, suffix, cache))
        return True

    def _spliced(self, head: bytes, suffix: bytes, cache: dict[int, bytes | None]) -> bytes:
        wbits = self.wbits
        if wbits is None:
            return frame(head + suffix)
        try:
            prefix = cache[wbits]
        except KeyError:
            prefix = cache[wbits] = self.deflater.prefix(head, wbits)
        if prefix is None:
            return frame(head + suffix)
        return frame(splice(prefix, suffix), TEXT_FIN_RSV1)

    async def send(self, payload: bytes) -> None:
        """:meth:`write` for the writer task: waits while the transport is paused; raises
        ``ConnectionResetError`` when the socket is closing (its frames stay retained)."""
        await self._writable()
        self._write(self._bytes(payload))

    async def send_spliced(self, head: bytes, suffix: bytes,
                           cache: dict[int, bytes | None]) -> None:
        """:meth:`splice` for the writer task (a broadcast queued behind flow control or the
        session mirror keeps its one shared compression)."""
        await self._writable()
        self._write(self._spliced(head, suffix, cache))

    async def _writable(self) -> None:
        protocol = self._protocol
        while protocol._paused:
            await protocol._drain_helper()
        if self._writer._closing or self._is_closing():
            raise ConnectionResetError("socket is closing")


def direct_writer(ws: Any, deflater: Deflater | None = None) -> DirectWriter | None:
    """The :class:`DirectWriter` of a prepared aiohttp ``WebSocketResponse``; ``None`` for
    anything else (a test double, a client-side (masking) writer, a socket whose aiohttp
    writer compresses by itself, an aiohttp that changed): the caller uses ``send_frame``.

    A socket that negotiated deflate through :class:`~signaling.wsdeflate.DeflateResponse`
    (its ``deflate`` set, aiohttp's writer not compressing) compresses with ``deflater``."""
    writer = getattr(ws, "_writer", None)
    transport = getattr(writer, "transport", None)
    protocol = getattr(writer, "protocol", None)
    if (writer is None or transport is None or protocol is None
            or not hasattr(writer, "_closing") or not hasattr(protocol, "_paused")
            or not hasattr(protocol, "_drain_helper")
            or getattr(writer, "compress", None) != 0 or getattr(writer, "use_mask", True)):
        return None
    deflate = getattr(ws, "deflate", None)
    if deflate is not None and deflater is None:
        return None  # it negotiated deflate but there is nothing to compress with
    return DirectWriter(writer, None if deflate is None else deflate.wbits,
                        deflater if deflater is not None else _UNUSED)


_UNUSED = Deflater()  # never called: sockets without deflate never compress
