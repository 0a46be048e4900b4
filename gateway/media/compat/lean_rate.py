"""aiortc's receive-side bandwidth estimator, with its two hot loops made cheap.

Every received video packet goes through a ``RemoteBitrateEstimator`` (it produces the REMB
the gateway sends upstream). Two of its parts loop in Python where a builtin does: the
overuse estimator scans 60 frame deltas for their minimum per frame, and the rate counter
zeroes its 1 ms buckets one by one. The lean versions give the same numbers in a fraction
of the time; ``tests/media/test_compat_lean_rate.py`` feeds both the same packets and
compares every output. Applied per tapped receiver (:mod:`.receiver_tap`).
"""

from __future__ import annotations

from aiortc import rate


class LeanOveruseEstimator(rate.OveruseEstimator):
    def update_min_frame_period(self, ts_delta: float) -> float:
        hist = self.ts_delta_hist
        if len(hist) >= rate.MIN_FRAME_PERIOD_HISTORY_LENGTH:
            hist.pop(0)
        m = min(hist) if hist else ts_delta
        hist.append(ts_delta)
        return ts_delta if ts_delta < m else m


class LeanRateCounter(rate.RateCounter):
    def _erase_old(self, now_ms: int) -> None:
        origin_ms = self._origin_ms
        assert origin_ms is not None  # RateCounter.add erases only once the origin is set
        new_origin_ms = now_ms - self._window_size + 1
        steps = new_origin_ms - origin_ms
        if steps <= 0:
            return
        buckets, size, total = self._buckets, self._window_size, self._total
        i = self._origin_index
        for _ in range(min(steps, size)):
            b = buckets[i]
            if b.count or b.value:
                total.count -= b.count
                total.value -= b.value
                b.count = 0
                b.value = 0
            i += 1
            if i == size:
                i = 0
        self._origin_index = (self._origin_index + steps) % size
        self._origin_ms = new_origin_ms


def lean_bitrate_estimator(rbe) -> None:
    """Swap the hot parts of a receiver's ``RemoteBitrateEstimator`` for equivalents that
    give the same numbers in a fraction of the time (a builtin ``min`` instead of a Python
    loop over 60 deltas per frame; empty 1 ms buckets skipped instead of zeroed one by one)."""
    if rbe is None or not hasattr(rbe, "estimator") or not hasattr(rbe, "incoming_bitrate"):
        return
    if type(rbe.estimator) is rate.OveruseEstimator:
        rbe.estimator = LeanOveruseEstimator()
    if type(rbe.incoming_bitrate) is rate.RateCounter:
        rbe.incoming_bitrate = LeanRateCounter(1000, 8000)
