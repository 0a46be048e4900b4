"""Everything the gateway does *around* aiortc 1.16's own behaviour, in one place.

Four things, each tied to a named aiortc hook that ``tests/media/test_aiortc_compat.py``
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

4. **Encoded passthrough** (issue 7, ``media_mode=passthrough``; :func:`tap_receiver`,
   :func:`send_pli`, :func:`on_keyframe_request`, :func:`decoder_for`). aiortc's receiver
   always decodes: ``RTCRtpReceiver._handle_rtp_packet`` feeds its private jitter buffer
   (``__jitter_buffer.add(packet)``) and puts complete frames on ``__decoder_queue``, which
   a ``decoder_worker`` thread (started by ``receive()``) decodes. A tapped receiver gets a
   jitter buffer that is the passthrough :class:`~gateway.media.passthrough.FrameAssembler`
   (frames leave at their marker bit, straight to the forwarder, on the loop) and a
   decoder queue that never hands the worker a frame (the worker idles until the receiver
   stops, then ends the track as usual): no decoder is ever created. Everything else of
   ``_handle_rtp_packet`` stays aiortc's: SSRC/payload-type routing, RTCP statistics, RTX
   unwrapping, NACK generation, REMB from abs-send-time, depacketization.
   On the send side, the pre-encoded path is public (a track yielding ``av.Packet`` is
   ``pack()``ed, ``RTCRtpSender._next_encoded_frame``), but a PLI/FIR only sets a flag for
   the sender's own encoder (``RTCRtpSender._send_keyframe``): a forwarding sender
   replaces that method on the instance to ask the source for a keyframe, which goes out
   through the source's receiver (``RTCRtpReceiver._send_rtcp_pli``).
   :func:`missing_hooks` lists what an upgrade removed; the tests fail naming it.
"""

from __future__ import annotations

import copy
import dataclasses
import struct

from aiortc import RTCRtpTransceiver, rtp
from aiortc import sdp as sdp_module
from aiortc.rtcpeerconnection import is_codec_compatible

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
    if receiver is not None:
        for name, hook in (("jitter_buffer", HOOK_RECV_JITTER),
                           ("decoder_queue", HOOK_RECV_DECODER),
                           ("codecs", HOOK_RECV_CODECS), ("started", HOOK_RECV_STARTED)):
            if not hasattr(receiver, _R + name) and hook not in missing:
                missing.append(hook)
    return missing


class _JitterShim:
    """Stands in for the receiver's ``JitterBuffer``: hands packets to the assembler."""

    def __init__(self, assembler) -> None:
        self.assembler = assembler
        self.capacity = assembler.capacity

    def add(self, packet):
        pli = self.assembler.add(packet.sequence_number, packet.timestamp, packet.marker,
                                 packet.ssrc, packet.payload_type,
                                 getattr(packet, "_data", packet.payload), packet.payload)
        return pli, None  # frames went to the forwarder already: nothing to decode


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


class ReceiverTap:
    """A receiver whose frames go to ``sink(data, pts, keyframe, payload_type)`` undecoded."""

    def __init__(self, receiver, kind: str) -> None:
        from .passthrough import FrameAssembler

        self.receiver = receiver
        self.kind = kind
        self.sink = None
        self.on_end = None
        self.assembler = FrameAssembler(kind, self._emit, self.mime_of)
        self.decoder_queue = _IdleDecoderQueue(self._ended)
        self._codecs: dict = {}

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
    setattr(receiver, _R + "jitter_buffer", _JitterShim(tap.assembler))
    setattr(receiver, _R + "decoder_queue", tap.decoder_queue)
    receiver._livedesk_tap = tap
    return tap


def receiver_tap(receiver) -> ReceiverTap | None:
    return getattr(receiver, "_livedesk_tap", None)


def send_pli(receiver, tap: ReceiverTap) -> bool:
    """A PLI for the source's media SSRC through its receiver; False if none is known yet."""
    import asyncio

    ssrc = tap.assembler.ssrc
    if ssrc is None:
        return False
    asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))
    return True


def on_keyframe_request(sender, callback) -> None:
    """A PLI/FIR that ``sender`` receives calls ``callback()`` instead of flagging its encoder."""
    sender._send_keyframe = callback


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
