"""Encoded passthrough on the receive side: a receiver that hands out packets, never decodes.

aiortc's receiver always decodes: ``RTCRtpReceiver._handle_rtp_packet`` feeds its private
jitter buffer (``__jitter_buffer.add(packet)``) and puts complete frames on
``__decoder_queue``, which a ``decoder_worker`` thread (started by ``receive()``) decodes.
:func:`tap_receiver` gives a receiver a jitter buffer that hands every packet to a
:class:`ReceiverTap` and a decoder queue that never hands the worker a frame (the worker
idles until the receiver stops, then ends the track as usual): no decoder is ever
created. The tap passes each packet on at once (``on_packet``: RTP-level forwarding) and,
only while a per-pair decoder wants frames (``sink``), reassembles them
(:class:`~gateway.media.assembler.FrameAssembler`) for :func:`decoder_for`. A keyframe
request upstream goes out through the source's receiver (:func:`send_pli`,
``RTCRtpReceiver._send_rtcp_pli``).

On its first packet a tap installs the fast receive path on its connection
(:mod:`.fast_receive`), which then calls :meth:`ReceiverTap.receive` straight from the
socket callback. :func:`missing_hooks` names what an aiortc upgrade removed; tapping then
refuses to start. Applied per receiver, by the passthrough forwarder (before the
receiver starts).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable

from aiortc import (
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    clock,
    codecs,
    jitterbuffer,
)
from aiortc import rtcrtpreceiver as recv_mod
from aiortc.codecs import depayload, get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

from signaling.coro import drive

from ..assembler import FrameAssembler
from ..nack_retry import NackRetries
from ..ulpfec import FecDecoder, Rebuilt, SeqCompactor, unred, zero_extensions
from .fast_receive import TAP_ATTR, install_fast_receive, parse_rtp
from .hooks import source_of
from .lean_rate import lean_bitrate_estimator
from .rtp_forwarding import HOOK_SEND_KEYFRAME

HOOK_RECV_JITTER = "aiortc.RTCRtpReceiver.__jitter_buffer (add(packet) in _handle_rtp_packet)"
HOOK_RECV_DECODER = "aiortc.RTCRtpReceiver.__decoder_queue (decoder_worker thread, receive())"
HOOK_RECV_CODECS = "aiortc.RTCRtpReceiver.__codecs (payload type → codec)"
HOOK_RECV_STARTED = "aiortc.RTCRtpReceiver.__started"
HOOK_RECV_PLI = "aiortc.RTCRtpReceiver._send_rtcp_pli"
HOOK_PACKET_DATA = "aiortc.rtp.RtpPacket._data (depacketized payload set by _handle_rtp_packet)"
HOOK_SEND_PACK = "aiortc.RTCRtpSender._next_encoded_frame → Encoder.pack(av.Packet)"
HOOK_DECODER = "aiortc.codecs.get_decoder / aiortc.jitterbuffer.JitterFrame"
HOOK_ANSWER_CODEC = "aiortc.RTCRtpTransceiver._codecs (first = the codec the client sends)"

_R = "_RTCRtpReceiver__"


def missing_hooks(receiver=None) -> list[str]:
    """Names of the passthrough hooks this aiortc no longer has (``[]`` = all there).

    With a (not started) ``receiver`` the instance attributes are checked too."""
    missing = list(_missing_class_hooks())
    if receiver is not None:
        for name, hook in (("jitter_buffer", HOOK_RECV_JITTER),
                           ("decoder_queue", HOOK_RECV_DECODER),
                           ("codecs", HOOK_RECV_CODECS), ("started", HOOK_RECV_STARTED)):
            if not hasattr(receiver, _R + name) and hook not in missing:
                missing.append(hook)
    return missing


@functools.cache
def _missing_class_hooks() -> tuple[str, ...]:
    """The source-reading part of :func:`missing_hooks`, once per process (``inspect``
    tokenizes aiortc's modules: tens of milliseconds, not something to do per call)."""
    missing = []
    handle = source_of(RTCRtpReceiver._handle_rtp_packet)
    if "self.__jitter_buffer.add(packet)" not in handle:
        missing.append(HOOK_RECV_JITTER)
    if ("self.__decoder_queue.put(" not in handle
            or "self.__decoder_queue" not in source_of(RTCRtpReceiver.receive)
            or not hasattr(recv_mod, "decoder_worker")
            or "input_q.get()" not in source_of(recv_mod.decoder_worker)):
        missing.append(HOOK_RECV_DECODER)
    if "packet._data = depayload(" not in handle:
        missing.append(HOOK_PACKET_DATA)
    if not callable(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)):
        missing.append(HOOK_RECV_PLI)
    if ("self._send_keyframe()" not in source_of(RTCRtpSender._handle_rtcp_packet)
            or not callable(getattr(RTCRtpSender, "_send_keyframe", None))):
        missing.append(HOOK_SEND_KEYFRAME)
    next_frame = getattr(RTCRtpSender, "_next_encoded_frame", None)
    if ".pack(data)" not in source_of(next_frame) or not all(
            callable(getattr(c, "pack", None))
            for c in (codecs.Vp8Encoder, codecs.H264Encoder, codecs.OpusEncoder)):
        missing.append(HOOK_SEND_PACK)
    if not callable(getattr(codecs, "get_decoder", None)) or not hasattr(jitterbuffer,
                                                                         "JitterFrame"):
        missing.append(HOOK_DECODER)
    if not hasattr(RTCRtpTransceiver, "setCodecPreferences"):
        missing.append(HOOK_ANSWER_CODEC)
    return tuple(missing)


