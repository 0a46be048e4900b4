"""RED and ULPFEC on the gateway's receive side: losses repaired without a round trip.

Why: a browser calling a browser directly negotiates RED (RFC 2198) with ULPFEC (RFC 5109)
for video, and on a lossy link libwebrtc's sender then adds parity packets (more of them
the higher the loss and the round trip). Most lost packets are rebuilt by the receiver
from a parity packet a few milliseconds later; only the rest wait a round trip for a NACK
and its retransmission, and when that retransmission is lost too the picture freezes
(measured, benchmarks/impaired.py --trace: every freeze through the gateway at 2 % loss
and 100 ms was a lost retransmission, while the direct call recovered most losses with no
retransmission at all). So the gateway accepts RED/ULPFEC from its senders
(:mod:`.compat.red_fec`) and repairs here, before forwarding; its destinations get plain
media (docs/media.md, "Forward error correction").

Three pieces, pure bookkeeping (bytes in, bytes out; the receiver tap feeds them):

* :func:`unred` splits a RED packet into its one block (libwebrtc never sends more);
* :class:`FecDecoder` keeps the recent media packets of one stream (as ULPFEC protects
  them: the whole packet after the fixed header, the RED byte removed, the media payload
  type in the header, mutable header extensions zeroed) and the parity packets that still
  miss one, and rebuilds a packet when exactly one of those a parity packet protects is
  missing (again after each rebuild: one repair can enable another);
* :class:`SeqCompactor` renumbers what is forwarded so the parity packets leave no gaps
  at the destinations (which would NACK them in vain and count them lost): a parity
  packet is skipped in the numbering when it arrives ahead of the media sent so far;
  one that comes later (reordered) or never (lost) leaves a one-number gap, as a lost
  media packet does.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

MEDIA_WINDOW = 192  # media packets kept for repairs (libwebrtc: 4 × 48 tracked)
PRUNE_SLACK = 64  # ...forgotten in batches this large
FEC_WINDOW = 48  # parity packets kept while they miss something (libwebrtc: 48)
FEC_HEADER = 10  # ULPFEC header: E L P X CC | M PT | SN base | TS | length recovery
MAX_PACKET = 1500  # a rebuilt packet longer than this is refused (corrupt parity)


def unred(payload: bytes) -> tuple[int, bytes] | None:
    """(block payload type, block) of a RED payload with a single (primary) block; None
    for an empty or multi-block one (libwebrtc drops those too)."""
    if not payload or payload[0] & 0x80:
        return None
    return payload[0] & 0x7F, payload[1:]


def extend(seq: int, high: int | None) -> int:
    """``seq`` (16 bits) extended next to ``high`` (the highest extended seq so far)."""
    if high is None:
        return seq
    d = (seq - high) & 0xFFFF
    return high + (d - 0x10000 if d >= 0x8000 else d)


def zero_extensions(head: bytes, cc: int, ids: frozenset[int]) -> bytes:
    """``head`` (the bytes after the fixed RTP header of a packet with ``cc`` CSRCs and an
    extension block, as received) with the values of the extensions ``ids`` zeroed: those
    a sender writes after FEC is computed (abs-send-time, transport sequence number,
    transmission offset), so parity never covers them (libwebrtc's
    ``ZeroMutableExtensions``)."""
    start = 4 * cc
    if not ids or len(head) < start + 4:
        return head
    out = bytearray(head)
    profile = int.from_bytes(head[start:start + 2], "big")
    words = int.from_bytes(head[start + 2:start + 4], "big")
    pos, end = start + 4, min(len(head), start + 4 + 4 * words)
    one = profile == 0xBEDE
    if not one and profile >> 4 != 0x100:
        return head
    while pos < end:
        x = head[pos]
        if x == 0:
            pos += 1
            continue
        if one:
            xid, ln = x >> 4, (x & 0x0F) + 1
            if xid == 15:
                break
            pos += 1
        else:
            if pos + 1 >= end:
                break
            xid, ln = x, head[pos + 1]
            pos += 2
        if pos + ln > end:
            break
        if xid in ids:
            out[pos:pos + ln] = bytes(ln)
        pos += ln
    return bytes(out)


@dataclass(slots=True)
class _Media:
    b0: int  # V P X CC (as protected: padding bit as sent)
    b1: int  # M and the media payload type
    ts: int
    body: bytes  # everything after the fixed header (CSRCs, extensions, payload, padding)


@dataclass(slots=True)
class _Parity:
    seq: int  # extended
    protected: tuple[int, ...]  # extended seqs of the media packets it covers
    header: bytes  # the 10-byte ULPFEC header
    payload: bytes  # the level-0 payload (protection length bytes)


@dataclass(slots=True)
class Rebuilt:
    """A media packet rebuilt from parity: the RTP packet's bytes (mutable extensions
    zeroed), and its extended sequence number."""

    seq: int
    data: bytes


class FecDecoder:
    """ULPFEC repairs for one RED stream (one SSRC)."""

    __slots__ = ("ssrc", "high", "_media", "_have", "_parity", "recovered", "refused")

    def __init__(self, ssrc: int) -> None:
        self.ssrc = ssrc
        self.high: int | None = None  # highest extended seq seen (media or parity)
        self._media: dict[int, _Media] = {}  # extended seq → as protected
        self._have: set[int] = set()  # arrived one way or another (some without bytes)
        self._parity: list[_Parity] = []
        self.recovered = 0
        self.refused = 0  # parity packets that could not be read or gave a bad length

    def ext(self, seq: int) -> int:
        e = extend(seq, self.high)
        if self.high is None or e > self.high:
            self.high = e
            self._prune(e)
        return e

    def _prune(self, high: int) -> None:
        """Forget what is older than :data:`MEDIA_WINDOW` behind ``high``, in batches of
        :data:`PRUNE_SLACK` (a stream holds at most ~256 packets, ~300 KB at 1.2 KB each)."""
        floor = high - MEDIA_WINDOW
        if len(self._have) > MEDIA_WINDOW + PRUNE_SLACK or \
                len(self._media) > MEDIA_WINDOW + PRUNE_SLACK:  # together: one floor
            self._have = {s for s in self._have if s >= floor}
            self._media = {s: m for s, m in self._media.items() if s >= floor}
        if self._parity and self._parity[0].seq < floor:
            self._parity = [p for p in self._parity if p.seq >= floor]

    def seen(self, seq: int) -> bool:
        return seq in self._have

    def media(self, seq: int, b0: int, b1: int, ts: int,
              body: bytes | None) -> list[Rebuilt] | None:
        """A media packet arrived (extended ``seq``); ``body`` None: arrived but its bytes
        as protected are unknown (a retransmission), so it cannot help a repair. None: a
        duplicate (here already, e.g. rebuilt before its retransmission came): drop it."""
        if seq in self._have:
            return None
        self._have.add(seq)
        if body is not None:
            self._media[seq] = _Media(b0, b1, ts, body)
        return self._repair() if self._parity else []

    def parity(self, seq: int, data: bytes) -> list[Rebuilt]:
        """A ULPFEC packet (the RED block) arrived, extended ``seq``."""
        if seq in self._have:
            return []
        self._have.add(seq)
        if len(data) < FEC_HEADER + 4:
            self.refused += 1
            return []
        long_mask = bool(data[0] & 0x40)
        mask_len = 6 if long_mask else 2
        start = FEC_HEADER + 2 + mask_len
        if len(data) < start:
            self.refused += 1
            return []
        protection = int.from_bytes(data[10:12], "big")
        base = extend(int.from_bytes(data[2:4], "big"), seq)
        mask = int.from_bytes(data[12:12 + mask_len], "big")
        bits = mask_len * 8
        protected = tuple(base + i for i in range(bits) if mask >> (bits - 1 - i) & 1)
        # parity follows what it protects (libwebrtc: right after the frame); anything
        # else is corrupt or hostile (a "rebuilt" packet far ahead would jump the stream)
        if not protected or protection > len(data) - start or protected[-1] >= seq or \
                protected[0] < seq - MEDIA_WINDOW:
            self.refused += 1
            return []
        p = _Parity(seq, protected, bytes(data[:FEC_HEADER]),
                    bytes(data[start:start + protection]))
        if len(self._parity) >= FEC_WINDOW:
            self._parity.pop(0)
        self._parity.append(p)
        return self._repair()

    def _repair(self) -> list[Rebuilt]:
        out: list[Rebuilt] = []
        progress = True
        while progress:
            progress = False
            keep: list[_Parity] = []
            for p in self._parity:
                missing = [s for s in p.protected if s not in self._have]
                if not missing:
                    continue  # nothing left for it to do
                if len(missing) > 1 or any(s not in self._media for s in p.protected
                                           if s != missing[0]):
                    keep.append(p)  # may become useful when more arrive
                    continue
                r = self._rebuild(p, missing[0])
                if r is not None:
                    out.append(r)
                    progress = True
            self._parity = keep
        return out

    def discard(self, seq: int) -> None:
        """A rebuilt packet the caller refused (not a media packet it can forward): as if
        never rebuilt, so its retransmission is still taken and it feeds no repair."""
        self._have.discard(seq)
        self._media.pop(seq, None)
        self.recovered -= 1
        self.refused += 1

    def _rebuild(self, p: _Parity, seq: int) -> Rebuilt | None:
        h = p.header
        b0, b1 = h[0], h[1]
        ts = int.from_bytes(h[4:8], "big")
        length = int.from_bytes(h[8:10], "big")
        payload = p.payload
        n = len(payload)
        acc = int.from_bytes(payload, "big")
        for s in p.protected:
            if s == seq:
                continue
            m = self._media[s]
            b0 ^= m.b0
            b1 ^= m.b1
            ts ^= m.ts
            length ^= len(m.body)
            acc ^= int.from_bytes(m.body[:n].ljust(n, b"\0"), "big")
        if length > n or length + 12 > MAX_PACKET:
            self.refused += 1
            return None
        body = acc.to_bytes(n, "big")[:length]
        head = bytes([0x80 | (b0 & 0x3F), b1]) + (seq & 0xFFFF).to_bytes(2, "big") + \
            ts.to_bytes(4, "big") + self.ssrc.to_bytes(4, "big")
        self._have.add(seq)
        self._media[seq] = _Media(0x80 | (b0 & 0x3F), b1, ts, body)
        self.recovered += 1
        return Rebuilt(seq, head + body)


class SeqCompactor:
    """Sequence numbers for the destinations of a RED stream, without the parity packets.

    A parity packet newer than every media packet forwarded so far is skipped in the
    numbering; a media packet's number is its own minus the parity packets skipped before
    it, so a repaired or retransmitted packet lands exactly in the hole it left. A parity
    packet that arrives late or never is not skipped: a one-number gap, as a lost packet."""

    __slots__ = ("high_media", "_skipped", "_dropped", "_floor")

    KEEP = 512  # skipped numbers remembered; older ones are folded into a count

    def __init__(self) -> None:
        self.high_media: int | None = None
        self._skipped: list[int] = []  # extended seqs of the skipped parity packets, sorted
        self._dropped = 0  # skipped numbers folded away...
        self._floor = -1  # ...all at or below this seq: a media packet there cannot be placed

    def parity(self, seq: int) -> None:
        if self.high_media is None or seq > self.high_media:
            i = bisect_left(self._skipped, seq)
            if i < len(self._skipped) and self._skipped[i] == seq:
                return  # a duplicate (the network's, or a hostile sender's): skipped once
            self._skipped.insert(i, seq)
            if len(self._skipped) > self.KEEP:
                half = self.KEEP // 2
                self._dropped += half
                self._floor = self._skipped[half - 1]
                del self._skipped[:half]

    def media(self, seq: int) -> int | None:
        """The number to forward media packet ``seq`` (extended) with; None if it is older
        than what is remembered (too late to place)."""
        if seq <= self._floor:
            return None
        if self.high_media is None or seq > self.high_media:
            self.high_media = seq
        return seq - self._dropped - bisect_left(self._skipped, seq)
