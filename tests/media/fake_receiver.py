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


class FakeTransportWithExtensions(FakeTransport):
    """A fake transport whose header extension map says abs-send-time is ``ast_id``."""

    def __init__(self, ast_id: int) -> None:
        from aiortc.rtcrtpparameters import (
            RTCRtpHeaderExtensionParameters,
            RTCRtpParameters,
        )
        from aiortc.rtp import HeaderExtensionsMap

        self._rtp_header_extensions_map = HeaderExtensionsMap()
        self._rtp_header_extensions_map.configure(RTCRtpParameters(headerExtensions=[
            RTCRtpHeaderExtensionParameters(
                id=ast_id, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")]))


async def tapped_red_receiver(ast_id: int = 2) -> tuple[RTCRtpReceiver, ReceiverTap]:
    """A receiver negotiated as the gateway answers Chromium: VP8 96 (NACK), RED 118, its
    RTX 119, ULPFEC 120; tapped and receiving; stop it with ``stop()``."""
    from aiortc.rtcrtpparameters import RTCRtcpFeedback

    receiver = RTCRtpReceiver("video", FakeTransportWithExtensions(ast_id))
    receiver._track = RemoteStreamTrack("video")
    tap = tap_receiver(receiver, "video")
    nack = [RTCRtcpFeedback(type="nack")]
    codecs = [
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96,
                              rtcpFeedback=nack),
        RTCRtpCodecParameters(mimeType="video/red", clockRate=90000, payloadType=118),
        RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=119,
                              parameters={"apt": 118}),
        RTCRtpCodecParameters(mimeType="video/ulpfec", clockRate=90000, payloadType=120),
    ]
    await receiver.receive(RTCRtpReceiveParameters(codecs=codecs))
    return receiver, tap
