"""Issue 20 must-show: the anomaly replay.

5,000 synthetic viewer messages over 8 products in 30 minutes (``tests/radar/stream.py``,
seed ``SEED``), classified by the real bot, fed to the anomaly detector on a simulated clock:
a complaint spike on one product raises its flag within 60 s of the spike's start and the
flag clears by itself after the spike; the same stream without the spike raises no flag.
"""

from __future__ import annotations

import pytest

from gateway.support.anomaly import AnomalyDetector, AnomalyRule, poisson_sf
from gateway.support.events import QuestionClassified
from tests.radar.replay import replay
from tests.radar.stream import SEED, TOTAL, Spike, viewer_stream


def test_the_stream_is_what_it_claims():
    quiet = viewer_stream(SEED)
    spiked = viewer_stream(SEED, Spike())
    assert len(quiet) == len(spiked) == TOTAL
    assert len({x.sku for x in quiet}) == 8
    assert 0 <= quiet[0].t and quiet[-1].t <= 30 * 60
    assert viewer_stream(SEED) == quiet  # the seed fixes it


def test_a_complaint_spike_raises_a_flag_within_60_s_and_it_clears_after():
    spike = Spike()
    r = replay(viewer_stream(SEED, spike))
    # the bot classified the spike's texts as complaints about the spiked product
    assert sum(1 for e in r.classified if e.sku == spike.sku and e.intent == "complaint") \
        >= spike.count
    raised = [e for e in r.raised if (e.sku, e.kind) == (spike.sku, "complaint")]
    assert len(raised) == 1, r.raised
    flag = raised[0]
    assert spike.start_s <= flag.since <= spike.start_s + 60, flag
    assert flag.observed >= 6 and flag.observed >= 3 * flag.expected
    # nothing else was flagged
    assert [(e.sku, e.kind) for e in r.raised] == [(spike.sku, "complaint")]
    cleared = [e for e in r.cleared if (e.sku, e.kind) == (spike.sku, "complaint")]
    assert len(cleared) == 1, r.cleared
    end = spike.start_s + spike.duration_s
    assert end < cleared[0].cleared_at <= end + 600, cleared


def test_thirty_quiet_minutes_raise_no_flag():
    r = replay(viewer_stream(SEED))
    assert len(r.classified) == TOTAL
    assert r.raised == [] and r.cleared == []


def _ev(ts: float, sku: str, intent: str) -> QuestionClassified:
    return QuestionClassified("r", "c", "v", "t", intent, sku, None, (), ts)


def test_the_rule_explains_itself():
    """12 complaints in the window where 1.5 were expected: a flag, with its figures."""
    d = AnomalyDetector(AnomalyRule(window_s=600, floor_per_hour=9.0))
    t0 = 1000.0
    for i in range(12):
        d.observe(_ev(t0 + i * 10, "A", "complaint"))
    [raised] = [c for c in d.evaluate(t0 + 120)]
    assert (raised.sku, raised.kind, raised.observed) == ("A", "complaint", 12)
    assert raised.basis == "floor" and raised.expected == pytest.approx(9.0 * 120 / 3600, 0.01)
    assert raised.p == pytest.approx(poisson_sf(12, raised.expected))
    assert d.flags("r")[0].to_wire()["observed"] == 12
    # ten quiet minutes later the window holds none: cleared by itself
    [cleared] = d.evaluate(t0 + 120 + 700)
    assert cleared.since == raised.since and cleared.observed == 0
    assert d.flags("r") == []


def test_a_product_that_always_draws_returns_is_not_flagged():
    """Its own history sets the bar: 20 % of its questions are returns, every hour (judged
    once it has that history: before, it is judged against the room, and would be flagged)."""
    d = AnomalyDetector()
    t = 0.0
    for i in range(4000):
        t = i * 1.0
        d.observe(_ev(t, "A", "return_refund" if i % 5 == 0 else "stock"))
        d.observe(_ev(t + 0.5, "B", "stock"))
        if i % 10 == 0 and i >= 600:
            assert d.evaluate(t) == [], i
    assert d.flags("r") == []


def test_poisson_tail():
    assert poisson_sf(0, 3.0) == 1.0
    assert poisson_sf(1, 1.0) == pytest.approx(1 - 0.36787944, 1e-6)
    assert poisson_sf(12, 1.5) < 1e-6
