"""Anomaly flags: a product whose complaints, return/refund requests or health and safety
reports run unusually high, against its own history and the room's other products.

The rule (one place: :meth:`AnomalyDetector.expected` and :meth:`AnomalyRule.judge`;
explained in docs/webhooks.md, "Anomaly flags: the rule") is a one-sided Poisson test with a
minimum count:

* ``observed`` = reports of one kind about one product in the last ``window_s``;
* ``expected`` = the product's *other* questions in that window × a ratio of reports per
  other question, at least ``floor_per_hour`` over the window; the ratio is the **highest** of
  - the product's own history (``history_s`` before the window, once it holds enough
    questions),
  - the room's other products over ``history_s``, and
  - ``floor_ratio``;
* a flag is **raised** when ``observed ≥ min_count`` and ``observed ≥ ratio × expected``
  and ``P(X ≥ observed | Poisson(expected)) < p_raise``: "12 complaints in 2 min, 1.5
  expected";
* it **clears by itself** when ``P(X ≥ observed) ≥ p_clear`` (the rate is back to what
  is expected; a wider threshold than the raise, so a flag does not flicker).

Why per other question: a popular product draws more complaints than a quiet one without
anything being wrong. Why the highest of the three: a product that always draws returns is not
an anomaly (its own history), a stream where everything draws complaints is not one product's
problem (the room's others), and two complaints about a quiet product are not an alarm (the
floor). The detector is pure (time is passed in), so the replay test drives 30 minutes of
messages in seconds.

State is per node (each node counts the questions its bot answered); see docs/architecture.md
for the multi-node behaviour.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from signaling.events import Events

from .events import AnomalyCleared, AnomalyRaised, QuestionClassified

log = logging.getLogger(__name__)

KINDS = ("complaint", "return_refund", "safety")
# what each kind counts, from the bot's decision: the intent, or an escalation reason
_INTENT_KIND = {"complaint": "complaint", "return_refund": "return_refund"}
_REASON_KIND = {"health": "safety"}
ALL = "*"  # the series of every question about a product (its traffic)
MAX_KEYS = 10_000  # series (room, sku, kind) tracked per node; beyond: not counted (logged)
MIN_BASIS_QUESTIONS = 30  # a ratio (own or room) is used once it rests on this many questions


def kinds_of(e: QuestionClassified) -> list[str]:
    """The anomaly kinds one classified message counts toward (none, one or two)."""
    out = []
    k = _INTENT_KIND.get(e.intent)
    if k:
        out.append(k)
    for r in e.reasons:
        k = _REASON_KIND.get(r)
        if k and k not in out:
            out.append(k)
    return out


def poisson_sf(n: int, lam: float) -> float:
    """``P(X ≥ n)`` for ``X ~ Poisson(lam)``: one minus the sum of the lower terms."""
    if n <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    below = 0.0
    log_lam = math.log(lam)
    for k in range(n):
        below += math.exp(k * log_lam - lam - math.lgamma(k + 1))
    return max(0.0, min(1.0, 1.0 - below))


@dataclass(frozen=True)
class AnomalyRule:
    """The documented rule's settings (``anomaly_*`` in docs/configuration.md)."""
    window_s: float = 120.0
    history_s: float = 3600.0
    min_count: int = 6
    ratio: float = 3.0
    p_raise: float = 1e-4
    p_clear: float = 0.01
    floor_ratio: float = 0.01  # at least 1 report per 100 other questions is expected
    floor_per_hour: float = 2.0  # and at least this many per hour, however quiet the product

    def judge(self, observed: int, expected: float) -> tuple[bool, float]:
        """(abnormal?, p) for ``observed`` reports when ``expected`` were expected."""
        p = poisson_sf(observed, expected)
        high = (observed >= self.min_count and observed >= self.ratio * expected
                and p < self.p_raise)
        return high, p