class _JitterShim:
    """Stands in for the receiver's ``JitterBuffer``: hands every packet to the tap (only
    until the fast path takes over, which its first packet installs)."""

    def __init__(self, tap) -> None:
        self.tap = tap
        self.assembler = tap.assembler
        self.capacity = tap.assembler.capacity

    def add(self, packet):
        return self.tap.add_unfast(packet), None  # nothing for aiortc's decoder, ever


_MEDIA, _RTX, _RED, _FEC = range(4)  # what a payload type carries


def _clamp_jump(nack, seq: int) -> None:
    """Before ``nack.add`` of ``seq``: on a jump ahead, aiortc's NACK generator would add
    every number in between, one by one, to keep only the last RTP_HISTORY_SIZE (a sender
    jumping 30,000 numbers per packet cost ~18 ms each); start the window where it would
    end anyway. The same NACKs result."""
    high = nack.max_seq
    if high is not None and RTP_HISTORY_SIZE < (seq - high) & 0xFFFF < 0x8000:
        nack.max_seq = (seq - RTP_HISTORY_SIZE - 1) & 0xFFFF


def _role_of(codec) -> int:
    mime = codec.mimeType.lower()
    if mime.endswith("/rtx"):
        return _RTX
    if mime.endswith("/red"):
        return _RED
    if mime.endswith("/ulpfec"):
        return _FEC
    return _MEDIA


class _RedStream:
    """One RED stream's repairs and numbering (:mod:`gateway.media.ulpfec`)."""

    __slots__ = ("decoder", "compactor", "mutable")

    def __init__(self, ssrc: int, mutable: frozenset[int]) -> None:
        self.decoder = FecDecoder(ssrc)
        self.compactor = SeqCompactor()
        self.mutable = mutable  # extension ids zeroed in what parity covers

    def rebuilt(self, got: list[Rebuilt], media_pts) -> list[RtpPacket]:
        """Rebuilt packets as the tap's packets (no abs-send-time: its value was zeroed,
        so the sinks stamp their own; see :meth:`RtpSink.forward`). Only those of a media
        payload type of the connection (``media_pts``): a corrupt or hostile parity packet
        can rebuild anything; the others are given back to the decoder as never rebuilt."""
        out = []
        for x in got:
            p = parse_rtp(x.data, None, None)
            if p is None or p.payload_type not in media_pts:
                self.decoder.discard(x.seq)
                continue
            p._red = self
            out.append(p)
        return out


class _IdleDecoderQueue:
    """Stands in for the receiver's decoder queue: the worker thread never gets a frame.

    ``decoder_worker`` blocks in :meth:`get` until the receiver stops (``put(None)``); it
    then ends the receiver's track exactly as aiortc does. ``tasks`` counts frames that
    reached the decode path (always 0 while tapped)."""

    def __init__(self, on_end) -> None:
        self._stop = threading.Event()
        self._on_end = on_end
        self.tasks = 0

    def get(self, *a, **kw):
        self._stop.wait()
        return None

    def put(self, item, *a, **kw) -> None:
        if item is None:
            self._stop.set()
            self._on_end()
        else:
            self.tasks += 1


