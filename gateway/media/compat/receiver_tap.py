"""Everything the gateway does *around* aiortc 1.16's own behaviour, in one place.

Five things, each tied to a named aiortc hook that ``tests/media/test_aiortc_compat.py``
checks, so an aiortc upgrade that moves or fixes one fails loudly with the hook's name:

1. **RTP header-extension parse guard** (patch of ``aiortc.rtp.HeaderExtensionsMap.get``).
   ``RTCDtlsTransport._handle_rtp_data`` drops a packet whose parse raises ``ValueError``,
   but ``HeaderExtensionsMap.get`` unpacks extension values with ``struct.unpack`` and a
   value of an unexpected length raises ``struct.error`` instead, which escapes and kills
   the transport's receive loop: the whole connection goes deaf (seen with Chromium's
   ``ssrc-audio-level`` once extension ids disagreed between two negotiations). The guard
   turns ``struct.error`` into ``ValueError``: one bad packet is dropped, nothing else.

2. **Gateway offers keep the client's numbering** (:func:`renumber_offer`).
   ``RTCPeerConnection.createOffer`` resets every transceiver's codecs and header
   extensions to aiortc's fixed tables (``aiortc.codecs.CODECS`` / ``HEADER_EXTENSIONS``:
   opus=96, VP8=97, sdes:mid=1, ssrc-audio-level=2, abs-send-time=3), also for m-lines the
   client negotiated with its own numbering (Chromium: opus=111, VP8=96, its own extmap
   ids). Chromium refuses an offer that gives an extension id already in use in the BUNDLE
   another URI, and it would start sending with the renumbered payload types, which the
   gateway's already running receivers (their payload-type map is fixed when they start)
   cannot decode. So every gateway offer is rewritten to the payload types and extmap ids
   the client used in its first offer (codecs/extensions the client did not offer are
   dropped: it could not accept them anyway). Uses ``aiortc.sdp`` (parse/serialise) and
   ``aiortc.rtcpeerconnection.is_codec_compatible`` only.

   And :func:`create_offer` undoes ``createOffer``'s side effect on the transceivers'
   ``_codecs``/``_headerExtensions`` (it resets them to aiortc's tables, and a receiver or
   sender that starts later reads them: see its docstring). This was the root cause of
   "the gateway receives nothing from a client whose first offer was answered just before
   a gateway re-offer" and of the ``struct.error`` in ``rtp.py``.

3. **Preferred codec first in an answer** (:func:`prefer_codec_in_answer`): aiortc builds
   an answer from ``RTCRtpTransceiver._codecs`` as negotiated in ``setRemoteDescription``;
   ``setCodecPreferences`` only affects later offers, so the answer is reordered in place.

4. **Encoded passthrough** (``media_mode=passthrough``; :func:`tap_receiver`,
   :func:`send_pli`, :func:`on_keyframe_request`, :func:`decoder_for`). aiortc's receiver
   always decodes: ``RTCRtpReceiver._handle_rtp_packet`` feeds its private jitter buffer
   (``__jitter_buffer.add(packet)``) and puts complete frames on ``__decoder_queue``, which
   a ``decoder_worker`` thread (started by ``receive()``) decodes. A tapped receiver gets a
   jitter buffer that hands every packet to a :class:`ReceiverTap` and a decoder queue that
   never hands the worker a frame (the worker idles until the receiver stops, then ends the
   track as usual): no decoder is ever created. A PLI/FIR only sets a flag for the sender's
   own encoder (``RTCRtpSender._send_keyframe``): a forwarding sender replaces that method
   on the instance to ask the source for a keyframe, which goes out through the source's
   receiver (``RTCRtpReceiver._send_rtcp_pli``).

5. **RTP-level forwarding and the fast receive path** (:func:`install_fast_receive`,
   :meth:`ReceiverTap.receive`, :func:`parse_rtp`, :func:`lean_bitrate_estimator`,
   :func:`rtp_writer`, :func:`srtp_calls`, :func:`on_send_parameters`,
   :func:`on_retransmit`, :func:`record_sent`, :func:`on_remb`, :func:`on_remb_received`).
   SRTP datagrams of a tapped connection are handled in the socket callback (no aioice
   queue, no DTLS receive task); the tap does what ``_handle_rtp_packet`` does, in the same
   order, minus depacketization; the passthrough sinks write their packets to the
   transport themselves, keep the sender's report counters, answer its NACKs, and relay
   its PLI and REMB. :func:`missing_hooks`, :func:`forwarding_hooks_missing` and
   :func:`fast_receive_hooks_missing` list what an upgrade removed or changed (the fast
   path then stays off; the writer falls back to aiortc's ``_send_rtp``); the tests fail
   naming it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import struct

from aiortc import RTCRtpTransceiver, clock, rtp
from aiortc import sdp as sdp_module
from aiortc.codecs import depayload as _depayload
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpreceiver import StreamStatistics as _StreamStatistics
from aiortc.rtp import RTCP_PSFB_APP as _PSFB_APP
from aiortc.rtp import RtcpPsfbPacket as _RtcpPsfb
from aiortc.rtp import pack_remb_fci as _pack_remb
from aiortc.rtp import unwrap_rtx as _unwrap_rtx

log = logging.getLogger(__name__)

# --- 1. parse guard -------------------------------------------------------------------------

HOOK_PARSE = "aiortc.rtp.HeaderExtensionsMap.get"
_GUARD_MARK = "_livedesk_guarded"


def install_parse_guard() -> None:
    """Make a malformed RTP header-extension value a dropped packet, not a dead transport."""
    original = rtp.HeaderExtensionsMap.get
    if getattr(original, _GUARD_MARK, False):
        return

    def get(self, extension_profile: int, extension_value: bytes):
        try:
            return original(self, extension_profile, extension_value)
        except struct.error as e:  # _handle_rtp_data only catches ValueError
            raise ValueError(f"RTP header extension value does not parse: {e}") from None

    setattr(get, _GUARD_MARK, True)
    get.__wrapped__ = original
    rtp.HeaderExtensionsMap.get = get


def parse_guard_installed() -> bool:
    return bool(getattr(rtp.HeaderExtensionsMap.get, _GUARD_MARK, False))


# --- 2. the client's numbering in gateway offers -------------------------------------------

class Numbering:
    """Payload types and header-extension ids a client used in its (first) offer."""

    def __init__(self, codecs: dict[str, list], extensions: dict[str, int]):
        self.codecs = codecs  # kind → [RTCRtpCodecParameters] with the client's payload types
        self.extensions = extensions  # uri → id (one mapping for the whole BUNDLE)

    @classmethod
    def from_sdp(cls, sdp: str) -> "Numbering":
        desc = sdp_module.SessionDescription.parse(sdp)
        codecs: dict[str, list] = {}
        extensions: dict[str, int] = {}
        for m in desc.media:
            if m.kind not in ("audio", "video"):
                continue
            have = codecs.setdefault(m.kind, [])
            known = {c.payloadType for c in have}
            have.extend(c for c in m.rtp.codecs if c.payloadType not in known)
            for x in m.rtp.headerExtensions:
                extensions.setdefault(x.uri, x.id)
        return cls(codecs, extensions)


def _is_rtx(c) -> bool:
    return c.mimeType.lower().endswith("/rtx")


def _renumber_media(m, numbering: Numbering) -> None:
    ref = numbering.codecs.get(m.kind)
    if ref:
        pt_map: dict[int, int] = {}
        out = []
        for c in m.rtp.codecs:
            if _is_rtx(c):
                continue
            match = next((r for r in ref if not _is_rtx(r) and is_codec_compatible(c, r)
                          and r.payloadType not in pt_map.values()), None)
            if match is not None:
                pt_map[c.payloadType] = match.payloadType
        for c in m.rtp.codecs:
            if _is_rtx(c):
                base = pt_map.get(c.parameters.get("apt"))
                r = next((r for r in ref if _is_rtx(r) and r.parameters.get("apt") == base
                          and r.clockRate == c.clockRate), None) if base is not None else None
                if r is None:
                    continue
                c = copy.deepcopy(c)
                c.payloadType = r.payloadType
                c.parameters = dict(c.parameters, apt=base)
            else:
                if c.payloadType not in pt_map:
                    continue
                c = copy.deepcopy(c)
                c.payloadType = pt_map[c.payloadType]
            out.append(c)
        if any(not _is_rtx(c) for c in out):  # else leave it: nothing better to offer
            m.rtp.codecs = out
            m.fmt = [c.payloadType for c in out]
    m.rtp.headerExtensions = [dataclasses.replace(x, id=numbering.extensions[x.uri])
                              for x in m.rtp.headerExtensions if x.uri in numbering.extensions]


HOOK_OFFER = "aiortc.RTCPeerConnection.createOffer (RTCRtpTransceiver._codecs/_headerExtensions)"


async def create_offer(pc, numbering: Numbering | None) -> str:
    """A gateway (re-)offer from ``pc`` in the client's numbering, without aiortc's side effect.

    ``createOffer`` overwrites ``_codecs``/``_headerExtensions`` of *every* transceiver with
    aiortc's tables, and aiortc reads them lazily: a receiver or sender that starts after
    that (its DTLS connects after the offer, e.g. an offer sent right behind the answer)
    registers aiortc's payload types and extmap ids instead of the negotiated ones. Its RTP
    router then discards every packet (unknown payload type) and the transport-wide
    extension map decodes the client's ids as the wrong extensions (``struct.error`` /
    ``UnicodeDecodeError``). So negotiated transceivers get their parameters back, and new
    ones get those of the renumbered offer (the answer sets them again anyway).
    """
    saved = {t: (t._codecs, t._headerExtensions) for t in pc.getTransceivers()
             if t.currentDirection is not None}
    offer = await pc.createOffer()
    sdp = renumber_offer(offer.sdp, numbering)
    media = sdp_module.SessionDescription.parse(sdp).media
    for t in pc.getTransceivers():
        if t in saved:
            t._codecs, t._headerExtensions = saved[t]
            continue
        i = t._get_mline_index()
        if i is not None and i < len(media) and media[i].kind == t.kind:
            t._codecs = list(media[i].rtp.codecs)
            t._headerExtensions = list(media[i].rtp.headerExtensions)
    return sdp


def renumber_offer(sdp: str, numbering: Numbering | None) -> str:
    """``sdp`` (an aiortc offer) with the client's payload types and extmap ids."""
    if numbering is None:
        return sdp
    desc = sdp_module.SessionDescription.parse(sdp)
    for m in desc.media:
        if m.kind in ("audio", "video"):
            _renumber_media(m, numbering)
    return str(desc)


