"""Writing a WebSocket text frame straight to the socket's transport, for broadcasts.

A room broadcast writes one frame to each of thousands of sockets in one loop turn. Through
aiohttp's public path each write is a coroutine (``WebSocketResponse.send_frame`` →
``WebSocketWriter.send_frame``) driven to completion, a lock-free check of compression and
flow control, and then ``transport.write(header + payload)``. For an uncompressed server
socket that is not being flow-controlled, the last step is all the protocol requires
(RFC 6455 §5.2: FIN + opcode, payload length; server frames are not masked), so
:func:`direct_writer` does just that and reports ``False`` whenever the public path must
decide instead: permessage-deflate negotiated, a client-side (masking) writer, the socket
closing, or the transport paused by flow control. The caller then uses aiohttp's path,
which raises, compresses or waits as it should; frame order is kept because the caller
only writes directly while nothing is queued for the socket.

aiohttp internals used (3.9–3.14): ``WebSocketResponse._writer`` (a ``WebSocketWriter``
with ``transport``, ``protocol``, ``compress``, ``use_mask``, ``_closing``) and
``BaseProtocol._paused``; :func:`direct_writer` returns ``None`` when any is missing, and
``tests/unit/test_wsframe.py`` fails naming it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

_LEN1 = struct.Struct("!BB").pack
_LEN2 = struct.Struct("!BBH").pack
_LEN3 = struct.Struct("!BBQ").pack
TEXT_FIN = 0x81

HOOKS = ("WebSocketResponse._writer", "WebSocketWriter.transport/protocol/compress/"
         "use_mask/_closing", "BaseProtocol._paused")


def direct_writer(ws: Any) -> Callable[[bytes], bool] | None:
    """``write(payload: bytes) -> bool`` for a prepared aiohttp ``WebSocketResponse``:
    ``True`` when the text frame was handed to the transport, ``False`` when the caller must
    use aiohttp's ``send_frame`` instead. ``None`` for anything else (a test double, an
    aiohttp that changed)."""
    writer = getattr(ws, "_writer", None)
    transport = getattr(writer, "transport", None)
    protocol = getattr(writer, "protocol", None)
    if (writer is None or transport is None or protocol is None
            or not hasattr(writer, "_closing") or not hasattr(protocol, "_paused")
            or getattr(writer, "compress", None) != 0 or getattr(writer, "use_mask", True)):
        return None
    write = transport.write
    is_closing = transport.is_closing

    def write_frame(payload: bytes) -> bool:
        if writer._closing or protocol._paused or is_closing():
            return False
        n = len(payload)
        write((_LEN1(TEXT_FIN, n) if n < 126 else _LEN2(TEXT_FIN, 126, n) if n < 65536
               else _LEN3(TEXT_FIN, 127, n)) + payload)
        return True

    return write_frame
