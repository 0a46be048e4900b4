"""Encoded passthrough forwarding at the RTP level (``media_mode=passthrough``):
each packet a participant sends goes out to the others as it arrived, header rewritten,
payload untouched; never decoded, re-encoded or re-packetized.

:class:`PassthroughForwarder` is the :class:`~gateway.media.forward.seam.Forwarder` that
wires the pieces together, one :class:`Source` per received track:

* the source's receiver is tapped (:mod:`gateway.media.compat.receiver_tap`) and its
  packets arrive through the fast receive path; each goes at once to every destination's
  :class:`~gateway.media.rtp_sink.RtpSink` (header rewritten per destination, written to
  that destination's transport), whose ``RTCRtpSender`` holds an
  :class:`~gateway.media.tracks.RtpTrack` that never yields and only runs RTCP;
* keyframe requests go upstream through a
  :class:`~gateway.media.keyframes.KeyframeRequester` (≤ one PLI per
  ``keyframe_interval_s`` per source; a request inside the interval is sent when it ends,
  never dropped); the REMB sent upstream is the gateway's own estimate lowered to the
  lowest one a destination reported, throttled;
* **per-pair fallback**: a destination that cannot receive the source's codec (it did not
  offer it, e.g. VP8 → an H.264-only client) gets a decoded copy: only then are the
  source's packets reassembled into frames (:class:`~gateway.media.assembler.FrameAssembler`,
  released at the marker bit), decoded once (in a worker thread,
  :class:`~gateway.media.tracks.DecodedTrack`) and re-encoded by that destination's sender,
  like ``RelayForwarder``. Only that pair pays for it.

Gaps (aiortc 1.16): no transport-cc (TWCC), no simulcast/SVC. See docs/media.md.
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import logging
import time
from dataclasses import dataclass, field

import av
from aiortc import MediaStreamTrack, RTCRtpCodecParameters, RTCRtpReceiver
from aiortc.contrib.media import MediaRelay
from aiortc.rtcpeerconnection import is_codec_compatible

from ..clock import ntp_now
from ..codecs import starts_keyframe
from ..compat.receiver_tap import ReceiverTap, receiver_tap, send_pli, tap_receiver
from ..compat.rtp_forwarding import on_remb
from ..keyframes import KEYFRAME_INTERVAL_S, KeyframeRequester
from ..rtp_sink import RtpSink
from ..tracks import DecodedTrack, Item, PacketTrack, RtpTrack
from .relay import drain, end_proxy
from .seam import Forwarder, FrameConsumer, SourceKey

log = logging.getLogger(__name__)

def _no_source() -> None:
    """A reserved sink's keyframe request before its source exists: nothing to ask."""


GOP_CACHE_S = 5.0  # a video source's first seconds: its key frame is kept for late starters
GOP_MAX_PACKETS = 300  # a longer GOP ends the caching (a joiner then asks for a key frame)
GOP_MAX_AGE_S = 1.0  # an older key frame is not replayed (it would show a stale picture)
REMB_INTERVAL_S = 0.5  # at most two bandwidth reports upstream per second, unless it drops


@dataclass
class Source:
    """One received track and everything forwarded from it: its tap, its destinations'
    sinks and tracks, the per-pair fallback's decoder, and the state read per packet."""

    key: SourceKey
    track: MediaStreamTrack
    receiver: RTCRtpReceiver | None
    codec: RTCRtpCodecParameters | None  # what the source sends with
    tap: ReceiverTap | None
    keyframes: KeyframeRequester
    sinks: dict[str, RtpSink] = field(default_factory=dict)  # passthrough destinations
    tracks: dict[str, RtpTrack] = field(default_factory=dict)  # their senders' tracks
    subs: dict[str, PacketTrack] = field(default_factory=dict)  # frame consumers (fallback)
    frame_taps: dict[str, FrameConsumer] = field(default_factory=dict)  # recorders
    decoded: dict[str, MediaStreamTrack] = field(default_factory=dict)  # fallback pairs
    relay_input: DecodedTrack | None = None
    drain: asyncio.Task | None = None
    pt_info: dict = field(default_factory=dict)  # payload type → (mime, time base)
    mimes: dict = field(default_factory=dict)  # payload type → lower-case MIME
    high: int | None = None  # highest extended sequence number received
    # packets since the last key frame (ssrc, ext seq, ts, marker, payload, abs-send-time),
    # kept until gop_until (monotonic; 0: not caching); gop_t: when that key frame came
    gop: list = field(default_factory=list)
    gop_until: float = 0.0
    gop_t: float = 0.0
    remb_sent: tuple = (-1e9, 0)  # (when, bit/s) of the last REMB sent upstream


