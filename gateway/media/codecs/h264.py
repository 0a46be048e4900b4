"""H.264 as carried in RTP (RFC 6184) and as aiortc's depayloader hands it out (Annex B).

A key frame here is an access unit with an IDR slice or a sequence parameter set (SPS):
Chromium sends SPS/PPS (usually in one STAP-A) right before every IDR.
"""

from __future__ import annotations

NAL_SLICE = 1  # a non-IDR slice: a delta frame
NAL_IDR = 5
NAL_SPS = 7
NAL_AUD = 9
STAP_A = 24
FU_A = 28


def is_keyframe(access_unit: bytes) -> bool:
    """An Annex-B access unit (aiortc's depayloader output) containing an IDR slice or SPS."""
    i, n = 0, len(access_unit)
    while i < n:
        j = access_unit.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= n:
            return False
        nal = access_unit[j + 3] & 0x1F
        if nal in (NAL_IDR, NAL_SPS):
            return True
        if nal == NAL_SLICE:
            return False
        i = j + 3
    return False


def starts_frame(payload: bytes) -> bool:
    """RTP H.264 payload that can only open an access unit: STAP-A (SPS/PPS), SPS or AUD."""
    return bool(payload) and (payload[0] & 0x1F) in (STAP_A, NAL_SPS, NAL_AUD)


def starts_keyframe(payload: bytes) -> bool:
    """An SPS (alone or in a STAP-A), or the first packet of an IDR slice (single NAL or
    FU-A with S=1)."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (NAL_IDR, NAL_SPS):
        return True
    if nal == STAP_A:  # 2-byte sizes, each followed by a NAL unit
        i = 1
        while i + 2 < len(payload):
            size = int.from_bytes(payload[i:i + 2], "big")
            if payload[i + 2] & 0x1F in (NAL_IDR, NAL_SPS):
                return True
            i += 2 + size
        return False
    if nal == FU_A and len(payload) > 1:  # start of an IDR slice
        return bool(payload[1] & 0x80) and (payload[1] & 0x1F) == NAL_IDR
    return False
