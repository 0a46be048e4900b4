"""Encoded frames from RTP packets, for the one case that needs frames: a decoder.

Passthrough forwarding never looks at frames; but a destination that cannot receive the
source's codec gets a decoded copy (the per-pair fallback), and a decoder takes whole
frames. :class:`FrameAssembler` rebuilds them from the packets aiortc's receiver has
already handled (RTX unwrapped, NACKs sent, payload depacketized) and releases each one
the moment its last packet arrives, instead of holding it in aiortc's jitter buffer until
the next frame starts. Video starts, and restarts after a hole NACK could not fill, at a
key frame, and asks for one (a PLI upstream) when it has to wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from . import codecs


@dataclass(slots=True)
class _Pkt:
    ts: int
    marker: bool
    data: bytes
    start: bool | None  # codec says "first packet of a frame" (None: cannot tell)


Emit = Callable[[bytes, int, bool, int], None]  # (data, pts, keyframe, payload type)


class FrameAssembler:
    """Reassembles depacketized RTP into frames and releases each as soon as it is complete.

    ``add`` takes what aiortc's receiver has already done (RTX unwrapped, NACKs sent,
    payload depacketized) and calls ``emit(data, pts, keyframe, payload_type)`` for every
    frame completed by that packet (a retransmission can complete several). It returns
    ``True`` when the caller should send a PLI upstream (a hole that NACK did not fill).
    """

    def __init__(self, kind: str, emit: Emit, mime_of: Callable[[int], str | None],
                 max_wait_s: float = 0.15, capacity: int = 1024,
                 clock: Callable[[], float] = time.monotonic):
        self.kind = kind
        self.video = kind == "video"
        self.emit = emit
        self.mime_of = mime_of
        self.max_wait_s = max_wait_s
        self.capacity = capacity
        self.clock = clock
        self.ssrc: int | None = None  # media SSRC (after RTX unwrap): where PLIs go
        self.frames = 0
        self.dropped = 0  # complete frames not released (waiting for a keyframe)
        self.gaps = 0  # holes given up on
        self._pkts: dict[int, _Pkt] = {}
        self._high: int | None = None  # highest extended sequence number seen
        self._next: int | None = None  # extended seq of the next frame's first packet
        self._need_key = self.video
        self._gap_since: float | None = None
        self._last_pli = -1e9
        self._ts_ext: int | None = None
        self._ts_origin = 0  # set with the first _ts_ext
        self._mimes: dict[int, str] = {}  # payload type → lower-case MIME (once known)

    # sequence numbers and timestamps, unwrapped
    def _ext_seq(self, seq: int) -> int:
        if self._high is None:
            self._high = seq
            return seq
        d = (seq - self._high) & 0xFFFF
        if d >= 0x8000:
            d -= 0x10000
        ext = self._high + d
        if ext > self._high:
            self._high = ext
        return ext

    def _pts(self, ts: int) -> int:
        if self._ts_ext is None:
            self._ts_ext = self._ts_origin = ts
        else:
            d = (ts - self._ts_ext) & 0xFFFFFFFF
            if d >= 0x80000000:
                d -= 0x100000000
            self._ts_ext += d
        return self._ts_ext - self._ts_origin

    def add(self, seq: int, ts: int, marker: bool, ssrc: int, pt: int, data: bytes,
            payload: bytes) -> bool:
        self.ssrc = ssrc
        ext = self._ext_seq(seq)
        if not self.video:
            if self._next is not None and ext < self._next:
                return False  # late or duplicate
            self._next = ext + 1
            self.frames += 1
            self.emit(data, self._pts(ts), True, pt)
            return False
        if (self._next is not None and ext < self._next) or ext in self._pkts:
            return False  # already released / given up on, or a duplicate
        mime = self._mimes.get(pt)
        if mime is None:
            mime = (self.mime_of(pt) or "").lower()
            if mime:  # a receiver's codecs are fixed once it runs: cache what is known
                self._mimes[pt] = mime
        start = codecs.starts_frame(mime, payload)
        self._pkts[ext] = _Pkt(ts, bool(marker), data, start)
        return self._drain(pt, mime)

    def _starts(self, ext: int) -> bool:
        p = self._pkts[ext]
        prev = self._pkts.get(ext - 1)
        if prev is not None:
            return prev.marker or prev.ts != p.ts
        return bool(p.start)

    def _frame_at(self, first: int) -> int | None:
        """Last extended seq of the complete frame starting at ``first``, else None.

        Complete: a contiguous run up to the marker bit, or up to a packet of the next
        timestamp (a sender that does not set the marker)."""
        p = self._pkts.get(first)
        if p is None:
            return None
        ext = first
        while not p.marker:
            nxt = self._pkts.get(ext + 1)
            if nxt is None:
                return None
            if nxt.ts != p.ts:
                return ext
            ext += 1
            p = nxt
        return ext

    def _has_hole(self, first: int) -> bool:
        """Is a packet missing at or after ``first`` while newer packets are here?"""
        high = self._high
        assert high is not None  # add() has extended a sequence number
        e = first
        while e in self._pkts:
            e += 1
        return e < high

    def _release(self, first: int, last: int, pt: int, mime: str) -> bool:
        ts = self._pkts[first].ts
        data = b"".join([self._pkts.pop(e).data for e in range(first, last + 1)])
        self._next = last + 1
        key = codecs.is_keyframe(mime, data)
        if self._need_key and not key:
            self.dropped += 1
            return False
        self._need_key = False
        self.frames += 1
        self.emit(data, self._pts(ts), key, pt)
        return True

    def _drain(self, pt: int, mime: str) -> bool:
        pli = False
        while self._pkts:
            if self._next is None:  # resynchronising: find a packet that starts a frame
                first = next((e for e in sorted(self._pkts) if self._starts(e)), None)
                if first is None:
                    break
                for e in [e for e in self._pkts if e < first]:
                    del self._pkts[e]
                self._next = first
            first = self._next
            last = self._frame_at(first)
            if last is not None:
                self._release(first, last, pt, mime)
                self._gap_since = None
                continue
            if self._has_hole(first):  # not just in flight: something is missing
                now = self.clock()
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since > self.max_wait_s or len(self._pkts) > self.capacity:
                    self._give_up(first)
                    pli = True
                    continue
            break
        now = self.clock()
        if self._need_key and (pli or (self.dropped and now - self._last_pli > 0.5)):
            self._last_pli = now
            return True
        return False

    def _give_up(self, first: int) -> None:
        """Skip the hole: drop the partial frame before it, resynchronise after it."""
        self.gaps += 1
        self._need_key = True
        self._gap_since = None
        hole = first
        while hole in self._pkts:
            hole += 1
        for e in [e for e in self._pkts if e < hole]:
            del self._pkts[e]
        self._next = None
