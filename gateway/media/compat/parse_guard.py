"""RTP header-extension parse guard: a malformed extension drops one packet, not the transport.

``RTCDtlsTransport._handle_rtp_data`` drops a packet whose parse raises ``ValueError``, but
``aiortc.rtp.HeaderExtensionsMap.get`` unpacks extension values with ``struct.unpack`` and
a value of an unexpected length raises ``struct.error`` instead, which escapes and kills
the transport's receive loop: the whole connection goes deaf (seen with Chromium's
``ssrc-audio-level`` once extension ids disagreed between two negotiations). The guard
turns ``struct.error`` into ``ValueError``. It patches a class, once per process:
``gateway.media.compat`` installs it on import.
"""

from __future__ import annotations

import functools
import struct

from aiortc import rtp

HOOK_PARSE = "aiortc.rtp.HeaderExtensionsMap.get"
_GUARD_MARK = "_livedesk_guarded"


def install_parse_guard() -> None:
    """Make a malformed RTP header-extension value a dropped packet, not a dead transport."""
    original = rtp.HeaderExtensionsMap.get
    if getattr(original, _GUARD_MARK, False):
        return

    @functools.wraps(original)  # keeps the original as ``__wrapped__``
    def get(self, extension_profile: int, extension_value: bytes):
        try:
            return original(self, extension_profile, extension_value)
        except struct.error as e:  # _handle_rtp_data only catches ValueError
            raise ValueError(f"RTP header extension value does not parse: {e}") from None

    setattr(get, _GUARD_MARK, True)
    rtp.HeaderExtensionsMap.get = get


def parse_guard_installed() -> bool:
    return bool(getattr(rtp.HeaderExtensionsMap.get, _GUARD_MARK, False))
