"""``gateway/media/compat/answer_codecs.py``: reordering ``RTCRtpTransceiver._codecs``
after ``setRemoteDescription`` still decides the codec aiortc answers with, and the codec a
client sends is read from it."""

from __future__ import annotations

from aiortc import RTCSessionDescription

from gateway.media.compat.answer_codecs import (
    HOOK_ANSWER_CODECS,
    negotiated_codec,
    prefer_codec_in_answer,
)
from tests.media.rtc_client import RED, ColourTrack, bare_pc


async def test_hook_preferred_codec_is_first_in_the_answer():
    client, gw = bare_pc(), bare_pc()
    try:
        client.addTrack(ColourTrack(RED))
        await client.setLocalDescription(await client.createOffer())
        await gw.setRemoteDescription(RTCSessionDescription(
            sdp=client.localDescription.sdp, type="offer"))
        t = gw.getTransceivers()[0]
        assert hasattr(t, "_codecs"), f"aiortc changed: {HOOK_ANSWER_CODECS} is gone"
        assert negotiated_codec(t).mimeType.lower() == "video/vp8"  # aiortc's own order
        prefer_codec_in_answer(t, "video/H264")
        assert negotiated_codec(t).mimeType.lower() == "video/h264"
        await gw.setLocalDescription(await gw.createAnswer())
        m = next(l for l in gw.localDescription.sdp.splitlines() if l.startswith("m=video"))
        first = m.split()[3]
        assert f"a=rtpmap:{first} H264/90000" in gw.localDescription.sdp, \
            f"aiortc changed: {HOOK_ANSWER_CODECS} no longer orders the answer"
    finally:
        await client.close()
        await gw.close()