# --- 3. preferred codec first in an answer --------------------------------------------------

HOOK_ANSWER_CODECS = "aiortc.RTCRtpTransceiver._codecs"


def prefer_codec_in_answer(t: RTCRtpTransceiver, mime: str) -> None:
    """Put ``mime`` (e.g. ``video/vp8``) first in the codecs aiortc will answer with."""
    want = mime.lower()
    t._codecs.sort(key=lambda c: c.mimeType.lower() != want)


# --- 4. encoded passthrough -----------------------------------------------------------------

HOOK_RECV_JITTER = "aiortc.RTCRtpReceiver.__jitter_buffer (add(packet) in _handle_rtp_packet)"
HOOK_RECV_DECODER = "aiortc.RTCRtpReceiver.__decoder_queue (decoder_worker thread, receive())"
HOOK_RECV_CODECS = "aiortc.RTCRtpReceiver.__codecs (payload type → codec)"
HOOK_RECV_STARTED = "aiortc.RTCRtpReceiver.__started"
HOOK_RECV_PLI = "aiortc.RTCRtpReceiver._send_rtcp_pli"
HOOK_PACKET_DATA = "aiortc.rtp.RtpPacket._data (depacketized payload set by _handle_rtp_packet)"
HOOK_SEND_KEYFRAME = "aiortc.RTCRtpSender._send_keyframe (called on PLI/FIR)"
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
    import inspect

    from aiortc import RTCRtpReceiver, RTCRtpSender, codecs, jitterbuffer
    from aiortc import rtcrtpreceiver as recv_mod

    missing = []

    def src(fn) -> str:
        try:
            return inspect.getsource(fn)
        except (OSError, TypeError):
            return ""

    handle = src(RTCRtpReceiver._handle_rtp_packet)
    if "self.__jitter_buffer.add(packet)" not in handle:
        missing.append(HOOK_RECV_JITTER)
    if ("self.__decoder_queue.put(" not in handle
            or "self.__decoder_queue" not in src(RTCRtpReceiver.receive)
            or not hasattr(recv_mod, "decoder_worker")
            or "input_q.get()" not in src(recv_mod.decoder_worker)):
        missing.append(HOOK_RECV_DECODER)
    if "packet._data = depayload(" not in handle:
        missing.append(HOOK_PACKET_DATA)
    if not callable(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)):
        missing.append(HOOK_RECV_PLI)
    if ("self._send_keyframe()" not in src(RTCRtpSender._handle_rtcp_packet)
            or not callable(getattr(RTCRtpSender, "_send_keyframe", None))):
        missing.append(HOOK_SEND_KEYFRAME)
    if ".pack(data)" not in src(getattr(RTCRtpSender, "_next_encoded_frame", None)) or not all(
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
    """Stands in for the receiver's ``JitterBuffer``: hands every packet to the tap."""

    def __init__(self, tap) -> None:
        self.tap = tap
        self.assembler = tap.assembler
        self.capacity = tap.assembler.capacity

    def add(self, packet):
        return self.tap.add(packet), None  # nothing for aiortc's decoder, ever


class _IdleDecoderQueue:
    """Stands in for the receiver's decoder queue: the worker thread never gets a frame.

    ``decoder_worker`` blocks in :meth:`get` until the receiver stops (``put(None)``); it
    then ends the receiver's track exactly as aiortc does. ``tasks`` counts frames that
    reached the decode path (always 0 while tapped)."""

    def __init__(self, on_end) -> None:
        import threading

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
        from ..forward.passthrough import FrameAssembler

        self.receiver = receiver
        self.kind = kind
        self.sink = None
        self.on_packet = None
        self.on_end = None
        self.ssrc: int | None = None  # the media SSRC (after RTX unwrap): where PLIs go
        self.packets = 0
        self._fast = False
        self._state = receiver.__dict__  # its name-mangled attributes, read per packet
        self._active: dict[int, int] = {}  # SSRC → when its "last seen" was stamped (ms)
        self._is_rtx: dict[int, bool] = {}  # payload type → is it RTX
        lean_bitrate_estimator(self._state.get(_R + "remote_bitrate_estimator"))
        self.assembler = FrameAssembler(kind, self._emit, self.mime_of)
        self.decoder_queue = _IdleDecoderQueue(self._ended)
        self._codecs: dict = {}

    def receive(self, packet, arrival_ms: int) -> None:
        """The fast path's ``RTCRtpReceiver._handle_rtp_packet`` for a tapped receiver: the
        same steps in the same order (bitrate estimate and REMB, statistics for receiver
        reports, RTX unwrap, NACKs, PLI), synchronously, and without what only a decoder
        needs (depacketization, unless the per-pair fallback assembles frames)."""
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
                    drive(r._send_rtcp(_RtcpPsfb(fmt=_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                                                 fci=_pack_remb(*remb))))
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
            stats = streams[ssrc] = _StreamStatistics(codec.clockRate)
        stats.add(packet)
        rtx = self._is_rtx.get(codec.payloadType)
        if rtx is None:  # once per payload type (a receiver's codecs are fixed once it runs)
            rtx = self._is_rtx[codec.payloadType] = codec.mimeType.lower().endswith("/rtx")
        if rtx:
            original = d[_K_RTX_SSRC].get(ssrc)
            apt = codec.parameters.get("apt")
            if (original is None or len(packet.payload) < 2 or not isinstance(apt, int)
                    or apt not in codecs):
                return
            packet = _unwrap_rtx(packet, payload_type=apt, ssrc=original)
            codec = codecs[apt]
        nack = d[_K_NACK_GENERATOR]
        if nack is not None and nack.add(packet):
            drive(r._send_rtcp_nack(packet.ssrc, sorted(nack.missing)))
        if self.sink is not None:  # frames wanted (decode fallback): depacketize for them
            try:
                packet._data = _depayload(codec, packet.payload) if packet.payload else b""
            except ValueError:
                return
        if self.add(packet):
            drive(r._send_rtcp_pli(packet.ssrc))

    def add(self, packet) -> bool:
        """One received packet (RTX unwrapped, depacketized). ``True``: send a PLI."""
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
        raise RuntimeError(f"aiortc changed: {missing}; revisit aiortc_compat.tap_receiver")
    tap = ReceiverTap(receiver, kind)
    setattr(receiver, _R + "jitter_buffer", _JitterShim(tap))
    setattr(receiver, _R + "decoder_queue", tap.decoder_queue)
    receiver._livedesk_tap = tap
    return tap


def receiver_tap(receiver) -> ReceiverTap | None:
    return getattr(receiver, "_livedesk_tap", None)


def send_pli(receiver, tap: ReceiverTap) -> bool:
    """A PLI for the source's media SSRC through its receiver; False if none is known yet."""
    import asyncio

    ssrc = tap.ssrc
    if ssrc is None:
        return False
    asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))
    return True


