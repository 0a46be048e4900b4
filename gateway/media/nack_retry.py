"""NACK retries on the gateway's receive side: a lost packet is asked for again until it comes.

aiortc's receiver NACKs a missing packet once, when it first sees the gap
(``NackGenerator.add``), and again only if a later loss happens to resend the whole list.
When that one NACK or its retransmission is lost as well (on a 2 % loss link about one lost
packet in 25), the gateway holds a hole until the next loss (~1 s at 2 % and 50 packets a
second), while the far side NACKs the gateway in vain (its history cannot have the packet)
and its picture waits. A browser receiving directly asks again every round trip
(libwebrtc's ``NackRequester``, up to 10 times) (docs/media.md, "NACK retries";
docs/performance.md, "Impairment").

:class:`NackRetries` does what libwebrtc does: every missing sequence number is NACKed
again once per round trip, at most :data:`MAX_RETRIES` times, then given up on (the far
side's key frame request is then the way out, as before). The round trip is measured from
the NACKs themselves — a packet's first NACK to its arrival, first attempts only (Karn: a
packet asked for twice says nothing about which answer came), smoothed — and starts at
:data:`DEFAULT_RTT_MS`, libwebrtc's value before it knows. It is checked on packet arrival,
not on a timer: a stream that stopped has nothing to recover, and a running one brings a
packet every ~20 ms, libwebrtc's own processing interval. Only a stream with packets
outstanding pays for it: a few dictionary entries looked at per packet until they come.

It also says how long a destination should be ready to wait for such a retransmission
(:attr:`NackRetries.playout_ms`): the destinations of a lossy source are told the source's
round trip (the playout-delay extension, :mod:`.compat.playout_delay`), which they cannot
measure behind the gateway. "Lossy" borrows the thresholds of libwebrtc's jitter estimator,
which adds the round trip to its buffer once a stream has needed :data:`LOSSES_FOR_DELAY`
NACKs and drops it after :data:`DELAY_HOLD_MS` without one.

Pure bookkeeping (no aiortc, no I/O): the receiver tap feeds it and sends the NACKs.
"""

from __future__ import annotations

DEFAULT_RTT_MS = 100.0  # libwebrtc's kDefaultRttMs: the retry interval before any sample
MIN_INTERVAL_MS = 20  # never re-ask more often than this (libwebrtc's process interval)
MAX_RETRIES = 10  # libwebrtc's kMaxNackRetries: asked this many times after the first, then given up
RTT_GAIN = 0.125  # weight of a new sample (RFC 6298's alpha)
LOSSES_FOR_DELAY = 3  # libwebrtc's nack limit: the round trip joins the jitter buffer after 3
DELAY_HOLD_MS = 60_000  # ... and leaves it after 60 s without a loss (kNackCountTimeout)


class NackRetries:
    """Per received stream: when each missing sequence number was asked for, how often,
    and the round trip those answers took."""

    __slots__ = ("rtt_ms", "asked", "retries", "given_up", "losses", "last_loss_ms",
                 "playout_ms")

    def __init__(self, rtt_ms: float = DEFAULT_RTT_MS) -> None:
        self.rtt_ms = rtt_ms
        # seq → [first asked (ms), last asked (ms), times asked]; empty on a clean stream,
        # so the per-packet cost there is one truth test
        self.asked: dict[int, list[int]] = {}
        self.retries = 0  # NACKs sent again (each sequence number counted)
        self.given_up = 0  # sequence numbers dropped after MAX_RETRIES
        self.losses = 0  # NACKs for new losses since the stream was last clean
        self.last_loss_ms = 0
        # the minimum playout delay the destinations are asked for (ms, 10 ms steps; 0: none)
        self.playout_ms = 0

    def sent(self, seqs: list[int], now_ms: int) -> None:
        """``seqs`` were just NACKed (aiortc's own NACK of the whole missing list: a new loss)."""
        if now_ms - self.last_loss_ms > DELAY_HOLD_MS:
            self.losses = 0  # the earlier losses are too old to count
        self.losses += 1
        self.last_loss_ms = now_ms
        if self.losses >= LOSSES_FOR_DELAY:
            self._set_playout()
        for seq in seqs:
            entry = self.asked.get(seq)
            if entry is None:
                self.asked[seq] = [now_ms, now_ms, 1]
            else:
                entry[1] = now_ms
                entry[2] += 1

    def arrived(self, seq: int, now_ms: int) -> None:
        """A packet came (RTX unwrapped): no longer asked for; a first answer is a sample."""
        entry = self.asked.pop(seq, None)
        if entry is not None and entry[2] == 1:
            sample = max(0, now_ms - entry[0])
            self.rtt_ms += RTT_GAIN * (sample - self.rtt_ms)
            if self.playout_ms:
                self._set_playout()

    def recovered(self, seq: int) -> None:
        """A packet rebuilt from parity (ULPFEC): no longer asked for, and no sample (the
        sender's answer, if it comes, is a duplicate)."""
        self.asked.pop(seq, None)

    def _set_playout(self) -> None:
        self.playout_ms = max(10, -int(-self.rtt_ms // 10) * 10)  # rounded up to 10 ms

    def expire(self, now_ms: int) -> None:
        """Called per packet while :attr:`playout_ms` is set: clean long enough, drop it."""
        if now_ms - self.last_loss_ms > DELAY_HOLD_MS:
            self.playout_ms = 0
            self.losses = 0

    def due(self, missing: set[int], now_ms: int) -> list[int]:
        """The sequence numbers to NACK again now (sorted), their retries counted. Those
        asked :data:`MAX_RETRIES` times already are given up: removed from ``missing``
        (aiortc's ``NackGenerator.missing``) so no later NACK carries them."""
        if not self.asked:
            return []
        interval = max(MIN_INTERVAL_MS, self.rtt_ms)
        again: list[int] = []
        for seq, entry in list(self.asked.items()):
            if seq not in missing:  # aiortc's window moved past it (truncate)
                del self.asked[seq]
            elif now_ms - entry[1] >= interval:
                if entry[2] > MAX_RETRIES:
                    del self.asked[seq]
                    missing.discard(seq)
                    self.given_up += 1
                else:
                    entry[1] = now_ms
                    entry[2] += 1
                    again.append(seq)
        self.retries += len(again)
        again.sort()
        return again
