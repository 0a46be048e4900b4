"""``gateway/media/codecs``: what the forwarder reads in VP8 and H.264 without decoding."""

from __future__ import annotations

from gateway.media import codecs
from gateway.media.codecs import h264, vp8


def test_vp8_descriptor_is_read_once_for_frame_start_and_keyframe():
    # S=1, PID=0, no extension: the payload header follows at once
    assert vp8.frame_start(bytes([0x10, 0x9C])) == 1
    # X=1 | I=1 with a 15-bit picture id | L=1 | T=1: 1 + 1 + 2 + 1 + 1 bytes of descriptor
    assert vp8.frame_start(bytes([0x90, 0x80 | 0x40 | 0x20, 0x80 | 0x12, 0x34, 7, 0x40,
                                  0x00])) == 6
    assert vp8.frame_start(bytes([0x90, 0x80, 0x12, 0x00])) == 3  # 7-bit picture id
    assert vp8.frame_start(bytes([0x00, 0x00])) is None  # S=0: continues a frame
    assert vp8.frame_start(bytes([0x11, 0x00])) is None  # PID=1: not the first partition
    assert vp8.frame_start(b"") is None
    for b0 in range(256):  # "opens a frame" only needs the first byte
        payload = bytes([b0, 0x80, 0x80, 0x01, 0x00])
        assert vp8.starts_frame(payload) == bool(b0 & 0x10 and not b0 & 0x07)
        assert vp8.starts_keyframe(payload) == vp8.starts_frame(payload)  # P=0 at [4]
    assert not vp8.starts_keyframe(bytes([0x90, 0x80, 0x80, 0x01, 0x01]))  # P=1: delta
    assert not vp8.starts_keyframe(bytes([0x90, 0x80, 0x80, 0x01]))  # no payload header
    assert vp8.is_keyframe(b"\x00rest") and not vp8.is_keyframe(b"\x01") and \
        not vp8.is_keyframe(b"")


def test_h264_access_units_and_rtp_payloads():
    sps, idr, slice_ = b"\x00\x00\x01\x67\x01", b"\x00\x00\x01\x65\x02", b"\x00\x00\x01\x41\x03"
    assert h264.is_keyframe(sps + idr) and h264.is_keyframe(b"\x00\x00\x00\x01\x65\x02")
    assert not h264.is_keyframe(slice_ + idr)  # the first slice decides: a delta frame
    assert not h264.is_keyframe(b"") and not h264.is_keyframe(b"\x00\x00\x01")
    assert h264.starts_frame(bytes([24, 0, 1])) and h264.starts_frame(bytes([0x67]))
    assert h264.starts_frame(bytes([0x09])) and not h264.starts_frame(bytes([28, 0x85]))


def test_dispatch_by_mime_type():
    key_vp8 = bytes([0x10, 0x00])
    assert codecs.starts_keyframe("video/vp8", key_vp8)
    assert codecs.starts_frame("video/vp8", key_vp8) is True
    assert codecs.starts_frame("video/h264", bytes([0x41])) is False
    assert codecs.starts_frame("audio/opus", b"\x01") is None  # cannot tell
    assert codecs.starts_keyframe("audio/opus", b"\x01") and not codecs.starts_keyframe(
        "audio/opus", b"")
    assert codecs.is_keyframe("VIDEO/VP8", b"\x00") and codecs.is_keyframe("audio/opus", b"")
    assert codecs.is_keyframe("video/H264", b"\x00\x00\x01\x67")


def test_is_rtx():
    from aiortc import RTCRtpCodecParameters

    assert codecs.is_rtx(RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000,
                                               payloadType=97))
    assert not codecs.is_rtx(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000,
                                                   payloadType=96))
