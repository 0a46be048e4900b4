"""``gateway/media/compat/lean_rate.py``: the lean bitrate estimator gives aiortc's numbers."""

from __future__ import annotations

import pytest

from gateway.media.compat.lean_rate import lean_bitrate_estimator


def _feed_estimators(seed: int):
    """The same packets (bursty frames, jittered arrivals, gaps) through aiortc's
    RemoteBitrateEstimator and through one made lean: every output must be equal."""
    import random

    from aiortc.rate import RemoteBitrateEstimator

    rnd = random.Random(seed)
    plain, lean = RemoteBitrateEstimator(), RemoteBitrateEstimator()
    lean_bitrate_estimator(lean)
    assert type(lean.estimator).__name__ == "LeanOveruseEstimator"
    assert type(lean.incoming_bitrate).__name__ == "LeanRateCounter"
    out_plain, out_lean = [], []
    arrival = 1000
    for frame in range(1500):
        send_ms = frame * 33 + (rnd.randrange(0, 400) if rnd.random() < 0.01 else 0)
        ast = (send_ms * (1 << 18) // 1000) & 0xFFFFFF
        arrival += 33 + rnd.choice([0, 0, 0, 1, 3, 12, -2, 1500 if rnd.random() < 0.003 else 0])
        for k in range(rnd.randrange(1, 6)):
            args = dict(arrival_time_ms=arrival + k, abs_send_time=ast,
                        payload_size=rnd.randrange(200, 1200), ssrc=5)
            out_plain.append(plain.add(**args))
            out_lean.append(lean.add(**args))
    return out_plain, out_lean


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lean_bitrate_estimator_gives_aiortcs_numbers(seed):
    out_plain, out_lean = _feed_estimators(seed)
    assert any(r is not None for r in out_plain), "the run never produced an estimate"
    assert out_lean == out_plain