# the receiver's name-mangled attributes the fast path reads per packet
_K_REMOTE_BITRATE_ESTIMATOR = _R + "remote_bitrate_estimator"
_K_RTCP_SSRC = _R + "rtcp_ssrc"
_K_ACTIVE_SSRC = _R + "active_ssrc"
_K_CODECS = _R + "codecs"
_K_REMOTE_STREAMS = _R + "remote_streams"
_K_RTX_SSRC = _R + "rtx_ssrc"
_K_NACK_GENERATOR = _R + "nack_generator"


class ReceiverTap:
    """A receiver whose packets go to ``on_packet(packet)`` as they arrive (RTP-level
    forwarding) and, only while ``sink`` is set, also reassembled into frames for
    ``sink(data, pts, keyframe, payload_type)`` (the per-pair decode fallback). Nothing is
    ever decoded by aiortc."""

    def __init__(self, receiver, kind: str) -> None:
        self.receiver = receiver
        self.kind = kind
        self.sink: Callable[[bytes, int, bool, int], None] | None = None
        self.on_packet: Callable[[RtpPacket], None] | None = None
        self.on_end: Callable[[], None] | None = None
        self.ssrc: int | None = None  # the media SSRC (after RTX unwrap): where PLIs go
        self.packets = 0
        self._fast = False
        self._state = receiver.__dict__  # its name-mangled attributes, read per packet
        self._active: dict[int, int] = {}  # SSRC → when its "last seen" was stamped (ms)
        self._role: dict[int, int] = {}  # payload type → _MEDIA, _RTX, _RED or _FEC
        self._red: dict[int, _RedStream] = {}  # SSRC → its RED/ULPFEC state
        self._media_pt_set: frozenset[int] | None = None
        lean_bitrate_estimator(self._state.get(_R + "remote_bitrate_estimator"))
        self.assembler = FrameAssembler(kind, self._emit, self.mime_of)
        self.decoder_queue = _IdleDecoderQueue(self._ended)
        self._codecs: dict = {}
        self.nack_retries = NackRetries()  # aiortc NACKs a gap once; this asks again

    def receive(self, packet, arrival_ms: int) -> None:
        """The fast path's ``RTCRtpReceiver._handle_rtp_packet`` for a tapped receiver: the
        same steps in the same order (bitrate estimate and REMB, statistics for receiver
        reports, RTX unwrap, NACKs, PLI), synchronously, and without what only a decoder
        needs (depacketization, unless the per-pair fallback assembles frames). One step
        more than aiortc's: a packet still missing is NACKed again once per round trip
        (:mod:`gateway.media.nack_retry`)."""
        r, d = self.receiver, self._state
        if not r._enabled:
            return
        ssrc = packet.ssrc
        rbe = d[_K_REMOTE_BITRATE_ESTIMATOR]
        if rbe is not None:
            ast = packet.extensions.abs_send_time
            if ast is not None:
                remb = rbe.add(abs_send_time=ast, arrival_time_ms=arrival_ms,
                               payload_size=len(packet.payload) + packet.padding_size,
                               ssrc=ssrc)
                rtcp_ssrc = d[_K_RTCP_SSRC]
                if remb is not None and rtcp_ssrc is not None:
                    drive(r._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc,
                                                      media_ssrc=0, fci=pack_remb_fci(*remb))))
        if arrival_ms - self._active.get(ssrc, -10_000) >= 1000:  # (getSynchronizationSources)
            self._active[ssrc] = arrival_ms
            d[_K_ACTIVE_SSRC][ssrc] = clock.current_datetime()
        codecs = d[_K_CODECS]
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        streams = d[_K_REMOTE_STREAMS]
        stats = streams.get(ssrc)
        if stats is None:
            stats = streams[ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        role = self._role.get(codec.payloadType)
        if role is None:  # once per payload type (a receiver's codecs are fixed once it runs)
            role = self._role[codec.payloadType] = _role_of(codec)
        raw = getattr(packet, "_raw", None)  # as received: what ULPFEC protects
        if role == _RTX:
            original = d[_K_RTX_SSRC].get(ssrc)
            apt = codec.parameters.get("apt")
            if (original is None or len(packet.payload) < 2 or not isinstance(apt, int)
                    or apt not in codecs):
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original)
            codec = codecs[apt]
            role = self._role.get(apt)
            if role is None:
                role = self._role[apt] = _role_of(codec)
            raw = None  # its header is the retransmission's: no use to parity
        rebuilt: list = []
        media = packet
        if role == _RED:  # RED/ULPFEC (docs/media.md, "Forward error correction")
            got = self._unred(packet, codecs, raw)
            if got is None:
                return
            media, rebuilt = got
        nack = d[_K_NACK_GENERATOR]
        if nack is not None:
            retries = self.nack_retries
            missed = False
            for x in rebuilt:  # repaired: no longer missing, and no round-trip sample
                if retries.asked:
                    retries.recovered(x.sequence_number)
                _clamp_jump(nack, x.sequence_number)
                missed = nack.add(x) or missed
            if retries.asked:
                retries.arrived(packet.sequence_number, arrival_ms)
            _clamp_jump(nack, packet.sequence_number)
            if nack.add(packet) or (missed and nack.missing):
                lost = sorted(nack.missing)
                retries.sent(lost, arrival_ms)
                drive(r._send_rtcp_nack(packet.ssrc, lost))
            elif nack.missing:  # asked before and still missing: again, once per round trip
                again = retries.due(nack.missing, arrival_ms)
                if again:
                    drive(r._send_rtcp_nack(packet.ssrc, again))
            if retries.playout_ms:  # the destinations' minimum playout delay: until clean
                retries.expire(arrival_ms)
        if role == _RED:
            for x in rebuilt:
                self._pass(r, x, codecs)
            if media is not None:
                self._pass(r, media, codecs)
            return
        if self._red:  # plain media where RED was (a renegotiation): the same numbering
            packet._red = self._red.get(packet.ssrc)
        self._pass(r, packet, codecs, codec)

    def _pass(self, receiver, packet, codecs, codec=None) -> None:
        """On to the forwarder (and the per-pair decoder, while one wants frames)."""
        if self.sink is not None:  # frames wanted (decode fallback): depacketize for them
            codec = codec or codecs.get(packet.payload_type)
            try:
                packet._data = depayload(codec, packet.payload) if packet.payload else b""
            except ValueError:
                return
        if self.add(packet):
            drive(receiver._send_rtcp_pli(packet.ssrc))

    def _unred(self, packet, codecs, raw) -> tuple[RtpPacket | None, list[RtpPacket]] | None:
        """A RED packet: (its media packet or None for parity, the packets parity rebuilt),
        all with their sender's sequence numbers; None: not a RED packet we can read.

        The media packet and the rebuilt ones are renumbered for the destinations only in
        :meth:`add` (:class:`~gateway.media.ulpfec.SeqCompactor`), after the NACK
        bookkeeping has seen the sender's numbers."""
        block = unred(packet.payload)
        if block is None:
            return None
        pt, data = block
        inner = codecs.get(pt)
        if inner is None:
            return None
        inner_role = self._role.get(pt)
        if inner_role is None:
            inner_role = self._role[pt] = _role_of(inner)
        if inner_role not in (_MEDIA, _FEC):
            return None  # RED in RED, RTX in RED: libwebrtc sends neither
        red = self._red.get(packet.ssrc)
        if red is None:
            red = self._red[packet.ssrc] = _RedStream(packet.ssrc, self._mutable_ids())
        seq = red.decoder.ext(packet.sequence_number)
        if inner_role == _FEC:
            if red.decoder.seen(seq):
                return None, []  # a duplicate: numbered and used once
            red.compactor.parity(seq)
            return None, red.rebuilt(red.decoder.parity(seq, data), self._media_pts(codecs))
        body = None
        if raw is not None:
            head = raw[12:len(raw) - len(packet.payload) - packet.padding_size]
            if raw[0] & 0x10 and red.mutable:
                head = zero_extensions(head, raw[0] & 0x0F, red.mutable)
            body = head + data + (raw[len(raw) - packet.padding_size:]
                                  if packet.padding_size else b"")
        b1 = (0x80 if packet.marker else 0) | pt
        rebuilt = red.decoder.media(seq, raw[0] if raw is not None else 0x80, b1,
                                    packet.timestamp, body)
        if rebuilt is None:  # rebuilt from parity already: its retransmission came late
            return None, []
        packet.payload_type = pt
        packet.payload = data
        packet._red = red  # renumbered in add()
        return packet, red.rebuilt(rebuilt, self._media_pts(codecs)) if rebuilt else []

    def _media_pts(self, codecs) -> frozenset[int]:
        """The payload types of this receiver's media codecs (fixed once it runs)."""
        if self._media_pt_set is None:
            self._media_pt_set = frozenset(pt for pt, c in codecs.items()
                                           if _role_of(c) == _MEDIA)
        return self._media_pt_set

    def _mutable_ids(self) -> frozenset[int]:
        """The ids of the header extensions a sender writes after FEC (zeroed for it)."""
        ids = getattr(getattr(self.receiver.transport, "_rtp_header_extensions_map", None),
                      "_HeaderExtensionsMap__ids", None)
        if ids is None:
            return frozenset()
        return frozenset(i for i in (ids.abs_send_time, ids.transmission_offset,
                                     ids.transport_sequence_number) if i)

    def add_unfast(self, packet) -> bool:
        """A packet through aiortc's own handler (RTX unwrapped and NACKed there): RED is
        unwrapped here (no repairs: its bytes as received are not known)."""
        codec = self._codec(packet.payload_type)
        if codec is None or _role_of(codec) != _RED:
            return self.add(packet)
        codecs = getattr(self.receiver, _R + "codecs", {})
        got = self._unred(packet, codecs, None)
        if got is None:
            return False
        media, rebuilt = got
        pli = False
        for p in (*rebuilt, media):
            if p is None:
                continue
            if self.sink is not None:  # aiortc depacketized the RED payload: again, inside
                try:
                    data = depayload(codecs[p.payload_type], p.payload) if p.payload else b""
                except (KeyError, ValueError):
                    continue
                p._data = data  # type: ignore[attr-defined]
            pli = self.add(p) or pli
        return pli

    def add(self, packet) -> bool:
        """One received packet (RTX and RED unwrapped, depacketized). ``True``: send a PLI."""
        red = getattr(packet, "_red", None)
        if red is not None:  # numbered for the destinations without the parity packets
            out = red.compactor.media(red.decoder.ext(packet.sequence_number))
            if out is None:
                return False
            packet.sequence_number = out & 0xFFFF
        self.ssrc = packet.ssrc
        self.packets += 1
        if not self._fast:
            self._fast = True
            install_fast_receive(self.receiver.transport)
        if self.on_packet is not None:
            self.on_packet(packet)
        if self.sink is None:
            return False
        return self.assembler.add(packet.sequence_number, packet.timestamp, packet.marker,
                                  packet.ssrc, packet.payload_type,
                                  getattr(packet, "_data", packet.payload), packet.payload)

    def _codec(self, pt: int):
        c = self._codecs.get(pt)
        if c is None:
            c = getattr(self.receiver, _R + "codecs", {}).get(pt)
            if c is not None:  # fixed once the receiver runs (receive() fills it once)
                self._codecs[pt] = c
        return c

    def mime_of(self, pt: int) -> str | None:
        c = self._codec(pt)
        return c.mimeType if c is not None else None

    def clock_rate(self, pt: int) -> int | None:
        c = self._codec(pt)
        return c.clockRate if c is not None else None

    def _emit(self, data: bytes, pts: int, key: bool, pt: int) -> None:
        if self.sink is not None:
            self.sink(data, pts, key, pt)

    def _ended(self) -> None:
        if self.on_end is not None:
            self.on_end()