def on_keyframe_request(sender, callback) -> None:
    """A PLI/FIR that ``sender`` receives calls ``callback()`` instead of flagging its encoder."""
    sender._send_keyframe = callback


# --- 5. RTP-level forwarding (the passthrough send path) -------------------------------------

HOOK_SEND_PARAMS = "aiortc.RTCRtpSender.send(parameters) (codecs, muxId, headerExtensions)"
HOOK_SEND_RETRANSMIT = "aiortc.RTCRtpSender._retransmit (called per NACKed sequence number)"
HOOK_SEND_SR = ("aiortc.RTCRtpSender.__ntp_timestamp/__rtp_timestamp/__octet_count/"
                "__packet_count (read by _run_rtcp for sender reports)")
HOOK_DTLS_SEND = "aiortc.RTCDtlsTransport._send_rtp (_tx_srtp.protect → transport._send)"
HOOK_ICE_SEND = "aioice.Connection._nominated / StunProtocol.send_data (transport.sendto)"
HOOK_RECV_REMB = "aiortc.RTCRtpReceiver._send_rtcp (REMB from its bitrate estimator)"

_S = "_RTCRtpSender__"
NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 → 1970-01-01, seconds


def ntp_now() -> int:
    """64-bit NTP time now (what ``aiortc.clock.current_ntp_time`` gives, without datetime)."""
    import time

    t = time.time() + NTP_EPOCH_OFFSET
    return (int(t) << 32) | int((t % 1.0) * 4294967296.0)


