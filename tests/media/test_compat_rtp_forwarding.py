"""``gateway/media/compat/rtp_forwarding.py``: the aiortc/aioice internals the RTP-level
send path writes around are still there; a changed one is reported by name (the writer
then falls back to aiortc's own path)."""

from __future__ import annotations

from gateway.media.compat import rtp_forwarding
from gateway.media.compat.rtp_forwarding import (
    HOOK_RECV_REMB,
    HOOK_SEND_SR,
    forwarding_hooks_missing,
)


def test_hooks_rtp_forwarding():
    """Names every aiortc/aioice internal the RTP-level send path writes around; an upgrade
    that changes one fails here, naming it."""
    assert forwarding_hooks_missing() == []


def test_hook_checks_name_what_an_upgrade_removed(monkeypatch):
    """The checks read aiortc's source; one that changes is reported by name (the cached
    result is for this aiortc; the uncached function is called here)."""
    from aiortc import RTCRtpReceiver, RTCRtpSender

    async def changed(self, *a, **kw):  # an aiortc whose methods do something else
        return None

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", changed)
    monkeypatch.setattr(RTCRtpSender, "_run_rtcp", changed)
    fwd = rtp_forwarding._forwarding_hooks_missing.__wrapped__()
    assert HOOK_SEND_SR in fwd and HOOK_RECV_REMB in fwd, fwd