class _Series:
    """Counts per second with running totals: any interval's count by two bisections, so a
    judgement costs the same in a flash sale as in a quiet stream."""

    __slots__ = ("base", "cums", "secs")

    def __init__(self) -> None:
        self.secs: list[int] = []
        self.cums: list[int] = []
        self.base = 0  # the running total before the first kept second

    def add(self, ts: float) -> None:
        sec = int(ts)
        if self.secs and self.secs[-1] >= sec:
            self.cums[-1] += 1  # same second (or a late one: counted in the newest)
        else:
            self.secs.append(sec)
            self.cums.append((self.cums[-1] if self.cums else self.base) + 1)

    def _at(self, t: float) -> int:
        i = bisect.bisect_right(self.secs, int(t))
        return self.cums[i - 1] if i else self.base

    def between(self, a: float, b: float) -> int:
        """Reports in ``(a, b]`` (whole seconds)."""
        return self._at(b) - self._at(a)

    def trim(self, before: float) -> None:
        i = bisect.bisect_left(self.secs, int(before))
        if i:
            self.base = self.cums[i - 1]
            del self.secs[:i], self.cums[:i]

    def __bool__(self) -> bool:
        return bool(self.secs)


@dataclass
class Flag:
    room: str
    sku: str
    kind: str
    observed: int
    expected: float
    since: float
    basis: str
    p: float
    window_s: float

    def to_wire(self) -> dict[str, Any]:
        return {"sku": self.sku, "kind": self.kind, "observed": self.observed,
                "expected": round(self.expected, 2), "since": self.since,
                "basis": self.basis, "p": float(f"{self.p:.3g}"), "window_s": self.window_s}


@dataclass
class _Room:
    first_seen: float
    series: dict[tuple[str, str], _Series] = field(default_factory=dict)  # (sku, kind|ALL)
    daily: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (day, sku, what)