def tap_receiver(receiver, kind: str) -> ReceiverTap:
    """Make ``receiver`` (not started yet) yield encoded frames instead of decoding them."""
    existing = receiver_tap(receiver)
    if existing is not None:
        return existing
    if getattr(receiver, _R + "started", True):
        raise RuntimeError("tap_receiver: the receiver has started; tap it before "
                           "its connection is up (before the answer goes out)")
    missing = [h for h in missing_hooks(receiver)
               if h in (HOOK_RECV_JITTER, HOOK_RECV_DECODER, HOOK_RECV_CODECS)]
    if missing:
        raise RuntimeError(f"aiortc changed: {missing}; revisit compat.receiver_tap.tap_receiver")
    tap = ReceiverTap(receiver, kind)
    setattr(receiver, _R + "jitter_buffer", _JitterShim(tap))
    setattr(receiver, _R + "decoder_queue", tap.decoder_queue)
    setattr(receiver, TAP_ATTR, tap)
    return tap


def receiver_tap(receiver) -> ReceiverTap | None:
    return getattr(receiver, TAP_ATTR, None)


def send_pli(receiver, tap: ReceiverTap) -> bool:
    """A PLI for the source's media SSRC through its receiver; False if none is known yet."""
    ssrc = tap.ssrc
    if ssrc is None:
        return False
    asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))
    return True


def decoder_for(codec):
    """``decode(av.Packet) → [frames]`` with aiortc's decoder for ``codec`` (not thread-safe:
    one call at a time)."""
    dec = get_decoder(codec)
    return lambda pkt: dec.decode(JitterFrame(bytes(pkt), pkt.pts))
