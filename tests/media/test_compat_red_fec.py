"""RED and ULPFEC in the gateway's answers (gateway/media/compat/red_fec.py): accepted from a
client that offers them when the forwarder repairs (passthrough, ``LIVEDESK_FEC=on``),
with the client's payload types; never in transcode mode, whose decoder cannot read RED."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection

from gateway.media.forward import make_forwarder
from gateway.media.peer import Peer

# what Chromium adds to its video m-line (its numbers): RED, RTX for RED, ULPFEC
EXTRA = {"118": "a=rtpmap:118 red/90000",
         "119": "a=rtpmap:119 rtx/90000\r\na=fmtp:119 apt=118",
         "120": "a=rtpmap:120 ulpfec/90000"}


async def chromium_like_offer(extra: dict[str, str]) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    lines = pc.localDescription.sdp.split("\r\n")
    out = []
    for line in lines:
        if line.startswith("m=video"):
            line += "".join(f" {pt}" for pt in extra)
        out.append(line)
        if line.startswith("a=rtcp-mux") and extra:
            out.extend("\r\n".join(extra.values()).split("\r\n"))
    return pc, "\r\n".join(out)


async def answer_for(mode: str, fec: bool, extra=EXTRA) -> tuple[str, Peer]:
    client, offer = await chromium_like_offer(extra)
    await client.close()

    async def on_offer(peer, sdp):  # the gateway does not offer in this test
        raise AssertionError("no gateway offer expected")

    peer = Peer("viewer", 1, make_forwarder(mode, fec=fec), on_offer)
    answer = await peer.answer(offer)
    return answer, peer


@pytest.mark.parametrize("mode,fec,expect", [("passthrough", True, True),
                                             ("passthrough", False, False),
                                             ("transcode", True, False)])
async def test_red_and_ulpfec_are_answered_only_where_the_gateway_repairs(mode, fec, expect):
    answer, peer = await answer_for(mode, fec)
    video = answer.split("m=video", 1)[1]
    for line in ("a=rtpmap:118 red/90000", "a=rtpmap:119 rtx/90000", "a=fmtp:119 apt=118",
                 "a=rtpmap:120 ulpfec/90000"):
        assert (line in video) is expect, (line, video)
    assert "VP8/90000" in video  # the media codec is still there, first
    first = video.split("\r\n", 1)[0].split()[3]
    assert first not in ("118", "119", "120")
    if expect:  # the receiver reads them (the tap unwraps RED, repairs with ULPFEC)
        t = peer.pc.getTransceivers()[0]
        assert {c.payloadType for c in t._codecs} >= {118, 119, 120}
    await peer.close()


async def test_red_without_ulpfec_is_not_answered():
    """RED alone protects nothing (libwebrtc then sends no parity): not accepted."""
    answer, peer = await answer_for("passthrough", True, {"118": EXTRA["118"]})
    assert "red/90000" not in answer
    await peer.close()


async def test_a_gateway_re_offer_keeps_red_and_ulpfec():
    """aiortc writes offers from its own table; without them the client's answer to a
    gateway re-offer (a host joining, a new m-line) would switch its sender back to
    unprotected VP8 mid-call."""
    from aiortc import RTCPeerConnection as PC
    from aiortc import RTCSessionDescription

    from gateway.media.compat.offer_numbering import create_offer

    client, offer = await chromium_like_offer(EXTRA)

    async def on_offer(peer, sdp):
        raise AssertionError("no gateway offer expected")

    peer = Peer("viewer", 1, make_forwarder("passthrough"), on_offer)
    answer = await peer.answer(offer)
    await client.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    again = await create_offer(peer.pc, peer.numbering)
    video = again.split("m=video", 1)[1]
    for line in ("a=rtpmap:118 red/90000", "a=fmtp:119 apt=118", "a=rtpmap:120 ulpfec/90000"):
        assert line in video, (line, video)
    assert video.split("\r\n", 1)[0].split()[3] not in ("118", "119", "120")
    # and the client still takes it (its parser, its numbering)
    other = PC()
    other.addTransceiver("video", direction="sendrecv")
    await other.setRemoteDescription(RTCSessionDescription(sdp=again, type="offer"))
    await other.close()
    await client.close()
    await peer.close()
