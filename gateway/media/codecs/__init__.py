"""What the gateway reads in the media it forwards, per codec, without decoding any of it.

Forwarding encoded media still needs a few facts from the bitstream: does this RTP packet
open a frame, does it open a key frame (a clean start for a new receiver), is this
reassembled frame a key frame. Each codec answers them in its own module (``vp8.py``,
``h264.py``), the way aiortc keeps its codecs apart; this module picks one by MIME type
(lower case, e.g. ``video/vp8``). Audio packets always stand alone.
"""

from __future__ import annotations

from . import h264, vp8

VP8 = "video/vp8"
H264 = "video/h264"


def is_rtx(codec) -> bool:
    """Is ``codec`` (an ``RTCRtpCodecParameters``) the retransmission format (RFC 4588)?"""
    return codec.mimeType.lower().endswith("/rtx")


def is_keyframe(mime: str, data: bytes) -> bool:
    """Does this complete encoded frame start a clean picture (needs no earlier frame)?"""
    mime = mime.lower()
    if mime == VP8:
        return vp8.is_keyframe(data)
    if mime == H264:
        return h264.is_keyframe(data)
    return True  # audio: every packet stands alone


def starts_frame(mime: str, payload: bytes) -> bool | None:
    """Does this RTP payload open a frame? ``None``: this codec cannot tell."""
    if mime == VP8:
        return vp8.starts_frame(payload)
    if mime == H264:
        return h264.starts_frame(payload)
    return None


def starts_keyframe(mime: str, payload: bytes) -> bool:
    """Does this RTP payload open a key frame (a clean start for a new receiver)?"""
    if not payload:
        return False
    if mime == VP8:
        return vp8.starts_keyframe(payload)
    if mime == H264:
        return h264.starts_keyframe(payload)
    return True  # audio: every packet stands alone
