"""Encoded passthrough forwarding at the RTP level (``media_mode=passthrough``):
each packet a participant sends goes out to the others as it arrived, header rewritten,
payload untouched; never decoded, re-encoded or re-packetized.

What this module owns (aiortc internals are reached only through ``aiortc_compat.py``):

* :class:`RtpSink` — one per source × destination: the destination's SSRC, payload type
  and extension ids, the source's sequence numbers and timestamps shifted by fixed offsets
  (so losses and reordering upstream reach the destination as they are, and its NACKs and
  PLIs mean what they say), a start at a key frame (:func:`starts_keyframe`), a history
  that answers NACKs (RTX), the destination's REMB. It writes to the destination's
  transport itself (``aiortc_compat.rtp_writer``); the destination's ``RTCRtpSender`` holds
  an :class:`RtpTrack` that never yields and only runs RTCP (sender reports, feedback in).
* :class:`PassthroughForwarder` — the :class:`~gateway.media.forwarder.Forwarder`: one
  *source* per received track (its receiver tapped by :func:`aiortc_compat.tap_receiver`,
  packets arriving through the fast receive path), the fan-out to its sinks, keyframe
  requests upstream through a :class:`KeyframeRequester` (≤ one PLI per
  ``keyframe_interval_s`` per source; a request inside the interval is sent when it ends,
  never dropped), the REMB sent upstream (the gateway's own estimate lowered to the
  lowest one a destination reported, throttled).
* **Per-pair fallback**: a destination that cannot receive the source's codec (it did not
  offer it, e.g. VP8 → an H.264-only client) gets a decoded copy: only then are the
  source's packets reassembled into frames (:class:`FrameAssembler`, released at the
  marker bit), decoded once (in a worker thread) and re-encoded by that destination's
  sender, like ``RelayForwarder``. Only that pair pays for it.

Gaps (aiortc 1.16): no transport-cc (TWCC), no simulcast/SVC. See docs/media.md.
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import logging
import random
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcpeerconnection import is_codec_compatible

from ..compat import receiver_tap as compat
from .seam import Forwarder, SourceKey, _end

log = logging.getLogger(__name__)

KEYFRAME_INTERVAL_S = 0.5  # at most one PLI upstream per source per interval
VIDEO_QUEUE = 15  # frames a subscription may hold (~0.5 s at 30 fps) before it resyncs
AUDIO_QUEUE = 25  # 20 ms packets (~0.5 s); the oldest are dropped
REMB_INTERVAL_S = 0.5  # at most two bandwidth reports upstream per second, unless it drops
FRESH_KEYFRAME_S = 0.2  # a queued keyframe older than this is not worth starting with


# --- keyframe detection ----------------------------------------------------------------------

def is_keyframe(mime: str, data: bytes) -> bool:
    """Does this complete encoded frame start a clean picture (needs no earlier frame)?"""
    mime = mime.lower()
    if mime == "video/vp8":
        return bool(data) and not (data[0] & 0x01)  # frame tag: P bit clear = key frame
    if mime == "video/h264":
        return h264_has_idr(data)
    return True  # audio: every packet stands alone


def h264_has_idr(data: bytes) -> bool:
    """An Annex-B access unit (aiortc's depayloader output) containing an IDR slice or SPS."""
    i, n = 0, len(data)
    while i < n:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= n:
            return False
        nal = data[j + 3] & 0x1F
        if nal in (5, 7):
            return True
        if nal == 1:  # a non-IDR slice: this is a delta frame
            return False
        i = j + 3
    return False


def vp8_starts_frame(payload: bytes) -> bool:
    """RTP VP8 payload descriptor: S=1 and PID=0 start partition 0, i.e. a new frame."""
    return bool(payload) and (payload[0] & 0x10) != 0 and (payload[0] & 0x07) == 0


def h264_starts_frame(payload: bytes) -> bool:
    """RTP H.264 payload that can only open an access unit: STAP-A (SPS/PPS), SPS or AUD."""
    return bool(payload) and (payload[0] & 0x1F) in (24, 7, 9)


# --- receive path: the frame assembler -------------------------------------------------------

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
        self._ts_origin: int | None = None
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
        start = (vp8_starts_frame(payload) if mime == "video/vp8"
                 else h264_starts_frame(payload) if mime == "video/h264" else None)
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
        e = first
        while e in self._pkts:
            e += 1
        return e < self._high

    def _release(self, first: int, last: int, pt: int, mime: str) -> bool:
        ts = self._pkts[first].ts
        data = b"".join([self._pkts.pop(e).data for e in range(first, last + 1)])
        self._next = last + 1
        key = is_keyframe(mime, data)
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


# --- the send path: RTP packets rewritten per destination ----------------------------------

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
HISTORY = 512  # packets kept per destination for NACK (~1.5 s of 640×480 video)
_pack_header = struct.Struct("!BBHIIHH").pack  # fixed header + one-byte extension profile
_PAD = {1: b"\0", 2: b"\0\0", 3: b"\0\0\0"}


def starts_keyframe(mime: str, payload: bytes) -> bool:
    """Does this RTP payload open a key frame (a clean start for a new receiver)?

    VP8: S=1, PID=0 and the VP8 frame tag's P bit clear (RFC 7741). H.264: an SPS (alone
    or in a STAP-A: Chromium sends SPS/PPS right before every IDR), or the first packet of
    an IDR slice (single NAL or FU-A with S=1) (RFC 6184)."""
    if not payload:
        return False
    if mime == "video/vp8":
        b = payload[0]
        if not (b & 0x10) or (b & 0x07):
            return False
        i = 1
        if b & 0x80:  # X: extension bits follow
            x = payload[1] if len(payload) > 1 else 0
            i = 2
            if x & 0x80:  # I: picture id, 7 or 15 bits
                i += 2 if (len(payload) > i and payload[i] & 0x80) else 1
            if x & 0x40:  # L: TL0PICIDX
                i += 1
            if x & 0x30:  # T or K: TID/KEYIDX
                i += 1
        return len(payload) > i and not (payload[i] & 0x01)
    if mime == "video/h264":
        nal = payload[0] & 0x1F
        if nal in (5, 7):
            return True
        if nal == 24:  # STAP-A: 2-byte sizes, each followed by a NAL unit
            i = 1
            while i + 2 < len(payload):
                size = int.from_bytes(payload[i:i + 2], "big")
                if payload[i + 2] & 0x1F in (5, 7):
                    return True
                i += 2 + size
            return False
        if nal == 28 and len(payload) > 1:  # FU-A: start of an IDR slice
            return bool(payload[1] & 0x80) and (payload[1] & 0x1F) == 5
        return False
    return True  # audio: every packet stands alone


class RtpSink:
    """One destination of one source, at the RTP level: the source's packets, as they
    arrive, rewritten for the destination's sender and written to its transport.

    Per packet only the 12-byte header and the header extensions are rebuilt: the
    destination's SSRC and negotiated payload type, sequence numbers and timestamps shifted
    by a fixed offset (so the source's own losses and reordering reach the destination as
    they are, and the destination's NACKs and PLIs mean what they say), the destination's
    extension ids (mid, abs-send-time, audio level). The payload bytes are the source's.
    There is no frame assembly, queue, task or wake-up between receive and send, which is
    what makes this several times cheaper than re-packetizing frames, and adds no delay.

    A video destination starts at a key frame (it asks the source for one, rate-limited);
    audio starts at once. NACKs are answered from the last :data:`HISTORY` packets (as RTX
    when negotiated); PLI/FIR and REMB go to the source (see :class:`PassthroughForwarder`).
    """

    def __init__(self, kind: str, mime: str | None, request_keyframe: Callable[[], None],
                 now: Callable[[], int] = compat.ntp_now):
        self.kind = kind
        self.video = kind == "video"
        self.mime = mime.lower() if mime else None
        self._request = request_keyframe
        self._now = now
        self.sender = None
        self.write: Callable[[bytes], bool] | None = None
        self.pt: int | None = None
        self.rtx_pt: int | None = None
        self.ssrc = 0
        self.rtx_ssrc = 0
        self._mid = b""  # the mid extension element, ready to send
        self._ast_id = 0  # abs-send-time id (0: not negotiated)
        self._ast_word = 0
        self._level_id = 0  # ssrc-audio-level id (0: not negotiated)
        self.started = False
        self._in_ssrc: int | None = None
        self._start_ext = 0
        self._seq_off = 0
        self._ts_off = random.getrandbits(32)
        self._last_out = random.getrandbits(15)  # last output seq (extended): random start
        self._asked = -1e9
        self._history: list = [None] * HISTORY
        self._rtx_seq = random.getrandbits(16)
        self.remb: int | None = None  # the destination's last bandwidth estimate (bit/s)
        self.sent = 0
        self.retransmitted = 0
        self.restarts = 0
        self.ended = False

    # --- wiring to the destination's sender -----------------------------------------------
    def attach(self, sender) -> None:
        self.sender = sender
        self._sender_state = sender.__dict__
        self.ssrc = sender._ssrc
        self.rtx_ssrc = sender._rtx_ssrc
        compat.on_send_parameters(sender, self._configure)
        compat.on_retransmit(sender, self.retransmit)
        compat.on_keyframe_request(sender, self._request)
        compat.on_remb_received(sender, self._on_remb)

    def _configure(self, params) -> None:
        """The negotiated parameters (aiortc is starting the sender): from now on, write."""
        media = [c for c in params.codecs if not c.mimeType.lower().endswith("/rtx")]
        codec = next((c for c in media if c.mimeType.lower() == self.mime), None)
        codec = codec or (media[0] if media else None)
        if codec is None:
            return
        self.pt = codec.payloadType
        self.rtx_pt = next((c.payloadType for c in params.codecs
                            if c.mimeType.lower().endswith("/rtx")
                            and c.parameters.get("apt") == codec.payloadType), None)
        ids = {x.uri: x.id for x in params.headerExtensions if 1 <= x.id <= 14}
        mid = (params.muxId or "").encode()[:16]
        mid_id = ids.get(URI_MID, 0)
        self._mid = bytes([(mid_id << 4) | (len(mid) - 1)]) + mid if mid_id and mid else b""
        self._ast_id = ids.get(URI_ABS_SEND_TIME, 0)
        self._ast_word = (self._ast_id << 28) | (2 << 24)  # id, length-1 = 2 (3 bytes)
        self._level_id = ids.get(URI_AUDIO_LEVEL, 0) if not self.video else 0
        self.write = compat.rtp_writer(self.sender)
        if self.video:
            self._request()  # a joiner starts on a fresh key frame

    def _on_remb(self, bitrate: int) -> None:
        self.remb = bitrate

    # --- packets ---------------------------------------------------------------------------
    def forward(self, ssrc: int, ext: int, ts: int, marker: bool, payload: bytes,
                key: bool | None, level=None, ntp: int | None = None) -> None:
        """One source packet (extended seq ``ext``); ``key``: it opens a key frame
        (``None``: not computed, only asked for while this sink waits for one); ``ntp``:
        now, once for all the destinations of this packet."""
        write = self.write
        if write is None or self.ended:
            return
        if not self.started or ssrc != self._in_ssrc:
            if self.video and not (key if key is not None
                                   else starts_keyframe(self.mime or "", payload)):
                now = time.monotonic()
                if now - self._asked > KEYFRAME_INTERVAL_S:
                    self._asked = now
                    self._request()
                return
            if self.started:
                self.restarts += 1  # the source changed SSRC: continue our numbering
            self._seq_off = self._last_out + 1 - ext
            self._start_ext = ext
            self._in_ssrc = ssrc
            self.started = True
        elif ext < self._start_ext:
            return  # from before our start
        out = ext + self._seq_off
        if out > self._last_out:
            self._last_out = out
        seq = out & 0xFFFF
        ts = (ts + self._ts_off) & 0xFFFFFFFF
        if ntp is None:
            ntp = self._now()
        # the header and extensions, inline (this is the per-packet, per-destination cost)
        ext = self._mid
        if self._ast_id:
            ext += (self._ast_word | ((ntp >> 14) & 0xFFFFFF)).to_bytes(4, "big")
        if self._level_id and level is not None:
            ext += bytes([self._level_id << 4, (0x80 if level[0] else 0) | (level[1] & 0x7F)])
        pad = -len(ext) % 4
        if pad:
            ext += _PAD[pad]
        data = _pack_header(0x90, (0x80 if marker else 0) | self.pt, seq, ts, self.ssrc,
                            0xBEDE, len(ext) >> 2) + ext + payload
        self._history[seq % HISTORY] = (seq, ts, marker, payload, level)
        if write(data):
            self.sent += 1
            compat.record_sent(self._sender_state, ntp, ts, len(payload))

    def _packet(self, pt: int, marker: bool, seq: int, ts: int, ssrc: int, ntp: int,
                level) -> bytes:
        """RTP header + one-byte-header extensions (RFC 8285) for one packet."""
        ext = self._mid
        if self._ast_id:
            ext += (self._ast_word | ((ntp >> 14) & 0xFFFFFF)).to_bytes(4, "big")
        if self._level_id and level is not None:
            vad, dbov = level
            ext += bytes([self._level_id << 4, (0x80 if vad else 0) | (dbov & 0x7F)])
        pad = -len(ext) % 4
        if pad:
            ext += _PAD[pad]
        return _pack_header(0x90, (0x80 if marker else 0) | pt, seq, ts, ssrc,
                            0xBEDE, len(ext) >> 2) + ext

    def retransmit(self, seq: int) -> None:
        """Answer a NACK from the history: as RTX (original seq first) when negotiated."""
        entry = self._history[seq % HISTORY]
        if entry is None or entry[0] != seq or self.write is None or self.ended:
            return
        _, ts, marker, payload, level = entry
        ntp = self._now()
        if self.rtx_pt is not None:
            rtx_seq = self._rtx_seq
            self._rtx_seq = (rtx_seq + 1) & 0xFFFF
            data = self._packet(self.rtx_pt, marker, rtx_seq, ts, self.rtx_ssrc, ntp,
                                level) + seq.to_bytes(2, "big") + payload
        else:
            data = self._packet(self.pt, marker, seq, ts, self.ssrc, ntp, level) + payload
        if self.write(data):
            self.retransmitted += 1

    def end(self) -> None:
        self.ended = True


class RtpTrack(MediaStreamTrack):
    """The track a passthrough sender holds. aiortc's sender reads nothing from it (its
    packets are written by the :class:`RtpSink`); ``recv`` only waits for the end, so the
    sender's own RTP loop sleeps while its RTCP loop (sender reports, NACK, PLI) runs."""

    def __init__(self, kind: str, sink: RtpSink):
        super().__init__()
        self.kind = kind
        self.sink = sink
        self._done = asyncio.Event()

    @property
    def mime(self) -> str | None:
        return self.sink.mime

    @property
    def sent(self) -> int:
        return self.sink.sent

    async def recv(self):
        await self._done.wait()
        raise MediaStreamError

    def end(self) -> None:
        self.sink.end()
        self.stop()
        self._done.set()


# --- subscriptions ---------------------------------------------------------------------------

@dataclass(slots=True)
class Item:
    packet: av.Packet
    key: bool
    mime: str
    arrival: float


class PacketTrack(MediaStreamTrack):
    """What one destination's sender reads: the source's encoded frames as ``av.Packet``.

    Bounded; video never skips to a delta frame: after dropping anything (a backlog, the
    frames queued before the sender started) it waits for the next keyframe and asks the
    source for one.
    """

    def __init__(self, kind: str, request_keyframe: Callable[[], None], mime: str | None = None):
        super().__init__()
        self.kind = kind
        self.mime = mime.lower() if mime else None  # the codec the destination negotiated
        self._request = request_keyframe
        self._q: deque[Item] = deque()
        self._wake = asyncio.Event()
        self._need_key = kind == "video"
        self._started = False
        self._ended = False
        self.sent = 0
        self.resyncs = 0

    def push(self, item: Item) -> None:
        if self._ended:
            return
        if self.mime is not None and item.mime != self.mime:
            return  # the source switched codec: this sender cannot pack it
        if self.kind == "video":
            if self._need_key:
                if not item.key:
                    return
                self._need_key = False
            if not self._started and item.key:
                self._q.clear()  # before the sender starts, keep from the latest keyframe
            self._q.append(item)
            if len(self._q) > VIDEO_QUEUE:
                self._resync()
        else:
            self._q.append(item)
            if len(self._q) > AUDIO_QUEUE:
                self._q.popleft()
        self._wake.set()

    def _resync(self) -> None:
        self._q.clear()
        self._need_key = True
        self.resyncs += 1
        self._request()

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._started:
            self._started = True
            if self.kind == "video":
                head = self._q[0] if self._q else None
                if head is None or not head.key or time.monotonic() - head.arrival > FRESH_KEYFRAME_S:
                    self._resync()  # a joiner starts on a fresh keyframe
            else:
                while len(self._q) > 1:
                    self._q.popleft()
        while not self._q:
            if self._ended or self.readyState != "live":
                raise MediaStreamError
            self._wake.clear()
            await self._wake.wait()
        self.sent += 1
        return self._q.popleft().packet

    def end(self) -> None:
        """End the subscription and wake a sender blocked in :meth:`recv`."""
        self._ended = True
        self.stop()
        self._wake.set()


class DecodedTrack(MediaStreamTrack):
    """The per-pair fallback: the source's packets decoded (off the loop), as frames."""

    def __init__(self, kind: str, packets: PacketTrack, codec):
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._decode = compat.decoder_for(codec)
        self._pending: deque = deque()

    async def recv(self):
        loop = asyncio.get_running_loop()
        while not self._pending:
            try:
                pkt = await self._packets.recv()
            except MediaStreamError:
                self.stop()
                raise
            self._pending.extend(await loop.run_in_executor(None, self._decode, pkt))
        return self._pending.popleft()

    def stop(self) -> None:
        super().stop()
        self._packets.end()


# --- the forwarder ---------------------------------------------------------------------------

class KeyframeRequester:
    """At most one PLI per ``interval_s``; a request inside the interval is sent at its end."""

    def __init__(self, send: Callable[[], bool], interval_s: float = KEYFRAME_INTERVAL_S):
        self._send = send
        self.interval_s = interval_s
        self._last = -1e9
        self._timer: asyncio.TimerHandle | None = None
        self.sent = 0
        self.requested = 0

    def request(self) -> None:
        self.requested += 1
        if self._timer is not None:
            return  # one is already scheduled
        wait = self._last + self.interval_s - time.monotonic()
        if wait <= 0:
            self._fire()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._send():
            self._last = time.monotonic()
            self.sent += 1

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


@dataclass
class _Source:
    key: SourceKey
    track: MediaStreamTrack
    receiver: RTCRtpReceiver | None
    codec: object | None  # RTCRtpCodecParameters the source sends with
    tap: object | None
    keyframes: KeyframeRequester
    sinks: dict[str, RtpSink] = field(default_factory=dict)  # passthrough destinations
    tracks: dict[str, "RtpTrack"] = field(default_factory=dict)  # their senders' tracks
    subs: dict[str, PacketTrack] = field(default_factory=dict)  # frame consumers (fallback)
    decoded: dict[str, MediaStreamTrack] = field(default_factory=dict)  # fallback pairs
    relay_input: DecodedTrack | None = None
    drain: asyncio.Task | None = None
    pt_info: dict = field(default_factory=dict)  # payload type → (mime, time base)
    mimes: dict = field(default_factory=dict)  # payload type → lower-case MIME
    high: int | None = None  # highest extended sequence number received
    remb_sent: tuple = (-1e9, 0)  # (when, bit/s) of the last REMB sent upstream


class PassthroughForwarder(Forwarder):
    """Encoded forwarding; a pair whose codecs differ falls back to decode + encode."""

    mode = "passthrough"

    def __init__(self, keyframe_interval_s: float = KEYFRAME_INTERVAL_S):
        self._sources: dict[SourceKey, _Source] = {}
        self._relay = MediaRelay()
        self.keyframe_interval_s = keyframe_interval_s

    # receivers are tapped before they start (Peer.answer, before DTLS can connect)
    def prepare(self, receiver: RTCRtpReceiver, kind: str) -> None:
        compat.tap_receiver(receiver, kind)  # the tap lives on the receiver itself

    def publish(self, key: SourceKey, track: MediaStreamTrack,
                receiver: RTCRtpReceiver | None = None, codec=None) -> None:
        if key in self._sources:
            self.unpublish(key)
        tap = None
        if receiver is not None:  # tapped by prepare(); tapping now works if not started yet
            tap = compat.receiver_tap(receiver) or compat.tap_receiver(receiver, key.kind)
        src = _Source(key, track, receiver, codec, tap, None)  # type: ignore[arg-type]
        src.keyframes = KeyframeRequester(lambda: self._send_pli(src), self.keyframe_interval_s)
        if tap is not None:
            tap.on_packet = functools.partial(self._on_packet, src)
            tap.on_end = lambda s=src: self._source_ended(s)
            if key.kind == "video":
                compat.on_remb(receiver, functools.partial(self._upstream_remb, src))
        self._sources[key] = src

    def _on_packet(self, src: _Source, p) -> None:
        """A source packet: out to every passthrough destination, now."""
        sinks = src.sinks
        if not sinks:
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
        if src.key.kind == "video":
            for sink in sinks.values():
                if not sink.started:
                    mime = src.mimes.get(p.payload_type)
                    if mime is None:
                        mime = src.mimes[p.payload_type] = (
                            src.tap.mime_of(p.payload_type) or "").lower()
                    key = starts_keyframe(mime, p.payload)
                    break
        else:
            level = p.extensions.audio_level
        ssrc, ts, marker, payload = p.ssrc, p.timestamp, p.marker, p.payload
        ntp = compat.ntp_now()
        for sink in sinks.values():
            sink.forward(ssrc, ext, ts, marker, payload, key, level, ntp)

    def _upstream_remb(self, src: _Source, bitrate: int, ssrcs) -> int | None:
        """The REMB the gateway sends the source: its own estimate of the upstream link,
        lowered to the lowest estimate any destination reported for its copy.

        Throttled like a browser's (at most one per ``REMB_INTERVAL_S`` unless the estimate
        fell by more than 3 %): aiortc's estimator asks for one on *every* packet while it
        sees over-use, which on a busy gateway was hundreds of RTCP packets a second."""
        reported = [s.remb for s in src.sinks.values() if s.remb]
        value = min([bitrate, *reported])
        now = time.monotonic()
        last_t, last = src.remb_sent
        if now - last_t < REMB_INTERVAL_S and value >= last * 0.97:
            return None
        src.remb_sent = (now, value)
        return value

    def _send_pli(self, src: _Source) -> bool:
        if src.key.kind != "video" or src.tap is None or src.receiver is None:
            return False
        return compat.send_pli(src.receiver, src.tap)

    def _fan_out(self, src: _Source, data: bytes, pts: int, key: bool, pt: int) -> None:
        info = src.pt_info.get(pt)
        if info is None:  # once per payload type: no per-frame codec lookups or Fractions
            rate = src.tap.clock_rate(pt)
            info = ((src.tap.mime_of(pt) or "").lower(), fractions.Fraction(1, rate or 90000))
            if rate:
                src.pt_info[pt] = info
        if not src.subs:
            return  # nobody reads it (yet): no packet to build
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = info[1]
        item = Item(packet, key, info[0], time.monotonic())
        for sub in src.subs.values():
            sub.push(item)

    def _source_ended(self, src: _Source) -> None:
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
        if src.tap is not None:
            src.tap.sink = None
            src.tap.on_packet = None
        if src.relay_input is not None:
            src.relay_input.stop()
            src.relay_input = None
        if src.drain is not None:
            src.drain.cancel()

    def _can_pass(self, src: _Source, accepts) -> bool:
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
            sink = self._relay.subscribe(src.relay_input, buffered=False)
            src.drain = asyncio.get_running_loop().create_task(
                _drain(sink), name=f"media-decode-{key.owner}-{key.kind}")
            src.decoded["\0drain"] = sink
        proxy = self._relay.subscribe(src.relay_input, buffered=False)
        src.decoded[dest] = proxy
        log.info("media: %s → %s %s: codec %s not accepted, transcoding this pair",
                 key.owner, dest, key.kind, src.codec.mimeType if src.codec else "?")
        return proxy

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

    def _end_decoded(self, src: _Source, dest: str) -> None:
        proxy = src.decoded.pop(dest, None)
        if proxy is not None:
            _end(proxy)

    def request_keyframe(self, key: SourceKey) -> None:
        src = self._sources.get(key)
        if src is not None:
            src.keyframes.request()

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


async def _drain(sink: MediaStreamTrack) -> None:
    try:
        while True:
            await sink.recv()
    except (MediaStreamError, asyncio.CancelledError):
        pass
