"""``gateway/media/compat/offer_numbering.py``: aiortc's ``createOffer`` still resets the
negotiated parameters (so the restore step is still needed), gateway offers keep the
client's numbering, and a call with clients that number their SDP like Chromium and offer
at the same moment works."""

from __future__ import annotations

import asyncio

from aiortc import AudioStreamTrack, RTCRtpTransceiver

from gateway.media.compat.offer_numbering import HOOK_OFFER, Numbering, create_offer
from tests.media.conftest import escalated, ring
from tests.media.rtc_client import (
    GREEN,
    RED,
    ColourTrack,
    RtcClient,
    bare_pc,
    browser_numbered,
)


async def test_hook_create_offer_still_resets_negotiated_parameters():
    """If this fails, aiortc's createOffer no longer overwrites the transceivers' codecs
    (``HOOK_OFFER``): create_offer's restore step may then be dropped."""
    hook = HOOK_OFFER
    assert hasattr(RTCRtpTransceiver, "_get_mline_index"), \
        f"aiortc changed: {hook}: no RTCRtpTransceiver._get_mline_index"
    client, gw = bare_pc(), bare_pc()
    try:
        client.addTrack(AudioStreamTrack())
        client.addTrack(ColourTrack(RED))
        offer = await client.createOffer()
        await client.setLocalDescription(offer)
        sdp = browser_numbered(client.localDescription.sdp)
        await gw.setRemoteDescription(type(offer)(sdp=sdp, type="offer"))
        await gw.setLocalDescription(await gw.createAnswer())
        t_audio = gw.getTransceivers()[0]
        assert hasattr(t_audio, "_codecs") and hasattr(t_audio, "_headerExtensions"), hook
        assert t_audio._codecs[0].payloadType == 111
        before = (list(t_audio._codecs), list(t_audio._headerExtensions))
        await gw.createOffer()
        assert t_audio._codecs[0].payloadType != 111, \
            f"aiortc changed: {hook} keeps negotiated payload types now"
        # the gateway's way: same offer, negotiated parameters untouched, client numbering
        t_audio._codecs, t_audio._headerExtensions = before
        gw.addTransceiver("video", direction="sendonly")
        numbering = Numbering.from_sdp(sdp)
        out = await create_offer(gw, numbering)
        assert (t_audio._codecs, t_audio._headerExtensions) == before
        lines = out.splitlines()
        mlines = [l.split()[3:] for l in lines if l.startswith("m=")]
        assert mlines == [["111", "9", "0", "8"], ["96", "97", "102", "103", "108", "109"],
                          ["96", "97", "102", "103", "108", "109"]], mlines
        assert "a=rtpmap:111 opus/48000/2" in lines and "a=rtpmap:96 VP8/90000" in lines
        assert "a=rtpmap:96 opus/48000/2" not in lines and "a=rtpmap:97 VP8/90000" not in lines
        assert "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid" in lines
        assert "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level" in lines
        assert "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time" in lines
        assert not any(l.startswith(("a=extmap:3 ", "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes"))
                       for l in lines)
        new = gw.getTransceivers()[-1]
        assert new._codecs[0].payloadType == 96 and new._codecs[0].mimeType == "video/VP8"
    finally:
        await client.close()
        await gw.close()


def test_renumber_drops_what_the_client_did_not_offer():
    client = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
              "m=video 9 UDP/TLS/RTP/SAVPF 120 121\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
              "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\n"
              "a=rtpmap:120 VP8/90000\r\na=rtpmap:121 rtx/90000\r\na=fmtp:121 apt=120\r\n")
    numbering = Numbering.from_sdp(client)
    assert numbering.extensions == {"urn:ietf:params:rtp-hdrext:sdes:mid": 9}
    assert [c.payloadType for c in numbering.codecs["video"]] == [120, 121]


# --- a call with browser-numbered clients offering at the same moment -----------------------

async def test_browser_numbered_clients_offering_together_see_each_other(gw):
    """Both first offers are answered concurrently (race: each must still get the other's
    tracks), and both clients number like Chromium.

    Round 0: both send video: each answer already sends the other's media on the client's
    own m-lines (``sendrecv``, reserved for the source not published yet), so the call needs
    no gateway offer at all. Rounds 1-2: the agent sends audio only: the viewer's reserved
    video slot goes back to receiving and the agent gets the viewer's video on an m-line of
    a gateway offer, which follows right behind the answer (before DTLS is up: receivers
    start after createOffer) and keeps the client's numbering."""
    v, a, cid = await escalated(gw)
    for rnd in range(3):
        call = await ring(v, a, cid)
        vc = RtcClient(v, "v1", RED, browser_numbering=True)
        ac = RtcClient(a, "a1", GREEN, browser_numbering=True)
        try:
            answers = await asyncio.gather(vc.start(call), ac.start(call, video=rnd == 0))
            for ans, other in zip(answers, ("a1", "v1"), strict=True):
                assert ans["tracks"] and {t["user"] for t in ans["tracks"]} == {other}, ans
                assert "a=sendrecv" in ans["sdp"], ans["sdp"]
                lines = ans["sdp"].splitlines()
                assert "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid" in lines
            if rnd == 0:
                await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED),
                                     vc.wait_audio("a1"), ac.wait_audio("v1"))
                assert not vc.offers and not ac.offers, "one round: no gateway offer needed"
            else:
                await asyncio.gather(ac.wait_colour("v1", RED), vc.wait_audio("a1"),
                                     ac.wait_audio("v1"))
                assert ac.offers, "the viewer's video reached the agent on a gateway m-line"
                assert vc.offers, "the viewer's unused reserved video slot was re-offered"
            assert not (vc.errors or ac.errors)
            # every gateway offer keeps the numbering the client chose...
            for offer in vc.offers + ac.offers:
                sdp = offer["sdp"].splitlines()
                assert "a=rtpmap:111 opus/48000/2" in sdp
                assert "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid" in sdp
                assert "a=rtpmap:96 opus/48000/2" not in sdp
            for offer in vc.offers:  # (the audio-only agent chose no video numbering)
                assert "a=rtpmap:96 VP8/90000" in offer["sdp"].splitlines()
            # ...and the gateway receives with it (aiortc reads the transceiver's codecs when
            # its receiver starts, which is after the gateway's first re-offer here; an aiortc
            # test client re-reads them too, so only this check sees a browser's view)
            for peer in gw.gw.media.peers():
                router = peer.pc.getTransceivers()[0].receiver.transport._rtp_router
                pts = {pt for pt, rs in router.payload_type_table.items() if rs}
                want = {111, 96, 97} if peer.owner == "v1" or rnd == 0 else {111}
                assert want <= pts and 98 not in pts, (peer.owner, pts)
            end = await v.request("call.hangup", call=call)
            assert end["state"] == "ended"
        finally:
            await vc.close()
            await ac.close()
