"""VP8 as carried in RTP (RFC 7741): the payload descriptor and the frame tag.

Every RTP packet of a VP8 stream starts with a payload descriptor (1 to 6 bytes); the
packet that opens a frame has S=1 and PID=0, and right after its descriptor comes the
VP8 payload header, whose first bit (the frame tag's P bit, RFC 6386 §9.1) is clear for a
key frame. :func:`frame_start` is the one reader of the descriptor; everything else here
asks it.
"""

from __future__ import annotations


def frame_start(payload: bytes) -> int | None:
    """Where the VP8 payload header begins, if this packet opens a frame (S=1, PID=0);
    ``None`` for a packet that continues one (or an empty payload)."""
    if not payload:
        return None
    b = payload[0]
    if not (b & 0x10) or (b & 0x07):
        return None
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
    return i


def starts_frame(payload: bytes) -> bool:
    """Does this RTP payload open a frame (its first partition's first packet)?"""
    return frame_start(payload) is not None


def starts_keyframe(payload: bytes) -> bool:
    """Does this RTP payload open a key frame?"""
    i = frame_start(payload)
    return i is not None and len(payload) > i and not (payload[i] & 0x01)


def is_keyframe(frame: bytes) -> bool:
    """Is this depacketized frame a key frame (frame tag: P bit clear)?"""
    return bool(frame) and not (frame[0] & 0x01)
