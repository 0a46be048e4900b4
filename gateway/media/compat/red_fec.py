"""RED and ULPFEC accepted on video in the gateway's answers (aiortc knows neither).

aiortc answers only the codecs of its table ``aiortc.codecs.CODECS`` (``find_common_codecs``
in ``setRemoteDescription``), so a browser's ``red``/``ulpfec`` offer is dropped and its
sender protects nothing: every loss waits a round trip for a retransmission (docs/media.md,
"Forward error correction"). :func:`accept_red_fec` adds, on one receiving transceiver,
the client's own ``red``, its RTX (``apt`` = red) and ``ulpfec`` to the codecs the answer is
built from, with the client's payload types; the receiver tap then unwraps and repairs
(:mod:`gateway.media.ulpfec`). Only for a tapped receiver: aiortc's own decoder cannot
read RED. Applied per answer, by ``Peer``, when the forwarder repairs
(``Forwarder.repairs_fec``). Gateway re-offers carry them again (:func:`restore_red_fec`,
from ``create_offer``): aiortc writes offers from its own table, and an answer to an offer
without them would switch the client's sender back to unprotected media mid-call.
"""

from __future__ import annotations

from aiortc import RTCRtpTransceiver

HOOK_RED_FEC = "aiortc.RTCRtpTransceiver._codecs (the answer's codecs, the receiver's table)"


def accept_red_fec(t: RTCRtpTransceiver, offered) -> bool:
    """Add the offered RED, its RTX and ULPFEC (``offered``: the m-line's
    ``RTCRtpCodecParameters``) to ``t``'s answer; False if the client offered no pair or
    nothing else was agreed on."""
    codecs = getattr(t, "_codecs", None)
    if not isinstance(codecs, list):
        raise RuntimeError(f"aiortc changed: {HOOK_RED_FEC}; revisit compat.red_fec")
    if not codecs:
        return False
    red = next((c for c in offered if c.mimeType.lower() == "video/red"), None)
    fec = next((c for c in offered if c.mimeType.lower() == "video/ulpfec"), None)
    if red is None or fec is None:
        return False
    have = {c.payloadType for c in codecs}
    rtx = next((c for c in offered if c.mimeType.lower() == "video/rtx"
                and c.parameters.get("apt") == red.payloadType), None)
    for c in (red, rtx, fec):
        if c is not None and c.payloadType not in have:
            codecs.append(c)
    return True


def red_family(codecs) -> list:
    """RED, its RTX and ULPFEC among ``codecs`` (a transceiver's negotiated list)."""
    red = {c.payloadType for c in codecs if c.mimeType.lower() == "video/red"}
    return [c for c in codecs if c.payloadType in red
            or c.mimeType.lower() == "video/ulpfec"
            or (c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") in red)]


def restore_red_fec(media, codecs) -> bool:
    """Put the RED, its RTX and ULPFEC that a transceiver accepted (``codecs``, in the
    client's numbering) back into its m-line ``media`` (``aiortc.sdp.MediaDescription``)
    of a gateway offer; True if any was missing from it."""
    have = {c.payloadType for c in media.rtp.codecs}
    added = False
    for c in red_family(codecs):
        if c.payloadType not in have:
            media.rtp.codecs.append(c)
            media.fmt.append(c.payloadType)
            added = True
    return added
