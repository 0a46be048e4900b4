"""``gateway/media/compat/receiver_tap.py``: every aiortc internal the encoded passthrough
relies on is still there (an upgrade that moves one fails here, naming it), and a tapped
receiver hands out encoded frames without ever decoding."""

from __future__ import annotations

import asyncio

from gateway.media.compat.receiver_tap import missing_hooks, receiver_tap, tap_receiver
from gateway.media.compat.rtp_forwarding import HOOK_SEND_KEYFRAME, on_keyframe_request
from tests.media.fake_receiver import tapped_video_receiver
from tests.media.rtc_client import bare_pc


async def test_hooks_encoded_passthrough():
    """Every aiortc internal the passthrough forwarder relies on is still there. If this
    fails, the message names the hook (see compat/receiver_tap.py)."""
    pc = bare_pc()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        missing = missing_hooks(receiver)
        assert missing == [], f"aiortc changed: passthrough hooks missing: {missing}"
        tap = tap_receiver(receiver, "video")
        assert receiver_tap(receiver) is tap
        assert receiver._RTCRtpReceiver__jitter_buffer.assembler is tap.assembler
        assert receiver._RTCRtpReceiver__decoder_queue is tap.decoder_queue
        sender = pc.addTransceiver("video", direction="sendonly").sender
        called = []
        on_keyframe_request(sender, lambda: called.append(1))
        from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1,
                                                        media_ssrc=sender._ssrc))
        assert called == [1], f"{HOOK_SEND_KEYFRAME}: a PLI no longer reaches it"
    finally:
        await pc.close()


async def test_tapped_receiver_yields_encoded_frames_through_aiortcs_own_receive_path():
    """A tapped receiver, driven through aiortc's ``_handle_rtp_packet`` (routing, RTX,
    NACK, depacketization stay aiortc's), hands complete VP8 frames to the sink and never
    creates a decoder; stopping it ends its track as aiortc does."""
    from aiortc.rtp import RtpPacket

    receiver, tap = await tapped_video_receiver()
    got = []
    tap.sink = lambda data, pts, key, pt: got.append((data, pts, key, pt))
    for seq, marker, payload in ((10, 0, b"\x10\x00key-"), (11, 1, b"\x00rest")):
        p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=5000, ssrc=7,
                      marker=marker)
        p.payload = payload
        await receiver._handle_rtp_packet(p, arrival_time_ms=0)
    assert got == [(b"\x00key-rest", 0, True, 96)], got
    assert tap.decoder_queue.tasks == 0 and tap.assembler.ssrc == 7
    assert tap.mime_of(96) == "video/VP8" and tap.clock_rate(96) == 90000
    await receiver.stop()
    assert (await asyncio.wait_for(receiver._track._queue.get(), 2)) is None  # track ends
