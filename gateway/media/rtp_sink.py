"""One source's RTP packets, rewritten for one destination and written to its transport.

This is the per-packet, per-destination half of passthrough forwarding (the forwarder
decides who gets what; this writes it). Its cost is what passthrough is made of, so the
header is built inline and nothing between receive and send queues, wakes or awaits.
aiortc's sender for the destination still runs its RTCP (sender reports, NACK, PLI,
REMB in); the hooks in :mod:`gateway.media.compat.rtp_forwarding` hand those to the sink.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable

from .clock import ntp_now
from .codecs import is_rtx, starts_keyframe
from .compat.playout_delay import URI_PLAYOUT_DELAY
from .compat.rtp_forwarding import (
    on_keyframe_request,
    on_remb_received,
    on_retransmit,
    on_send_parameters,
    record_sent,
    rtp_writer,
)
from .keyframes import KEYFRAME_INTERVAL_S

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
HISTORY = 512  # packets kept per destination for NACK (~1.5 s of 640×480 video)
PLAYOUT_MAX_UNITS = 0xFFF  # playout-delay maximum, 10 ms units: 40.95 s, i.e. no cap
_pack_header = struct.Struct("!BBHIIHH").pack  # fixed header + one-byte extension profile
_PAD = {1: b"\0", 2: b"\0\0", 3: b"\0\0\0"}


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
    when negotiated); PLI/FIR and REMB go to the source (see
    :class:`~gateway.media.forward.passthrough.PassthroughForwarder`).
    """

    def __init__(self, kind: str, mime: str | None, request_keyframe: Callable[[], None],
                 now: Callable[[], int] = ntp_now):
        self.kind = kind
        self.video = kind == "video"
        self.mime = mime.lower() if mime else None
        self._request = request_keyframe
        self._now = now
        self.sender = None
        self._params = None  # the sender's negotiated parameters, once it started
        self.write: Callable[[bytes], bool] | None = None
        self.pt = 0  # payload type: set with ``write`` (nothing is written before)
        self.rtx_pt: int | None = None
        self.ssrc = 0
        self.rtx_ssrc = 0
        self._mid = b""  # the mid extension element, ready to send
        self._ast_id = 0  # abs-send-time id (0: not negotiated)
        self._ast_word = 0
        self._level_id = 0  # ssrc-audio-level id (0: not negotiated)
        self._pd_id = 0  # playout-delay id (0: not negotiated)
        self._pd = b""  # the playout-delay element, ready to send (empty: none asked for)
        self.playout_ms = 0  # the minimum playout delay asked of the destination (ms)
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
        on_send_parameters(sender, self._configure)
        on_retransmit(sender, self.retransmit)
        on_keyframe_request(sender, self._ask_keyframe)
        on_remb_received(sender, self._on_remb)

    def _ask_keyframe(self) -> None:
        self._request()  # looked up per call: a reserved sink gets its source later

    def set_source(self, mime: str | None, request_keyframe: Callable[[], None]) -> None:
        """A reserved sink (made before its source existed) gets its source: its codec
        decides the payload type, its keyframe requester is asked from now on."""
        self.mime = mime.lower() if mime else None
        self._request = request_keyframe
        if self._params is not None:
            self._select(self._params)
            if self.video:
                self._request()

    def _configure(self, params) -> None:
        """The negotiated parameters (aiortc is starting the sender): from now on, write."""
        self._params = params
        self._select(params)
        if self.write is not None and self.video:
            self._request()  # a joiner starts on a fresh key frame

    def _select(self, params) -> None:
        media = [c for c in params.codecs if not is_rtx(c)]
        codec = next((c for c in media if c.mimeType.lower() == self.mime), None)
        codec = codec or (media[0] if media else None)
        if codec is None:
            return
        self.pt = codec.payloadType
        self.rtx_pt = next((c.payloadType for c in params.codecs
                            if is_rtx(c) and c.parameters.get("apt") == codec.payloadType), None)
        ids = {x.uri: x.id for x in params.headerExtensions if 1 <= x.id <= 14}
        mid = (params.muxId or "").encode()[:16]
        mid_id = ids.get(URI_MID, 0)
        self._mid = bytes([(mid_id << 4) | (len(mid) - 1)]) + mid if mid_id and mid else b""
        self._ast_id = ids.get(URI_ABS_SEND_TIME, 0)
        self._ast_word = (self._ast_id << 28) | (2 << 24)  # id, length-1 = 2 (3 bytes)
        self._level_id = ids.get(URI_AUDIO_LEVEL, 0) if not self.video else 0
        self._pd_id = ids.get(URI_PLAYOUT_DELAY, 0) if self.video else 0
        self.set_playout_delay(self.playout_ms)
        if self.write is None:
            self.write = rtp_writer(self.sender)

    def set_playout_delay(self, min_ms: int) -> None:
        """Ask the destination to play out no sooner than ``min_ms`` after capture (0: as
        soon as it likes): the source's round trip when the source is lossy (docs/media.md,
        "Playout delay"). Written on every packet while set, when negotiated."""
        self.playout_ms = min_ms
        if self._pd_id and min_ms > 0:
            units = min(min_ms // 10, PLAYOUT_MAX_UNITS)
            self._pd = bytes([(self._pd_id << 4) | 2]) + (
                (units << 12) | PLAYOUT_MAX_UNITS).to_bytes(3, "big")
        else:
            self._pd = b""

    def _on_remb(self, bitrate: int) -> None:
        self.remb = bitrate

    # --- packets ---------------------------------------------------------------------------
    def forward(self, ssrc: int, ext: int, ts: int, marker: bool, payload: bytes,
                key: bool | None, level=None, ntp: int | None = None,
                ast: int | None = None) -> None:
        """One source packet (extended seq ``ext``); ``key``: it opens a key frame
        (``None``: not computed, only asked for while this sink waits for one); ``ntp``:
        now, once for all the destinations of this packet; ``ast``: the source's own
        abs-send-time (24 bits), passed on unchanged so the destination's bandwidth
        estimator measures the whole path from the source (see docs/media.md, REMB)."""
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
        exts = self._mid
        if self._ast_id:
            exts += (self._ast_word | (ast if ast is not None else (ntp >> 14) & 0xFFFFFF)
                     ).to_bytes(4, "big")
        if self._level_id and level is not None:
            exts += bytes([self._level_id << 4, (0x80 if level[0] else 0) | (level[1] & 0x7F)])
        if self._pd:
            exts += self._pd
        pad = -len(exts) % 4
        if pad:
            exts += _PAD[pad]
        data = _pack_header(0x90, (0x80 if marker else 0) | self.pt, seq, ts, self.ssrc,
                            0xBEDE, len(exts) >> 2) + exts + payload
        self._history[seq % HISTORY] = (seq, ts, marker, payload, level)
        if write(data):
            self.sent += 1
            record_sent(self._sender_state, ntp, ts, len(payload))

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

