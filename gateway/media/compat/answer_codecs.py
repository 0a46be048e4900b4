"""The codec the gateway prefers, first in its answer; the codec a client sends.

aiortc builds an answer from ``RTCRtpTransceiver._codecs`` as negotiated in
``setRemoteDescription``; ``setCodecPreferences`` only affects later offers, so the
answer's list is reordered in place (:func:`prefer_codec_in_answer`). The first non-RTX
codec of that list is the one the client will send (:func:`negotiated_codec`). Applied
per answer, by ``Peer``.
"""

from __future__ import annotations

from aiortc import RTCRtpTransceiver

from ..codecs import is_rtx

HOOK_ANSWER_CODECS = "aiortc.RTCRtpTransceiver._codecs"


def prefer_codec_in_answer(t: RTCRtpTransceiver, mime: str) -> None:
    """Put ``mime`` (e.g. ``video/vp8``) first in the codecs aiortc will answer with."""
    want = mime.lower()
    t._codecs.sort(key=lambda c: c.mimeType.lower() != want)


def negotiated_codec(t: RTCRtpTransceiver):
    """The codec the client sends on ``t``: the first non-RTX one of the answer."""
    return next((c for c in getattr(t, "_codecs", []) if not is_rtx(c)), None)

