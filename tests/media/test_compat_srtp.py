"""``gateway/media/compat/srtp.py``: the per-packet SRTP calls match pylibsrtp's own."""

from __future__ import annotations

import pytest
from aiortc import rtp

from gateway.media.compat.srtp import srtp_calls


def test_srtp_calls_match_pylibsrtps_own():
    """The per-packet SRTP calls give byte for byte what pylibsrtp's methods give, and
    refuse what they refuse (a replay, a forged tag)."""
    import os

    import pylibsrtp
    from pylibsrtp import Policy, Session

    key = os.urandom(30)
    tx_a = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    tx_b = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    protect, _ = srtp_calls(tx_a)
    _, unprotect = srtp_calls(rx)
    for i in range(50):
        plain = rtp.RtpPacket(payload_type=96, sequence_number=i, timestamp=i * 3000, ssrc=9,
                              payload=os.urandom(100 + i)).serialize()
        sealed = protect(plain)
        assert sealed == tx_b.protect(plain)
        assert unprotect(sealed) == plain
    with pytest.raises(pylibsrtp.Error):
        unprotect(sealed)  # replayed
    with pytest.raises(pylibsrtp.Error):
        unprotect(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(ValueError):
        protect(bytes(1500))