def ntp_ms() -> int:
    """``aiortc.clock.current_ms`` (milliseconds since 1900) without building datetimes."""
    import time

    return int((time.time() + NTP_EPOCH_OFFSET) * 1000)


def forwarding_hooks_missing() -> list[str]:
    """Names of the RTP-forwarding hooks this aiortc/aioice no longer has (``[]`` = fine)."""
    return list(_forwarding_hooks_missing())


@functools.cache
def _forwarding_hooks_missing() -> tuple[str, ...]:
    import inspect

    from aioice import ice
    from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender

    def src(fn) -> str:
        try:
            return inspect.getsource(fn)
        except (OSError, TypeError):
            return ""

    missing = []
    send = src(RTCRtpSender.send)
    if "parameters.codecs[0]" not in send or "parameters.muxId" not in send:
        missing.append(HOOK_SEND_PARAMS)
    if "await self._retransmit(seq)" not in src(RTCRtpSender._handle_rtcp_packet):
        missing.append(HOOK_SEND_RETRANSMIT)
    rtcp = src(RTCRtpSender._run_rtcp)
    if not all(f"self.__{n}" in rtcp for n in ("ntp_timestamp", "rtp_timestamp",
                                                "octet_count", "packet_count")):
        missing.append(HOOK_SEND_SR)
    dtls = src(RTCDtlsTransport._send_rtp)
    if "self._tx_srtp.protect(data)" not in dtls or "self.transport._send(data)" not in dtls:
        missing.append(HOOK_DTLS_SEND)
    if ("self._nominated.get(component)" not in src(ice.Connection.sendto)
            or "self.transport.sendto(data, addr)" not in src(ice.StunProtocol.send_data)):
        missing.append(HOOK_ICE_SEND)
    if "await self._send_rtcp(rtcp_packet)" not in src(RTCRtpReceiver._handle_rtp_packet):
        missing.append(HOOK_RECV_REMB)
    return tuple(missing)


