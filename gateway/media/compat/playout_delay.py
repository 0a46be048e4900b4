"""The ``playout-delay`` RTP header extension is negotiated on video (aiortc does not know it).

A destination behind the gateway measures the round trip of its own leg only (~1 ms on a
LAN), so its jitter buffer plans for retransmissions that take that long; a packet the
gateway recovers from a lossy source a round trip later arrives after its frame was due,
and the picture freezes (docs/media.md, "Playout delay").
libwebrtc receivers take a minimum playout delay from this extension
(``http://www.webrtc.org/experiments/rtp-hdrext/playout-delay``: 12-bit minimum and maximum
in 10 ms units), so the gateway can tell them how long the path behind it is
(:class:`~gateway.media.rtp_sink.RtpSink` writes it; ``LIVEDESK_PLAYOUT_DELAY=off``: never).

aiortc answers and offers only the header extensions in its table
``aiortc.codecs.HEADER_EXTENSIONS`` (and ignores the values of ones it does not parse), so
the URI is added to its video list once per process, here; offers keep the client's id
(:mod:`.offer_numbering`). A client that does not offer it does not get it.
"""

from __future__ import annotations

from aiortc import codecs
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

URI_PLAYOUT_DELAY = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
HOOK_EXTENSIONS = "aiortc.codecs.HEADER_EXTENSIONS (the extensions aiortc negotiates)"
_ID = 6  # in aiortc's own offers (1 mid, 2 audio level, 3 abs-send-time); answers use the offer's


def install_playout_delay_extension() -> None:
    """Negotiate playout-delay on video from now on (idempotent)."""
    table = getattr(codecs, "HEADER_EXTENSIONS", None)
    video = table.get("video") if isinstance(table, dict) else None
    if not isinstance(video, list):
        raise RuntimeError(f"aiortc changed: {HOOK_EXTENSIONS}; revisit compat.playout_delay")
    if not any(x.uri == URI_PLAYOUT_DELAY for x in video):
        assert all(x.id != _ID for ext in codecs.HEADER_EXTENSIONS.values() for x in ext)
        video.append(RTCRtpHeaderExtensionParameters(id=_ID, uri=URI_PLAYOUT_DELAY))


def playout_delay_negotiated() -> bool:
    return any(x.uri == URI_PLAYOUT_DELAY for x in codecs.HEADER_EXTENSIONS.get("video", []))
