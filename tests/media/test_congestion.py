"""Congestion feedback through the gateway, end to end: a destination's bandwidth estimate
(REMB) reaches the *source's* sender, so the source encodes for the slowest receiver.

Real aiortc clients on loopback. The agent (the destination of the viewer's video) reports a
low estimate for its copy — a REMB packet for the gateway's sender SSRC, as a browser on a
weak link sends — with its own estimator switched off so nothing overwrites it; the test
then reads what the viewer's ``RTCRtpSender`` receives (aiortc hands a REMB for its SSRC to
its encoder's ``target_bitrate``).
"""

from __future__ import annotations

import asyncio

from aiortc import sdp as sdp_module
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

from tests.media.conftest import one_to_one

LOW = 2_000  # bit/s: a value nothing else in the call would produce


def _remb_log(sender) -> list[int]:
    """Every REMB bitrate ``sender`` receives for its own SSRC (what aiortc acts on)."""
    seen: list[int] = []
    orig = sender._handle_rtcp_packet

    async def handle(packet):
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
            if sender._ssrc in ssrcs:
                seen.append(bitrate)
        return await orig(packet)

    sender._handle_rtcp_packet = handle
    return seen


def _ssrc_of(pc, mid: str) -> int:
    desc = sdp_module.SessionDescription.parse(pc.remoteDescription.sdp)
    media = next(m for m in desc.media if m.rtp.muxId == mid)
    return media.ssrc[0].ssrc


async def test_a_receivers_low_estimate_reaches_the_senders_encoder(gw):
    async with one_to_one(gw) as c:
        video_sender = next(s for s in c.vc.pc.getSenders() if s.kind == "video")
        seen = _remb_log(video_sender)
        mid = next(m for m, t in c.ac.tracks.items() if t["user"] == "v1" and t["kind"] == "video")
        receiver = next(t.receiver for t in c.ac.pc.getTransceivers() if t.mid == mid)
        receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # only our report counts
        gateway_ssrc = _ssrc_of(c.ac.pc, mid)
        remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1234, media_ssrc=0,
                              fci=pack_remb_fci(LOW, [gateway_ssrc]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 8.0
        while LOW not in seen:
            assert loop.time() < deadline, f"the viewer's sender never saw {LOW}: {seen}"
            await receiver._send_rtcp(remb)  # repeated like a browser's (≈ 1/s and on drops)
            await asyncio.sleep(0.1)
        # the value came from the destination (the gateway relays the receivers' minimum)
        key = next(k for k in gw.gw.media.forwarder.sources()
                   if k.owner == "v1" and k.kind == "video")
        assert gw.gw.media.forwarder._sources[key].sinks["a1"].remb == LOW
        # and aiortc's encoder took it (clamped to its floor of 250 kbit/s; it starts at 500)
        encoder = video_sender._RTCRtpSender__encoder
        assert encoder is not None and encoder.target_bitrate == 250_000