def on_send_parameters(sender, callback) -> None:
    """``callback(parameters)`` when aiortc starts ``sender`` with the negotiated
    :class:`~aiortc.RTCRtpSendParameters` (payload types, RTX, mid, extension ids): what a
    forwarding sender needs to write its own packets."""
    original = sender.send

    async def send(parameters):
        callback(parameters)
        await original(parameters)

    sender.send = send


def on_retransmit(sender, callback) -> None:
    """A NACKed sequence number on ``sender`` calls ``callback(seq)`` (aiortc's own
    ``_retransmit`` looks in a history that only its packetizer fills)."""
    async def retransmit(seq: int) -> None:
        callback(seq)

    sender._retransmit = retransmit


_SR_NTP, _SR_RTP = _S + "ntp_timestamp", _S + "rtp_timestamp"
_SR_OCTETS, _SR_PACKETS = _S + "octet_count", _S + "packet_count"


def record_sent(sender_state: dict, ntp: int, rtp_timestamp: int, octets: int) -> None:
    """Account one RTP packet written around aiortc: its sender reports (SR) stay true.
    ``sender_state`` is the sender's ``__dict__`` (where its private counters live)."""
    sender_state[_SR_NTP] = ntp
    sender_state[_SR_RTP] = rtp_timestamp
    sender_state[_SR_OCTETS] += octets
    sender_state[_SR_PACKETS] += 1


HOOK_SRTP = "pylibsrtp.Session._srtp/_cdata/_buffer, pylibsrtp._binding.lib.srtp_(un)protect"


def srtp_calls(session):
    """``(protect, unprotect)`` for a pylibsrtp ``Session``: the same libsrtp calls on the
    session's own buffer as its public methods, without a new ``int *`` and an
    ``isinstance`` per packet (the wrapper costed about as much as the cipher: ~1.5 µs of
    each call). The public methods when pylibsrtp's layout is not the one known here."""
    try:
        import pylibsrtp
        from pylibsrtp import _binding
        srtp, cdata, buf = session._srtp, session._cdata, session._buffer
        lib, ffi = _binding.lib, _binding.ffi
        do_protect, do_unprotect, ok = lib.srtp_protect, lib.srtp_unprotect, lib.srtp_err_status_ok
        errors, trailer = pylibsrtp.ERRORS, pylibsrtp.SRTP_MAX_TRAILER_LEN
    except (ImportError, AttributeError):
        return session.protect, session.unprotect
    room = len(cdata)
    len_p = ffi.new("int *")  # reused: one loop thread calls these

    def run(data: bytes, fn, reserve: int) -> bytes:
        n = len(data)
        if n > room - reserve:
            raise ValueError("packet is too long")
        len_p[0] = n
        buf[0:n] = data
        rc = fn(srtp[0], cdata, len_p)
        if rc != ok:
            raise pylibsrtp.Error(errors[rc])
        return buf[0:len_p[0]]

    return (lambda data: run(data, do_protect, trailer),
            lambda data: run(data, do_unprotect, 0))


