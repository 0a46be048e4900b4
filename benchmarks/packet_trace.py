"""Per-packet timelines of a call's video on an impaired link, for
``benchmarks/impaired.py --trace``: why did the agent's picture freeze?

A freeze (the agent renders no frame for > ~150 ms over its frame interval) has a cause
somewhere along viewer → relay → gateway → agent. This records, in wall-clock milliseconds
(one clock: same machine), what each hop saw of the video:

* the impairment relay: every RTP/RTCP datagram it passed or dropped, by direction, with
  the cleartext RTP header fields (SRTP leaves the header in the clear; RTCP only its
  first packet type) — :func:`datagram_fields`;
* the gateway (in-process, :func:`install_packet_trace`): every video packet its receiver
  tap got (RTX unwrapped: ``rtx`` marks a retransmission), every NACK it sent upstream,
  every NACK from a destination it answered from its history or could not (``miss``), the
  timestamp offset of each destination, and its event loop's lag (a 5 ms timer's lateness,
  when over 10 ms);
* the agent's page (:data:`FRAME_LOG_JS`): every rendered video frame
  (``requestVideoFrameCallback``: when presented, its RTP timestamp, when its last packet
  arrived).

:func:`freezes` finds the agent's render gaps and lines up, for the frame after each gap,
what happened to its packets on the way. Benchmark instrumentation only: nothing here is
imported by the gateway.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import time
import zlib

FREEZE_GAP_MS = 150.0  # a render gap this much over the frame interval is a freeze (WebRTC stats)


def datagram_fields(data: bytes) -> tuple | None:
    """(kind, payload type, seq, RTP timestamp, SSRC) of an RTP datagram, ("rtcp", packet
    type of its first packet, …) of an RTCP one; None for STUN and DTLS."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    pt = data[1]
    if 192 <= pt <= 223:  # RTCP (RFC 5761 demultiplexing)
        return ("rtcp", pt, 0, 0, int.from_bytes(data[4:8], "big"))
    return ("rtp", pt & 0x7F, int.from_bytes(data[2:4], "big"),
            int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big"))


def now_ms() -> float:
    return time.time() * 1000.0


class PacketTrace:
    """What the gateway saw; ``events`` are lists ``[what, wall ms, ...]``."""

    def __init__(self) -> None:
        self.events: list[list] = []
        self._lag_task: asyncio.Task | None = None

    def clear(self) -> None:
        self.events = []

    def start_lag_monitor(self) -> None:
        if self._lag_task is None:
            self._lag_task = asyncio.get_running_loop().create_task(self._lag())

    async def _lag(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.005)
            late = (time.monotonic() - t - 0.005) * 1000.0
            if late > 10.0:
                self.events.append(["lag", now_ms(), round(late, 1)])


def install_packet_trace() -> PacketTrace:
    """Wrap the receiver tap, the NACK sender and the RTP sink's retransmit to record."""
    from aiortc import RTCRtpReceiver

    from gateway.media import rtp_sink
    from gateway.media.compat import receiver_tap

    trace = PacketTrace()
    receive = receiver_tap.ReceiverTap.receive

    capture_to = os.environ.get("LIVEDESK_BENCH_CAPTURE")  # RED datagrams for a fixture
    captured: list[str] = []

    @functools.wraps(receive)
    def traced_receive(self, packet, arrival_ms):
        raw = getattr(packet, "_raw", None)
        if capture_to and self.kind == "video" and raw is not None and \
                self._role.get(packet.payload_type) == receiver_tap._RED and len(captured) < 800:
            captured.append(base64.b64encode(raw).decode())
            if len(captured) == 800:
                with open(capture_to, "w") as f:
                    json.dump({"mutable_ids": sorted(self._mutable_ids()),
                               "codecs": {pt: c.mimeType for pt, c in
                                          self.receiver.__dict__["_RTCRtpReceiver__codecs"].items()},
                               "packets": captured}, f)
        if self.kind == "video":
            rtx = (len(packet.payload) >= 2
                   and self._role.get(packet.payload_type) == receiver_tap._RTX)
            seq = (int.from_bytes(packet.payload[:2], "big") if rtx
                   else packet.sequence_number)
            # a retransmission's payload after its original seq (and RED byte, on a RED
            # stream) — compared with what parity rebuilt for the same seq (``fec``)
            crc = zlib.crc32(packet.payload[3:] if self._red else packet.payload[2:]) \
                if rtx else 0
            trace.events.append(["in", now_ms(), seq, packet.timestamp, int(packet.marker),
                                 int(rtx), len(packet.payload), crc])
        return receive(self, packet, arrival_ms)

    receiver_tap.ReceiverTap.receive = traced_receive  # type: ignore[method-assign]

    rebuilt = receiver_tap._RedStream.rebuilt

    @functools.wraps(rebuilt)
    def traced_rebuilt(self, got):
        out = rebuilt(self, got)
        for x, p in zip(got, out, strict=False):
            trace.events.append(["fec", now_ms(), x.seq & 0xFFFF, p.timestamp, int(p.marker),
                                 0, len(p.payload), zlib.crc32(p.payload)])
        return out

    receiver_tap._RedStream.rebuilt = traced_rebuilt  # type: ignore[method-assign]

    nack = RTCRtpReceiver._send_rtcp_nack

    @functools.wraps(nack)
    async def traced_nack(self, media_ssrc, lost):
        trace.events.append(["nack", now_ms(), list(lost)])
        return await nack(self, media_ssrc, lost)

    RTCRtpReceiver._send_rtcp_nack = traced_nack  # type: ignore[method-assign]

    retransmit = rtp_sink.RtpSink.retransmit

    @functools.wraps(retransmit)
    def traced_retransmit(self, seq):
        if self.video:
            entry = self._history[seq % rtp_sink.HISTORY]
            hit = entry is not None and entry[0] == seq
            trace.events.append(["agent_nack", now_ms(), seq, int(hit), self._seq_off])
        return retransmit(self, seq)

    rtp_sink.RtpSink.retransmit = traced_retransmit  # type: ignore[method-assign]

    forward = rtp_sink.RtpSink.forward

    @functools.wraps(forward)
    def traced_forward(self, ssrc, ext, ts, marker, payload, key, *a, **kw):
        known = self.started
        r = forward(self, ssrc, ext, ts, marker, payload, key, *a, **kw)
        if self.video and self.started and not known:
            trace.events.append(["offsets", now_ms(), self._seq_off, self._ts_off])
        return r

    rtp_sink.RtpSink.forward = traced_forward  # type: ignore[method-assign]
    return trace


# every frame the agent's page renders from a remote track: [wall ms presented, RTP
# timestamp, wall ms its last packet arrived]
FRAME_LOG_JS = r"""
() => {
  window.__frames = window.__frames || [];
  const origin = performance.timeOrigin;
  for (const v of document.querySelectorAll('video')) {
    if (v.__logged || !v.srcObject || !v.requestVideoFrameCallback) continue;
    v.__logged = true;
    const cb = (now, m) => {
      window.__frames.push([origin + now, m.rtpTimestamp ?? null,
                            m.receiveTime != null ? origin + m.receiveTime : null]);
      v.requestVideoFrameCallback(cb);
    };
    v.requestVideoFrameCallback(cb);
  }
  return document.querySelectorAll('video').length;
}
"""


def freezes(frames: list, relay: list, gateway: list | None, start_ms: float) -> list[dict]:
    """For each render gap at the agent over :data:`FREEZE_GAP_MS` + the median frame
    interval (after ``start_ms``): the frame after it and what its packets went through.

    ``relay``: ``[wall, dir, dropped, kind, pt, seq, ts, ssrc]``; ``gateway``: the
    :class:`PacketTrace` events (None on the direct path, where the agent's RTP timestamps
    are the viewer's)."""
    # remote frames only (a local preview has no RTP timestamp)
    frames = [f for f in frames if f[0] >= start_ms and f[1] is not None]
    if len(frames) < 3:
        return []
    gaps = sorted(b[0] - a[0] for a, b in zip(frames, frames[1:], strict=False))
    interval = gaps[len(gaps) // 2]
    ts_off = 0
    if gateway:
        offs = [e for e in gateway if e[0] == "offsets"]
        if offs:
            ts_off = offs[-1][3]
    out = []
    for a, b in zip(frames, frames[1:], strict=False):
        gap = b[0] - a[0]
        if gap < interval + FREEZE_GAP_MS or b[1] is None:
            continue
        src_ts = (b[1] - ts_off) & 0xFFFFFFFF  # the viewer's RTP timestamp of that frame
        prev_ts = ((a[1] - ts_off) & 0xFFFFFFFF) if a[1] is not None else None
        window = (a[0] - 1000, b[0] + 200)
        item: dict = {"gap_ms": round(gap, 1), "at": round(a[0] - start_ms),
                      "frame_received_late_ms": round(b[2] - a[0], 1) if b[2] else None}
        want = {src_ts} | ({prev_ts} if prev_ts is not None else set())
        item["relay"] = [[round(e[0] - a[0]), e[1], "DROP" if e[2] else "pass", e[3], e[4],
                          e[5], e[6]] for e in relay
                         if window[0] <= e[0] <= window[1]
                         and (e[3] == "rtcp" or e[6] in want or e[2])]
        if gateway is not None:
            item["gateway"] = [[e[0], round(e[1] - a[0])] + e[2:] for e in gateway
                               if e[0] != "offsets" and window[0] <= e[1] <= window[1]
                               and (e[0] != "in" or e[3] in want or e[5])]
        out.append(item)
    return out
