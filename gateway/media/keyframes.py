"""Asking a source for a key frame without flooding it.

Every new destination, every destination that lost packets and every per-pair decoder
may want a key frame from the same source at once; a burst of PLIs makes an encoder send
key frames back to back (large, and each one a bitrate spike). One source gets at most one
PLI per :data:`KEYFRAME_INTERVAL_S`; a request inside the interval is sent when it ends,
never dropped, so whoever asked still gets its key frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

KEYFRAME_INTERVAL_S = 0.5  # at most one PLI upstream per source per interval


class KeyframeRequester:
    """At most one PLI per ``interval_s``; a request inside the interval is sent at its end."""

    def __init__(self, send: Callable[[], bool], interval_s: float = KEYFRAME_INTERVAL_S):
        self._send = send
        self.interval_s = interval_s
        self._last = -1e9
        self._timer: asyncio.TimerHandle | None = None
        self.sent = 0
        self.requested = 0

    def request(self) -> None:
        self.requested += 1
        if self._timer is not None:
            return  # one is already scheduled
        wait = self._last + self.interval_s - time.monotonic()
        if wait <= 0:
            self._fire()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._send():
            self._last = time.monotonic()
            self.sent += 1

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