def rtp_writer(sender):
    """``write(rtp: bytes) -> bool``: protect and send one plain RTP packet on ``sender``'s
    transport, synchronously (no task, no coroutine chain per packet: aiortc's path is four
    awaits deep, and the per-packet cost is what passthrough forwarding is made of).

    A plain UDP candidate pair is written to directly; anything else (a TURN relay, whose
    send may await) goes through aiortc's own ``_send_rtp`` in a task. ``False``: the
    transport is not (or no longer) connected; the packet is dropped, as aiortc would."""
    import asyncio

    from aioice.ice import StunProtocol
    from aiortc.rtcdtlstransport import State

    connected = State.CONNECTED
    plain_send = StunProtocol.send_data
    dtls = sender.transport
    conn = None
    tx_session: list = [None, None]

    def slow(data: bytes) -> bool:
        if dtls._state != connected:
            return False
        fut = asyncio.ensure_future(dtls._send_rtp(data))
        fut.add_done_callback(_ignore_result)
        return True

    if forwarding_hooks_missing():
        return slow

    def write(data: bytes) -> bool:
        nonlocal conn
        if dtls._state != connected:
            return False
        if conn is None:
            conn = dtls.transport._connection
        pair = conn._nominated.get(1)
        if pair is None:
            return False
        proto = pair.protocol
        if type(proto).send_data is not plain_send:
            return slow(data)
        tx = dtls._tx_srtp
        if tx is not tx_session[0]:  # (set when DTLS completes; looked up once)
            tx_session[:] = [tx, srtp_calls(tx)[0]]
        proto.transport.sendto(tx_session[1](data), pair.remote_addr)
        return True

    return write


def _ignore_result(fut) -> None:
    if not fut.cancelled():
        fut.exception()  # a send on a closing transport: nothing to report


def _remb_of(packet):
    """``(bitrate, ssrcs)`` of an RTCP REMB packet; ``None`` for anything else."""
    from aiortc.rtp import unpack_remb_fci

    if isinstance(packet, _RtcpPsfb) and packet.fmt == _PSFB_APP:
        try:
            return unpack_remb_fci(packet.fci)
        except ValueError:
            return None
    return None


def on_remb(receiver, adjust) -> None:
    """Every REMB ``receiver`` sends upstream (from aiortc's bitrate estimator) goes out as
    ``adjust(bitrate, ssrcs) -> bitrate`` (``None``: not at all): the forwarder lowers it to
    what the downstream receivers report, so a sender never sends more than the slowest of
    them takes, and throttles it."""
    original = receiver._send_rtcp

    async def send_rtcp(packet) -> None:
        remb = _remb_of(packet)
        if remb is not None:
            bitrate = adjust(*remb)
            if bitrate is None:
                return  # held back (throttled)
            packet.fci = _pack_remb(int(bitrate), remb[1])
        await original(packet)

    receiver._send_rtcp = send_rtcp


def on_remb_received(sender, callback) -> None:
    """A REMB that ``sender``'s far end reports calls ``callback(bitrate)`` (aiortc only
    hands it to an encoder, and a forwarding sender has none)."""
    original = sender._handle_rtcp_packet

    async def handle(packet) -> None:
        remb = _remb_of(packet)
        if remb is None:
            await original(packet)
        elif sender._ssrc in remb[1]:
            callback(remb[0])

    sender._handle_rtcp_packet = handle


HOOK_FAST_RECV = ("aiortc.RTCDtlsTransport._rx_srtp/_handle_rtp_data/_handle_rtcp_data, "
                  "aioice.StunProtocol.datagram_received/Connection._protocols")


def fast_receive_hooks_missing() -> list[str]:
    """What the fast receive path mirrors of aiortc 1.16, checked in its source: if an
    upgrade changes any of it, the fast path stays off (aiortc's own path still works)."""
    return list(_fast_receive_hooks_missing())


@functools.cache
def _fast_receive_hooks_missing() -> tuple[str, ...]:
    import inspect

    from aiortc import RTCDtlsTransport, RTCRtpReceiver

    handle = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    data = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    recv = inspect.getsource(RTCDtlsTransport._recv_next)
    wanted = [
        (handle, "self.__remote_bitrate_estimator.add("), (handle, "self.__rtcp_ssrc"),
        (handle, "self.__active_ssrc[packet.ssrc] = clock.current_datetime()"),
        (handle, "self.__codecs.get(packet.payload_type)"),
        (handle, "self.__remote_streams[packet.ssrc].add(packet)"),
        (handle, "packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)"),
        (handle, "self.__nack_generator.add(packet)"), (handle, "self.__jitter_buffer.add"),
        (handle, "await self._send_rtcp_pli(packet.ssrc)"),
        (data, "RtpPacket.parse(data, self._rtp_header_extensions_map)"),
        (data, "self._rtp_router.route_rtp(packet)"),
        (recv, "self._rx_srtp.unprotect(data)"), (recv, "self._rx_srtp.unprotect_rtcp(data)"),
        (recv, "first_byte > 127 and first_byte < 192"),
    ]
    return tuple(HOOK_FAST_RECV + f": {needle}" for text, needle in wanted if needle not in text)


