"""Gateway offers keep the client's numbering (payload types and header-extension ids).

``RTCPeerConnection.createOffer`` resets every transceiver's codecs and header extensions
to aiortc's fixed tables (``aiortc.codecs.CODECS`` / ``HEADER_EXTENSIONS``: opus=96,
VP8=97, sdes:mid=1, ssrc-audio-level=2, abs-send-time=3), also for m-lines the client
negotiated with its own numbering (Chromium: opus=111, VP8=96, its own extmap ids).
Chromium refuses an offer that gives an extension id already in use in the BUNDLE another
URI, and it would start sending with the renumbered payload types, which the gateway's
already running receivers (their payload-type map is fixed when they start) cannot
decode. So every gateway offer is rewritten to the payload types and extmap ids the client
used in its first offer (:func:`renumber_offer`; codecs/extensions the client did not
offer are dropped: it could not accept them anyway). Uses ``aiortc.sdp`` (parse/serialise)
and ``aiortc.rtcpeerconnection.is_codec_compatible`` only.

And :func:`create_offer` undoes ``createOffer``'s side effect on the transceivers'
``_codecs``/``_headerExtensions`` (it resets them to aiortc's tables, and a receiver or
sender that starts later reads them: see its docstring). This was the root cause of "the
gateway receives nothing from a client whose first offer was answered just before a
gateway re-offer" and of the ``struct.error`` in ``rtp.py``. Applied per offer, by
``Peer``.
"""

from __future__ import annotations

import copy
import dataclasses

from aiortc import sdp as sdp_module
from aiortc.rtcpeerconnection import is_codec_compatible

from ..codecs import is_rtx
from .red_fec import restore_red_fec


class Numbering:
    """Payload types and header-extension ids a client used in its (first) offer."""

    def __init__(self, codecs: dict[str, list], extensions: dict[str, int]):
        self.codecs = codecs  # kind → [RTCRtpCodecParameters] with the client's payload types
        self.extensions = extensions  # uri → id (one mapping for the whole BUNDLE)

    @classmethod
    def from_sdp(cls, sdp: str) -> Numbering:
        return cls.from_description(sdp_module.SessionDescription.parse(sdp))

    @classmethod
    def from_description(cls, desc: sdp_module.SessionDescription) -> Numbering:
        """The same from an SDP already parsed (the gateway parses a client's offer once)."""
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


def _renumber_media(m, numbering: Numbering) -> None:
    ref = numbering.codecs.get(m.kind)
    if ref:
        pt_map: dict[int, int] = {}
        out = []
        for c in m.rtp.codecs:
            if is_rtx(c):
                continue
            match = next((r for r in ref if not is_rtx(r) and is_codec_compatible(c, r)
                          and r.payloadType not in pt_map.values()), None)
            if match is not None:
                pt_map[c.payloadType] = match.payloadType
        for c in m.rtp.codecs:
            if is_rtx(c):
                base = pt_map.get(c.parameters.get("apt"))
                r = next((r for r in ref if is_rtx(r) and r.parameters.get("apt") == base
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
        if any(not is_rtx(c) for c in out):  # else leave it: nothing better to offer
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
    desc = sdp_module.SessionDescription.parse(sdp)
    restored = False
    for t in pc.getTransceivers():
        i = t._get_mline_index()
        m = desc.media[i] if i is not None and i < len(desc.media) \
            and desc.media[i].kind == t.kind else None
        if t in saved:
            t._codecs, t._headerExtensions = saved[t]
            if m is not None:  # RED/ULPFEC accepted in the answer: kept (compat.red_fec)
                restored = restore_red_fec(m, t._codecs) or restored
        elif m is not None:
            t._codecs = list(m.rtp.codecs)
            t._headerExtensions = list(m.rtp.headerExtensions)
    return str(desc) if restored else sdp


def renumber_offer(sdp: str, numbering: Numbering | None) -> str:
    """``sdp`` (an aiortc offer) with the client's payload types and extmap ids."""
    if numbering is None:
        return sdp
    desc = sdp_module.SessionDescription.parse(sdp)
    for m in desc.media:
        if m.kind in ("audio", "video"):
            _renumber_media(m, numbering)
    return str(desc)