class PassthroughForwarder(Forwarder):
    """Encoded forwarding; a pair whose codecs differ falls back to decode + encode."""

    mode = "passthrough"

    def __init__(self, keyframe_interval_s: float = KEYFRAME_INTERVAL_S,
                 playout_delay: bool = True, fec: bool = True):
        self._sources: dict[SourceKey, Source] = {}
        # ask a lossy source's destinations to buffer its round trip (docs/media.md)
        self.playout_delay = playout_delay
        # senders may protect video with RED/ULPFEC; the taps repair (docs/media.md)
        self.repairs_fec = fec
        # (owner, kind, destination) → the track of an m-line waiting for that source
        self._reserved: dict[tuple[str, str, str], RtpTrack] = {}
        self._relay = MediaRelay()
        self.keyframe_interval_s = keyframe_interval_s

    # receivers are tapped before they start (Peer.answer, before DTLS can connect)
    def prepare(self, receiver: RTCRtpReceiver, kind: str) -> None:
        tap_receiver(receiver, kind)  # the tap lives on the receiver itself

    def publish(self, key: SourceKey, track: MediaStreamTrack,
                receiver: RTCRtpReceiver | None = None, codec=None) -> None:
        if key in self._sources:
            self.unpublish(key)
        tap = None
        if receiver is not None:  # tapped by prepare(); tapping now works if not started yet
            tap = receiver_tap(receiver) or tap_receiver(receiver, key.kind)
        src: Source  # the requester's callback reads it once it is built
        keyframes = KeyframeRequester(lambda: self._send_pli(src), self.keyframe_interval_s)
        src = Source(key, track, receiver, codec, tap, keyframes)
        if tap is not None:
            tap.on_packet = functools.partial(self._on_packet, src)
            tap.on_end = lambda s=src: self._source_ended(s)
            if key.kind == "video":
                on_remb(receiver, functools.partial(self._upstream_remb, src))
                src.gop_until = time.monotonic() + GOP_CACHE_S
        self._sources[key] = src

    def _on_packet(self, src: Source, p) -> None:
        """A source packet: out to every passthrough destination, now."""
        sinks = src.sinks
        caching = src.gop_until > 0.0
        if not sinks and not caching:
            return
        seq = p.sequence_number  # extend it once for all destinations
        if src.high is None:
            ext = src.high = seq
        else:
            d = (seq - src.high) & 0xFFFF
            ext = src.high + (d - 0x10000 if d >= 0x8000 else d)
            if ext > src.high:
                src.high = ext
        key = None
        level = None
        ast = p.extensions.abs_send_time  # passed on: end-to-end delay for the receivers
        ssrc, ts, marker, payload = p.ssrc, p.timestamp, p.marker, p.payload
        if src.key.kind == "video":
            if caching or any(not sink.started for sink in sinks.values()):
                mime = src.mimes.get(p.payload_type)
                if mime is None:
                    tap = src.tap
                    assert tap is not None  # packets come from the tap
                    mime = src.mimes[p.payload_type] = (
                        tap.mime_of(p.payload_type) or "").lower()
                key = starts_keyframe(mime, payload)
        else:
            level = p.extensions.audio_level
        ntp = ntp_now()
        # a lossy source: its destinations wait a round trip for what the gateway recovers
        playout = (src.tap.nack_retries.playout_ms
                   if self.playout_delay and src.tap is not None else 0)
        for sink in sinks.values():
            if sink.playout_ms != playout:
                sink.set_playout_delay(playout)
            if not sink.started and src.gop and sink.write is not None and not key:
                self._replay(src, sink, ntp)  # (the cache does not hold this packet yet)
            sink.forward(ssrc, ext, ts, marker, payload, key, level, ntp, ast)
        if caching and src.key.kind == "video":
            self._cache(src, key, (ssrc, ext, ts, marker, payload, ast))

    # --- the first key frame, kept for a destination that starts after it went by -----------
    @staticmethod
    def _cache(src: Source, key: bool | None, packet: tuple) -> None:
        """Keep the packets since the source's last key frame, during its first
        ``GOP_CACHE_S``: at call set-up the source's first key frame usually reaches the
        gateway before the other side's connection is up, and without it that side waits
        for a PLI and a new key frame (a round trip plus an encode: 50–170 ms measured,
        benchmarks/call_setup.py --trace)."""
        now = time.monotonic()
        if now > src.gop_until or (src.gop and len(src.gop) >= GOP_MAX_PACKETS):
            src.gop_until = 0.0  # the window is over (or the GOP too long): stop caching
            src.gop = []
            return
        if key:
            src.gop = [packet]
            src.gop_t = now
        elif src.gop:
            src.gop.append(packet)

    @staticmethod
    def _replay(src: Source, sink: RtpSink, ntp: int) -> None:
        """Start ``sink`` on the cached key frame (if it is fresh) and what followed it."""
        if time.monotonic() - src.gop_t > GOP_MAX_AGE_S:
            return  # too old to show: the sink waits for the key frame it asked for
        for i, (ssrc, ext, ts, marker, payload, ast) in enumerate(src.gop):
            sink.forward(ssrc, ext, ts, marker, payload, i == 0, None, ntp, ast)

    def _upstream_remb(self, src: Source, bitrate: int, ssrcs) -> int | None:
        """The REMB the gateway sends the source: the lowest estimate any destination
        reported for its copy; nothing until one has.

        The gateway's own estimate (aiortc's, ``bitrate``) only paces these reports and is
        not used as a value: arrival times taken on a Python event loop carry the loop's
        scheduling jitter, which its delay-based detector reads as over-use (measured: the
        REMB fell to ~45 kbit/s at 2 % loss, 4 fps against 10 direct; benchmarks/impaired.py).
        The destinations' estimators see the whole path from the source, because each
        packet keeps the source's abs-send-time (:meth:`RtpSink.forward`).

        Throttled like a browser's (at most one per ``REMB_INTERVAL_S`` unless the estimate
        fell by more than 3 %): aiortc's estimator asks for one on *every* packet while it
        sees over-use, which on a busy gateway was hundreds of RTCP packets a second."""
        reported = [s.remb for s in src.sinks.values() if s.remb]
        if not reported:
            return None
        value = min(reported)
        now = time.monotonic()
        last_t, last = src.remb_sent
        if now - last_t < REMB_INTERVAL_S and value >= last * 0.97:
            return None
        src.remb_sent = (now, value)
        return value

    def _send_pli(self, src: Source) -> bool:
        if src.key.kind != "video" or src.tap is None or src.receiver is None:
            return False
        return send_pli(src.receiver, src.tap)

    def _fan_out(self, src: Source, data: bytes, pts: int, key: bool, pt: int) -> None:
        info = src.pt_info.get(pt)
        if info is None:  # once per payload type: no per-frame codec lookups or Fractions
            tap = src.tap
            assert tap is not None  # frames come from the tap
            rate = tap.clock_rate(pt)
            info = ((tap.mime_of(pt) or "").lower(), fractions.Fraction(1, rate or 90000))
            if rate:
                src.pt_info[pt] = info
        if src.frame_taps:  # recorders: the bytes as they are, no av.Packet
            now = time.monotonic()
            for consume in src.frame_taps.values():
                consume(data, pts, key, info[0], info[1], now)
        if not src.subs:
            return  # nobody decodes it (yet): no packet to build
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = info[1]
        item = Item(packet, key, info[0], time.monotonic())
        for sub in src.subs.values():
            sub.push(item)

    def _source_ended(self, src: Source) -> None:
        for track in list(src.tracks.values()):
            track.end()
        for sub in list(src.subs.values()):
            sub.end()

    def unpublish(self, key: SourceKey) -> None:
        src = self._sources.pop(key, None)
        if src is None:
            return
        src.keyframes.close()
        for dest in list(src.decoded):
            self._end_decoded(src, dest)
        for track in src.tracks.values():
            track.end()
        src.tracks.clear()
        src.sinks.clear()
        for sub in src.subs.values():
            sub.end()
        src.subs.clear()
        src.frame_taps.clear()
        if src.tap is not None:
            src.tap.sink = None
            src.tap.on_packet = None
        if src.relay_input is not None:
            src.relay_input.stop()
            src.relay_input = None
        if src.drain is not None:
            src.drain.cancel()

    def _can_pass(self, src: Source, accepts) -> bool:
        if src.codec is None or accepts is None:
            return True  # nothing known to compare: assume the offer restricts it
        return any(is_codec_compatible(src.codec, c) for c in accepts)

    def subscribe(self, key: SourceKey, dest: str, accepts=None) -> MediaStreamTrack:
        src = self._sources[key]
        if dest in src.sinks or dest in src.decoded:
            raise ValueError(f"{dest} already subscribes to {key}")
        mime = src.codec.mimeType if src.codec is not None else None
        if self._can_pass(src, accepts):
            sink = RtpSink(key.kind, mime, src.keyframes.request)
            track = RtpTrack(key.kind, sink)
            src.sinks[dest] = sink  # writes once bind() gives it the sender and it starts
            src.tracks[dest] = track
            return track
        # per-pair fallback: decode this source once, re-encode per such destination
        if src.relay_input is None:
            inner = PacketTrack(key.kind, src.keyframes.request, mime)
            src.subs["\0decode"] = inner
            if src.tap is not None:  # frames are assembled only while someone decodes them
                src.tap.sink = functools.partial(self._fan_out, src)
            src.relay_input = DecodedTrack(key.kind, inner, src.codec)
            decoded_sink = self._relay.subscribe(src.relay_input, buffered=False)
            src.drain = asyncio.get_running_loop().create_task(
                drain(decoded_sink), name=f"media-decode-{key.owner}-{key.kind}")
            src.decoded["\0drain"] = decoded_sink
        proxy = self._relay.subscribe(src.relay_input, buffered=False)
        src.decoded[dest] = proxy
        log.info("media: %s → %s %s: codec %s not accepted, transcoding this pair",
                 key.owner, dest, key.kind, src.codec.mimeType if src.codec else "?")
        return proxy

    # --- reservations (see Forwarder.reserve) ----------------------------------------------
    def reserve(self, owner: str, kind: str, dest: str) -> MediaStreamTrack | None:
        slot = (owner, kind, dest)
        if slot in self._reserved:
            return None
        sink = RtpSink(kind, None, _no_source)  # codec and keyframes: from its source
        track = RtpTrack(kind, sink)
        self._reserved[slot] = track
        return track

    def bind_reserved(self, owner: str, kind: str, dest: str, sender) -> None:
        track = self._reserved.get((owner, kind, dest))
        if track is not None:
            track.sink.attach(sender)

    def adopt(self, key: SourceKey, dest: str, accepts=None) -> bool:
        track = self._reserved.pop((key.owner, key.kind, dest), None)
        if track is None:
            return False
        src = self._sources.get(key)
        if src is None or dest in src.sinks or dest in src.decoded \
                or not self._can_pass(src, accepts):
            track.end()  # e.g. a codec the destination did not offer: the fallback instead
            return False
        track.sink.set_source(src.codec.mimeType if src.codec is not None else None,
                              src.keyframes.request)
        src.sinks[dest] = track.sink
        src.tracks[dest] = track
        return True

    def release(self, owner: str, kind: str, dest: str) -> None:
        track = self._reserved.pop((owner, kind, dest), None)
        if track is not None:
            track.end()

    def send_codec(self, key: SourceKey, dest: str):
        src = self._sources.get(key)
        if src is None or dest not in src.sinks:
            return None
        return src.codec

    def bind(self, key: SourceKey, dest: str, sender) -> None:
        src = self._sources.get(key)
        if src is not None and dest in src.sinks:
            # packets out through this sender; its PLI/FIR become a (rate-limited) PLI
            # upstream, its NACKs are answered from the sink's history, its REMB is relayed
            src.sinks[dest].attach(sender)

    def pair_mode(self, key: SourceKey, dest: str) -> str | None:
        src = self._sources.get(key)
        if src is None:
            return None
        if dest in src.sinks:
            return "passthrough"
        if dest in src.decoded:
            return "transcode"
        return None

    def unsubscribe(self, key: SourceKey, dest: str) -> None:
        src = self._sources.get(key)
        if src is None:
            return
        src.sinks.pop(dest, None)
        track = src.tracks.pop(dest, None)
        if track is not None:
            track.end()
        if dest in src.decoded:
            self._end_decoded(src, dest)

    def _end_decoded(self, src: Source, dest: str) -> None:
        proxy = src.decoded.pop(dest, None)
        if proxy is not None:
            end_proxy(proxy)

    def request_keyframe(self, key: SourceKey) -> None:
        src = self._sources.get(key)
        if src is not None:
            src.keyframes.request()

    def tap_frames(self, key: SourceKey, name: str, consume: FrameConsumer) -> None:
        """Frames are assembled from the tap's packets only while someone wants them (the
        per-pair decoder or a recorder): the plain forwarding path stays packet-only."""
        src = self._sources[key]
        src.frame_taps[name] = consume
        if src.tap is not None:
            src.tap.sink = functools.partial(self._fan_out, src)
        src.keyframes.request()  # a recording starts on a keyframe

    def untap_frames(self, key: SourceKey, name: str) -> None:
        src = self._sources.get(key)
        if src is None or src.frame_taps.pop(name, None) is None:
            return
        if not src.frame_taps and not src.subs and src.tap is not None:
            src.tap.sink = None

    def sources(self) -> list[SourceKey]:
        return list(self._sources)

    def source_stats(self, key: SourceKey) -> dict:
        src = self._sources[key]
        return {"pli_sent": src.keyframes.sent, "keyframe_requests": src.keyframes.requested,
                "packets": src.tap.packets if src.tap is not None else 0,
                "forwarded": {d: s.sent for d, s in src.sinks.items()},
                "retransmitted": {d: s.retransmitted for d, s in src.sinks.items()}}

    async def close(self) -> None:
        for key in list(self._sources):
            self.unpublish(key)
        for slot in list(self._reserved):
            self.release(*slot)