def lean_bitrate_estimator(rbe) -> None:
    """Swap the hot parts of a receiver's ``RemoteBitrateEstimator`` for equivalents that
    give the same numbers in a fraction of the time (a builtin ``min`` instead of a Python
    loop over 60 deltas per frame; empty 1 ms buckets skipped instead of zeroed one by one).
    ``tests/media/test_aiortc_compat.py`` feeds both the same packets and compares."""
    if rbe is None or not hasattr(rbe, "estimator") or not hasattr(rbe, "incoming_bitrate"):
        return
    from aiortc import rate

    class LeanOveruseEstimator(rate.OveruseEstimator):
        def update_min_frame_period(self, ts_delta: float) -> float:
            hist = self.ts_delta_hist
            if len(hist) >= rate.MIN_FRAME_PERIOD_HISTORY_LENGTH:
                hist.pop(0)
            m = min(hist) if hist else ts_delta
            hist.append(ts_delta)
            return ts_delta if ts_delta < m else m

    class LeanRateCounter(rate.RateCounter):
        def _erase_old(self, now_ms: int) -> None:
            new_origin_ms = now_ms - self._window_size + 1
            steps = new_origin_ms - self._origin_ms
            if steps <= 0:
                return
            buckets, size, total = self._buckets, self._window_size, self._total
            i = self._origin_index
            for _ in range(min(steps, size)):
                b = buckets[i]
                if b.count or b.value:
                    total.count -= b.count
                    total.value -= b.value
                    b.count = 0
                    b.value = 0
                i += 1
                if i == size:
                    i = 0
            self._origin_index = (self._origin_index + steps) % size
            self._origin_ms = new_origin_ms

    if type(rbe.estimator) is rate.OveruseEstimator:
        rbe.estimator = LeanOveruseEstimator()
    if type(rbe.incoming_bitrate) is rate.RateCounter:
        rbe.incoming_bitrate = LeanRateCounter(1000, 8000)


class LeanExtensions:
    """The header extensions a tapped receiver reads (``RtpPacket.extensions`` subset)."""

    __slots__ = ("abs_send_time", "audio_level", "mid")

    def __init__(self, abs_send_time=None, audio_level=None):
        self.abs_send_time = abs_send_time
        self.audio_level = audio_level
        self.mid = None


_header = struct.Struct("!BBHII").unpack_from
_new_packet = rtp.RtpPacket.__new__


def parse_rtp(data: bytes, ast_id, level_id):
    """``RtpPacket.parse`` for the fast path: the same checks (``None`` where aiortc raises
    ``ValueError``) and the same fields, but only the extensions a tapped receiver reads
    (abs-send-time, audio level) and no ``HeaderExtensions`` dataclasses built per packet.
    The result is an aiortc ``RtpPacket`` (its helpers, e.g. ``unwrap_rtx``, take it)."""
    n = len(data)
    if n < 12:
        return None
    b0, m_pt, seq, ts, ssrc = _header(data, 0)
    if b0 >> 6 != 2:
        return None
    cc = b0 & 0x0F
    pos = 12 + 4 * cc
    if n < pos:
        return None
    ast = level = None
    if b0 & 0x10:
        if n < pos + 4:
            return None
        profile = (data[pos] << 8) | data[pos + 1]
        end = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3]) * 4
        pos += 4
        if n < end:
            return None
        one = profile == 0xBEDE  # one-byte header elements (RFC 8285); else two-byte
        if one or (profile >> 4) == 0x100:
            while pos < end:
                x = data[pos]
                if x == 0:  # padding between elements
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
                    xid, ln = x, data[pos + 1]
                    pos += 2
                if pos + ln > end:
                    return None
                if xid == ast_id and ln == 3:
                    ast = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
                elif xid == level_id and ln == 1:
                    v = data[pos]
                    level = (v & 0x80 == 0x80, v & 0x7F)
                pos += ln
        pos = end
    padding = 0
    if b0 & 0x20:
        padding = data[-1]
        if not padding or padding > n - pos:
            return None
    p = _new_packet(rtp.RtpPacket)
    p.version = 2
    p.marker = m_pt >> 7
    p.payload_type = m_pt & 0x7F
    p.sequence_number = seq
    p.timestamp = ts
    p.ssrc = ssrc
    p.csrc = [int.from_bytes(data[i:i + 4], "big") for i in range(12, 12 + 4 * cc, 4)] if cc else []
    p.extensions = LeanExtensions(ast, level)
    p.payload = data[pos:n - padding] if padding else data[pos:]
    p.padding_size = padding
    return p


