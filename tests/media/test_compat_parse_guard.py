"""``gateway/media/compat/parse_guard.py``: the guarded aiortc method is still there and a
malformed header-extension value raises ``ValueError`` (a dropped packet), not
``struct.error`` (a dead transport)."""

from __future__ import annotations

import struct

import pytest
from aiortc import rtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

from gateway.media.compat.parse_guard import HOOK_PARSE, parse_guard_installed


def test_hook_rtp_header_extension_parse_guard():
    hook = HOOK_PARSE
    assert hasattr(rtp, "HeaderExtensionsMap") and hasattr(rtp.HeaderExtensionsMap, "get"), \
        f"aiortc changed: {hook} is gone; revisit compat.parse_guard.install_parse_guard"
    assert parse_guard_installed(), f"{hook} is not guarded"
    m = rtp.HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(
        id=1, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level")]))
    # id 1 carrying 3 bytes (e.g. another extension under a clashing id): aiortc's unpack
    # raises struct.error, which RTCDtlsTransport._handle_rtp_data does not catch
    with pytest.raises(struct.error):
        m.get.__wrapped__(m, 0xBEDE, bytes([0x12, 1, 2, 3]))
    with pytest.raises(ValueError):
        m.get(0xBEDE, bytes([0x12, 1, 2, 3]))
    assert m.get(0xBEDE, bytes([0x10, 0x85, 0, 0])).audio_level == (True, 5)
