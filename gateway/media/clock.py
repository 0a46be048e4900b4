"""NTP time for RTP and RTCP, computed without building ``datetime`` objects.

aiortc's ``clock.current_ntp_time``/``current_ms`` go through ``datetime``; the forwarding
path stamps every packet (abs-send-time, sender reports, arrival times), so it uses these
equivalents, read from ``time.time()`` once per packet.
"""

from __future__ import annotations

import time

NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 → 1970-01-01, seconds


def ntp_now() -> int:
    """64-bit NTP time now (what ``aiortc.clock.current_ntp_time`` gives, without datetime)."""
    t = time.time() + NTP_EPOCH_OFFSET
    return (int(t) << 32) | int((t % 1.0) * 4294967296.0)


def ntp_ms() -> int:
    """``aiortc.clock.current_ms`` (milliseconds since 1900) without building datetimes."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 1000)
