"""What a load client of ``benchmarks/media.py`` makes of a received stream: frames from RTP
headers, and latency by matching RTP timestamps to send times.

Kept apart from the client process so that the logic can be tested without a gateway
(``tests/unit/test_media_bench.py``): a benchmark whose frame counting were wrong would
flatter or blame the gateway.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field

TOLERANCE = 2  # ticks: a decode + re-encode may round a timestamp by one
VP8_START = 0x10  # the VP8 payload descriptor's S bit (start of a partition)
VP8_PID = 0x07  # … and its partition index (0: the frame's first partition)


@dataclass
class Rx:
    """One received stream at the RTP level: ``(timestamp relative to the first frame's,
    arrival)`` per complete frame (video) or per packet (audio).

    A video frame is complete when its marker packet arrives and every packet since the
    one opening it (S bit, partition 0) arrived, in sequence order, with its timestamp: no
    depacketizing, no jitter buffer (a frame needing reordering or a retransmission counts
    as lost, which only makes the figures stricter)."""

    kind: str
    frames: list[tuple[int, float]] = field(default_factory=list)
    first_ts: int | None = None
    first_at: float = 0.0
    _ts: int | None = None  # the frame being received
    _next: int = -1  # the sequence number its next packet must have (-1: frame broken)

    def on_packet(self, packet) -> None:
        self.on_header(packet.timestamp, packet.sequence_number, packet.marker,
                       packet.payload[0] if packet.payload else 0, time.monotonic())

    def on_header(self, ts: int, seq: int, marker: bool, first_byte: int, now: float) -> None:
        if self.kind != "video":
            self._frame(ts, now)
            return
        if ts != self._ts:  # a new frame: it must open with its first partition's start
            self._ts = ts
            ok = first_byte & VP8_START and not first_byte & VP8_PID
            self._next = (seq + 1) & 0xFFFF if ok else -1
        elif self._next == seq:
            self._next = (seq + 1) & 0xFFFF
        else:
            self._next = -1  # a gap or reordering: this frame is not complete in order
        if marker and self._next != -1:
            self._next = -1  # counted once
            self._frame(ts, now)

    def _frame(self, ts: int, now: float) -> None:
        if self.first_ts is None:
            self.first_ts, self.first_at = ts, now
        self.frames.append(((ts - self.first_ts) & 0xFFFFFFFF, now))

    def count_between(self, t0: float, t1: float) -> int:
        return sum(1 for _, t in self.frames if t0 <= t <= t1)


def _nearest(sent_sorted: list[int], x: int) -> int | None:
    i = bisect.bisect_left(sent_sorted, x - TOLERANCE)
    if i < len(sent_sorted) and sent_sorted[i] <= x + TOLERANCE:
        return sent_sorted[i]
    return None


def match_offset(rx: Rx, sent_sorted: list[int]) -> int | None:
    """The constant C with received ts = sent ts + C (± rounding): the gateway keeps
    timestamps up to an offset, and the jitter added at the sender makes C unique."""
    head = [p for p, _ in rx.frames[:12]]
    if len(head) < 3 or not sent_sorted:
        return None
    best, best_n = None, 0
    for s in sent_sorted:
        c = head[0] - s
        n = sum(1 for p in head if _nearest(sent_sorted, p - c) is not None)
        if n > best_n:
            best, best_n = c, n
    return best if best_n >= len(head) - 1 else None


def stream_figures(rx: Rx, sent: dict[int, float], t0: float, t1: float) -> dict | None:
    """Latencies (ms) of the frames sent in [t0, t1], frames due (sent by t1 − 0.5 s) and
    lost among them, and frames per second received in the window; None when the
    timestamps cannot be matched."""
    sent_sorted = sorted(sent)
    c = match_offset(rx, sent_sorted)
    if c is None:
        return None
    got: dict[int, float] = {}
    for ts, t in rx.frames:
        s = _nearest(sent_sorted, ts - c)
        if s is not None:
            got.setdefault(s, t)
    lat = [(got[s] - sent[s]) * 1000 for s in got if t0 <= sent[s] <= t1]
    due = [s for s, ts in sent.items() if t0 <= ts <= t1 - 0.5]
    lost = sum(1 for s in due if s not in got)
    fps = sum(1 for _, t in rx.frames if t0 <= t <= t1) / (t1 - t0)
    return {"lat": lat, "due": len(due), "lost": lost, "fps": fps}