def drive(coro) -> None:
    """Run ``coro`` now, on this stack, as far as it goes without waiting; if it does wait
    (rarely: a TURN send, an RTCP write that blocks), a task finishes it. Saves the task, the
    queue and the wake-ups that an awaited hand-over would cost per packet."""
    try:
        yielded = coro.send(None)
    except StopIteration:
        return
    except Exception:
        log.debug("fast path: handler failed", exc_info=True)
        return
    import asyncio

    async def finish(yielded=yielded):
        while True:
            if asyncio.isfuture(yielded):
                yielded._asyncio_future_blocking = False
                try:
                    await yielded
                except BaseException as e:  # hand it to the coroutine, as a task would
                    try:
                        yielded = coro.throw(e)
                    except StopIteration:
                        return
                    continue
            else:
                await asyncio.sleep(0)
            try:
                yielded = coro.send(None)
            except StopIteration:
                return

    t = asyncio.ensure_future(finish())
    t.add_done_callback(_ignore_result)


def install_fast_receive(dtls) -> bool:
    """Handle SRTP/SRTCP datagrams of ``dtls``'s connection in the socket's callback.

    aiortc hands every datagram through aioice's queue to the DTLS transport's receive task
    (a STUN parse attempt that raises, a queue put and get, a task wake-up and four awaits
    per packet) before ``_handle_rtp_data`` runs. Here an SRTP/SRTCP datagram (first byte
    128–191; STUN has 0–3, DTLS 20–63) is unprotected and handled at once, in the same
    order, by the same aiortc methods; everything else takes aioice's path as before.
    Returns False (and changes nothing) when a hook is missing."""
    from aiortc.rtcdtlstransport import State
    from aiortc.rtp import RtpPacket, is_rtcp

    if fast_receive_hooks_missing():
        return False
    try:
        conn = dtls.transport._connection
        protocols = list(conn._protocols)
    except AttributeError:
        return False
    if getattr(conn, "_livedesk_fast", False):
        return True
    if not all(hasattr(dtls, n) for n in ("_rx_srtp", "_handle_rtp_data",
                                           "_handle_rtcp_data", "_state")):
        return False
    connected = State.CONNECTED
    current_ms = ntp_ms

    parse = RtpPacket.parse
    ids = dtls._rtp_header_extensions_map.__dict__.get("_HeaderExtensionsMap__ids")
    if ids is None:
        return False

    rx_session: list = [None, None]

    def handle(data: bytes) -> None:
        srtp = dtls._rx_srtp
        try:
            if is_rtcp(data):
                drive(dtls._handle_rtcp_data(srtp.unprotect_rtcp(data)))
                return
            if srtp is not rx_session[0]:
                rx_session[:] = [srtp, srtp_calls(srtp)[1]]
            data = rx_session[1](data)
        except Exception:  # pylibsrtp.Error: a replay or a bad auth tag, dropped as aiortc does
            return
        arrival = current_ms()
        # RTCDtlsTransport._handle_rtp_data, with the tapped receivers' lean handler
        packet = parse_rtp(data, ids.abs_send_time, ids.audio_level)
        if packet is None:
            return
        receiver = dtls._rtp_router.route_rtp(packet)
        if receiver is None:
            return
        tap = receiver.__dict__.get("_livedesk_tap")
        if tap is not None:
            tap.receive(packet, arrival)
            return
        try:  # not ours (never, in passthrough): aiortc's full parse and handler
            packet = parse(data, dtls._rtp_header_extensions_map)
        except ValueError:
            return
        drive(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival))

    for proto in protocols:
        original = proto.datagram_received

        def datagram_received(data, addr, original=original):
            if data and 127 < data[0] < 192 and dtls._state == connected and dtls._rx_srtp:
                handle(data)
            else:
                original(data, addr)

        proto.datagram_received = datagram_received
    conn._livedesk_fast = True
    return True


def decoder_for(codec):
    """``decode(av.Packet) → [frames]`` with aiortc's decoder for ``codec`` (not thread-safe:
    one call at a time)."""
    from aiortc.codecs import get_decoder
    from aiortc.jitterbuffer import JitterFrame

    dec = get_decoder(codec)
    return lambda pkt: dec.decode(JitterFrame(bytes(pkt), pkt.pts))


def negotiated_codec(t: RTCRtpTransceiver):
    """The codec the client sends on ``t``: the first non-RTX one of the answer."""
    return next((c for c in getattr(t, "_codecs", []) if not _is_rtx(c)), None)


install_parse_guard()
