"""A tapped aiortc video receiver on a fake transport: the gateway's receive path (the
receiver tap, aiortc's own ``_handle_rtp_packet``) driven packet by packet, no network."""

from __future__ import annotations

from aiortc import RTCRtpCodecParameters, RTCRtpReceiver
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from gateway.media.compat.receiver_tap import ReceiverTap, tap_receiver


class FakeTransport:  # what RTCRtpReceiver needs of an RTCDtlsTransport here
    state = "new"

    def _register_rtp_receiver(self, *a): ...

    def _unregister_rtp_receiver(self, *a): ...


async def tapped_video_receiver() -> tuple[RTCRtpReceiver, ReceiverTap]:
    """A VP8 receiver (payload type 96), tapped and receiving; stop it with ``stop()``."""
    receiver = RTCRtpReceiver("video", FakeTransport())
    receiver._track = RemoteStreamTrack("video")
    tap = tap_receiver(receiver, "video")
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[vp8]))
    return receiver, tap