class AnomalyDetector:
    """Counts per room × product × kind and the flags they raise. Pure: every method takes
    ``now`` (or the event's own timestamp), nothing reads the wall clock."""

    def __init__(self, rule: AnomalyRule | None = None):
        self.rule = rule or AnomalyRule()
        self._rooms: dict[str, _Room] = {}
        self._flags: dict[tuple[str, str, str], Flag] = {}
        self._keys = 0

    def _series(self, r: _Room, room: str, sku: str, kind: str) -> _Series | None:
        s = r.series.get((sku, kind))
        if s is None:
            if self._keys >= MAX_KEYS:
                log.warning("anomaly: over %d series; %s/%s/%s not counted",
                            MAX_KEYS, room, sku, kind)
                return None
            self._keys += 1
            s = r.series[(sku, kind)] = _Series()
        return s

    def observe(self, e: QuestionClassified) -> None:
        r = self._rooms.get(e.room)
        if r is None:
            r = self._rooms[e.room] = _Room(first_seen=e.ts)
        day = time.strftime("%Y-%m-%d", time.gmtime(e.ts))
        for sku in (e.sku.split("+") if e.sku else []):
            r.daily[(day, sku, "questions")] = r.daily.get((day, sku, "questions"), 0) + 1
            for kind in (ALL, *kinds_of(e)):
                if kind != ALL:
                    r.daily[(day, sku, kind)] = r.daily.get((day, sku, kind), 0) + 1
                s = self._series(r, e.room, sku, kind)
                if s is not None:
                    s.add(e.ts)

    def expected(self, room: str, sku: str, kind: str, now: float) -> tuple[float, str, int]:
        """(expected reports in the window, which ratio set it, observed reports): the
        rule's figures for one product, as its flag explains them.

        The traffic is the product's *other* questions in the window (its reports of this
        kind left out, so a burst does not raise its own bar); the ratio of reports to other
        questions is the highest of the product's own history, the room's other products
        and ``floor_ratio``."""
        rule = self.rule
        r = self._rooms[room]
        elapsed = max(1.0, now - r.first_seen)
        w0 = now - rule.window_s
        h0 = now - rule.history_s - rule.window_s
        empty = _Series()
        mine = r.series.get((sku, kind), empty)
        traffic = r.series.get((sku, ALL), empty)
        observed = mine.between(w0, now)
        others_w = traffic.between(w0, now) - observed
        ratios = {"floor": rule.floor_ratio}
        if elapsed >= 2 * rule.window_s:  # at least one window of its own history
            k_h = mine.between(h0, w0)
            q_h = traffic.between(h0, w0) - k_h
            if q_h >= MIN_BASIS_QUESTIONS:
                ratios["own"] = k_h / q_h
        k_r = q_r = 0
        for (x, kd), s in r.series.items():
            if x == sku:
                continue
            if kd == kind:
                k_r += s.between(h0, now)
            elif kd == ALL:
                q_r += s.between(h0, now)
        q_r -= k_r
        if q_r >= MIN_BASIS_QUESTIONS:
            ratios["room"] = k_r / q_r
        basis = max(ratios, key=lambda k: ratios[k])
        lam = others_w * ratios[basis]
        low = rule.floor_per_hour * min(rule.window_s, elapsed) / 3600.0
        if low > lam:
            lam, basis = low, "floor"
        return lam, basis, observed

    def evaluate(self, now: float) -> list[AnomalyRaised | AnomalyCleared]:
        """Judge every tracked series at ``now``; the flags that were raised or cleared."""
        rule = self.rule
        out: list[AnomalyRaised | AnomalyCleared] = []
        for room, r in self._rooms.items():
            for s in r.series.values():
                s.trim(now - rule.history_s - rule.window_s)
            for (sku, kind), s in list(r.series.items()):
                if kind == ALL:
                    continue
                key = (room, sku, kind)
                flag = self._flags.get(key)
                if flag is None and not s.between(now - rule.window_s, now):
                    continue
                lam, basis, n = self.expected(room, sku, kind, now)
                high, p = rule.judge(n, lam)
                if flag is None and high:
                    flag = Flag(room, sku, kind, n, lam, now, basis, p, rule.window_s)
                    self._flags[key] = flag
                    out.append(AnomalyRaised(room, sku, kind, n, round(lam, 2), now, basis, p))
                elif flag is not None:
                    if p >= rule.p_clear:
                        del self._flags[key]
                        out.append(AnomalyCleared(room, sku, kind, n, round(lam, 2),
                                                  flag.since, now))
                    else:
                        flag.observed, flag.expected, flag.basis, flag.p = n, lam, basis, p
        return out

    def flags(self, room: str) -> list[Flag]:
        return [f for (r, _, _), f in sorted(self._flags.items()) if r == room]

    def all_flags(self) -> list[Flag]:
        return list(self._flags.values())

    def report_csv(self, room: str, day: str | None = None) -> str:
        """Per-day, per-product figures of ``room`` (questions, complaints, return/refund
        requests, safety reports) as CSV: the daily report (``day``: that UTC day only)."""
        r = self._rooms.get(room)
        rows: dict[tuple[str, str], dict[str, int]] = {}
        for (d, sku, what), n in (r.daily.items() if r else ()):
            if day is None or d == day:
                rows.setdefault((d, sku), {})[what] = n
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["day", "room", "sku", "questions", *KINDS])
        for (d, sku), v in sorted(rows.items()):
            w.writerow([d, room, sku, v.get("questions", 0), *(v.get(k, 0) for k in KINDS)])
        return buf.getvalue()


class AnomalyService:
    """Feeds the detector from :class:`~.events.QuestionClassified`, judges every
    ``tick_s`` and publishes :class:`~.events.AnomalyRaised` / :class:`~.events.AnomalyCleared`
    (the webhooks and the radar's push follow those); keeps the flag metric."""

    def __init__(self, detector: AnomalyDetector, events: Events, metrics: Any = None,
                 tick_s: float = 1.0, clock: Callable[[], float] = time.time):
        self.detector = detector
        self.events = events
        self.metrics = metrics
        self.tick_s = tick_s
        self.clock = clock
        self._task: asyncio.Task | None = None
        events.subscribe(QuestionClassified, detector.observe)

    def tick(self, now: float | None = None) -> list[AnomalyRaised | AnomalyCleared]:
        changes = self.detector.evaluate(self.clock() if now is None else now)
        for c in changes:
            if self.metrics is not None:
                g = self.metrics.anomaly_flags.labels(room=c.room, sku=c.sku, kind=c.kind)
                if isinstance(c, AnomalyRaised):
                    g.set(1)
                    self.metrics.anomalies_raised.labels(kind=c.kind).inc()
                else:
                    g.set(0)
            self.events.publish(c)
        return changes

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.tick()
            except Exception:
                log.exception("anomaly tick failed")

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
