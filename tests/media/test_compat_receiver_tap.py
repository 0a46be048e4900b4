"""``gateway/media/aiortc_compat.py``: the aiortc hooks it relies on are still there (an
upgrade that moves one fails here, naming it), what each compensates for, and a call with
clients that number their SDP like Chromium and offer at the same moment."""

from __future__ import annotations

import asyncio
import struct

import pytest
from aiortc import (AudioStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpTransceiver,
                    rtp)
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

from gateway.media.compat import receiver_tap as compat
from tests.media.conftest import escalated, ring
from tests.media.rtc_client import GREEN, RED, ColourTrack, RtcClient, browser_numbered


def _pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


# --- the hooks ------------------------------------------------------------------------------

def test_hook_rtp_header_extension_parse_guard():
    hook = compat.HOOK_PARSE
    assert hasattr(rtp, "HeaderExtensionsMap") and hasattr(rtp.HeaderExtensionsMap, "get"), \
        f"aiortc changed: {hook} is gone; revisit aiortc_compat.install_parse_guard"
    assert compat.parse_guard_installed(), f"{hook} is not guarded"
    m = rtp.HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(
        id=1, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level")]))
    # id 1 carrying 3 bytes (e.g. another extension under a clashing id): aiortc's unpack
    # raises struct.error, which RTCDtlsTransport._handle_rtp_data does not catch
    with pytest.raises(struct.error):
        m.get.__wrapped__(m, 0xBEDE, bytes([0x12, 1, 2, 3]))
    with pytest.raises(ValueError):
        m.get(0xBEDE, bytes([0x12, 1, 2, 3]))
    assert m.get(0xBEDE, bytes([0x10, 0x85, 0, 0])).audio_level == (True, 5)


async def test_hook_create_offer_still_resets_negotiated_parameters():
    """If this fails, aiortc's createOffer no longer overwrites the transceivers' codecs
    (``HOOK_OFFER``): compat.create_offer's restore step may then be dropped."""
    hook = compat.HOOK_OFFER
    assert hasattr(RTCRtpTransceiver, "_get_mline_index"), \
        f"aiortc changed: {hook}: no RTCRtpTransceiver._get_mline_index"
    client, gw = _pc(), _pc()
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
        numbering = compat.Numbering.from_sdp(sdp)
        out = await compat.create_offer(gw, numbering)
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


async def test_hooks_encoded_passthrough():
    """Every aiortc internal the passthrough forwarder relies on is still there. If this
    fails, the message names the hook (see aiortc_compat.py, section 4)."""
    pc = _pc()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        missing = compat.missing_hooks(receiver)
        assert missing == [], f"aiortc changed: passthrough hooks missing: {missing}"
        tap = compat.tap_receiver(receiver, "video")
        assert compat.receiver_tap(receiver) is tap
        assert getattr(receiver, "_RTCRtpReceiver__jitter_buffer").assembler is tap.assembler
        assert getattr(receiver, "_RTCRtpReceiver__decoder_queue") is tap.decoder_queue
        sender = pc.addTransceiver("video", direction="sendonly").sender
        called = []
        compat.on_keyframe_request(sender, lambda: called.append(1))
        from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1,
                                                        media_ssrc=sender._ssrc))
        assert called == [1], f"{compat.HOOK_SEND_KEYFRAME}: a PLI no longer reaches it"
    finally:
        await pc.close()


async def test_tapped_receiver_yields_encoded_frames_through_aiortcs_own_receive_path():
    """A tapped receiver, driven through aiortc's ``_handle_rtp_packet`` (routing, RTX,
    NACK, depacketization stay aiortc's), hands complete VP8 frames to the sink and never
    creates a decoder; stopping it ends its track as aiortc does."""
    from aiortc import RTCRtpCodecParameters
    from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
    from aiortc.rtp import RtpPacket

    from aiortc import RTCRtpReceiver
    from aiortc.rtcrtpreceiver import RemoteStreamTrack

    class FakeTransport:  # what RTCRtpReceiver needs of an RTCDtlsTransport here
        state = "new"

        def _register_rtp_receiver(self, *a): ...

        def _unregister_rtp_receiver(self, *a): ...

    receiver = RTCRtpReceiver("video", FakeTransport())
    receiver._track = RemoteStreamTrack("video")
    tap = compat.tap_receiver(receiver, "video")
    got = []
    tap.sink = lambda data, pts, key, pt: got.append((data, pts, key, pt))
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[vp8]))
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


def test_renumber_drops_what_the_client_did_not_offer():
    client = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
              "m=video 9 UDP/TLS/RTP/SAVPF 120 121\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
              "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\n"
              "a=rtpmap:120 VP8/90000\r\na=rtpmap:121 rtx/90000\r\na=fmtp:121 apt=120\r\n")
    numbering = compat.Numbering.from_sdp(client)
    assert numbering.extensions == {"urn:ietf:params:rtp-hdrext:sdes:mid": 9}
    assert [c.payloadType for c in numbering.codecs["video"]] == [120, 121]


# --- a call with browser-numbered clients offering at the same moment -----------------------

async def test_browser_numbered_clients_offering_together_see_each_other(gw):
    """Both first offers are answered concurrently (race: each must still get the other's
    tracks), the gateway's re-offers follow right behind its answers (before DTLS is up:
    receivers start after createOffer), and both clients number like Chromium."""
    v, a, cid = await escalated(gw)
    for _ in range(3):
        call = await ring(v, a, cid)
        vc = RtcClient(v, "v1", RED, browser_numbering=True)
        ac = RtcClient(a, "a1", GREEN, browser_numbering=True)
        try:
            answers = await asyncio.gather(vc.start(call), ac.start(call))
            for ans in answers:  # the answer only takes the client's media
                assert ans["tracks"] == []
                assert "a=sendrecv" not in ans["sdp"] and "a=sendonly" not in ans["sdp"]
            await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED),
                                 vc.wait_audio("a1"), ac.wait_audio("v1"))
            assert not (vc.errors or ac.errors)
            # every gateway offer keeps the numbering the client chose...
            assert vc.offers and ac.offers
            for offer in vc.offers + ac.offers:
                sdp = offer["sdp"].splitlines()
                assert "a=rtpmap:111 opus/48000/2" in sdp and "a=rtpmap:96 VP8/90000" in sdp
                assert "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid" in sdp
                assert "a=rtpmap:96 opus/48000/2" not in sdp
            # ...and the gateway receives with it (aiortc reads the transceiver's codecs when
            # its receiver starts, which is after the gateway's first re-offer here; an aiortc
            # test client re-reads them too, so only this check sees a browser's view)
            for peer in gw.gw.media.peers():
                router = peer.pc.getTransceivers()[0].receiver.transport._rtp_router
                pts = {pt for pt, rs in router.payload_type_table.items() if rs}
                assert {111, 96, 97} <= pts and 98 not in pts, (peer.owner, pts)
            end = await v.request("call.hangup", call=call)
            assert end["state"] == "ended"
        finally:
            await vc.close()
            await ac.close()


# --- 5. RTP-level forwarding and the fast receive path ---------------------------------------

def test_hooks_rtp_forwarding_and_fast_receive():
    """Names every aiortc/aioice internal the RTP-level path writes around; an upgrade that
    changes one fails here, naming it (the fast receive path would also switch itself off)."""
    assert compat.forwarding_hooks_missing() == []
    assert compat.fast_receive_hooks_missing() == []


def test_hook_checks_name_what_an_upgrade_removed(monkeypatch):
    """The checks read aiortc's source; one that changes is reported by name (the cached
    results are for this aiortc; the uncached functions are called here)."""
    from aiortc import RTCRtpReceiver, RTCRtpSender

    async def changed(self, *a, **kw):  # an aiortc whose methods do something else
        return None

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", changed)
    monkeypatch.setattr(RTCRtpSender, "_run_rtcp", changed)
    fast = compat._fast_receive_hooks_missing.__wrapped__()
    assert any("remote_bitrate_estimator" in m for m in fast), fast
    fwd = compat._forwarding_hooks_missing.__wrapped__()
    assert compat.HOOK_SEND_SR in fwd and compat.HOOK_RECV_REMB in fwd, fwd


def _feed_estimators(seed: int):
    """The same packets (bursty frames, jittered arrivals, gaps) through aiortc's
    RemoteBitrateEstimator and through one made lean: every output must be equal."""
    import random

    from aiortc.rate import RemoteBitrateEstimator

    rnd = random.Random(seed)
    plain, lean = RemoteBitrateEstimator(), RemoteBitrateEstimator()
    compat.lean_bitrate_estimator(lean)
    assert type(lean.estimator).__name__ == "LeanOveruseEstimator"
    assert type(lean.incoming_bitrate).__name__ == "LeanRateCounter"
    out_plain, out_lean = [], []
    arrival = 1000
    for frame in range(1500):
        send_ms = frame * 33 + (rnd.randrange(0, 400) if rnd.random() < 0.01 else 0)
        ast = (send_ms * (1 << 18) // 1000) & 0xFFFFFF
        arrival += 33 + rnd.choice([0, 0, 0, 1, 3, 12, -2, 1500 if rnd.random() < 0.003 else 0])
        for k in range(rnd.randrange(1, 6)):
            args = dict(arrival_time_ms=arrival + k, abs_send_time=ast,
                        payload_size=rnd.randrange(200, 1200), ssrc=5)
            out_plain.append(plain.add(**args))
            out_lean.append(lean.add(**args))
    return out_plain, out_lean


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lean_bitrate_estimator_gives_aiortcs_numbers(seed):
    out_plain, out_lean = _feed_estimators(seed)
    assert any(r is not None for r in out_plain), "the run never produced an estimate"
    assert out_lean == out_plain


async def test_fast_receive_path_is_taken_and_leaves_the_receiver_consistent():
    """A tapped receiver on a connected pair: packets arrive through the socket callback
    (not aioice's queue), RTCP statistics count them (receiver reports stay true), the
    bitrate estimator runs."""
    from tests.media.rtc_client import ColourTrack

    a, b = _pc(), _pc()
    got = []
    taps = []

    def on_track(track):
        t = next(x for x in b.getTransceivers() if x.receiver.track is track)
        tap = compat.tap_receiver(t.receiver, track.kind)
        tap.on_packet = got.append
        taps.append(tap)

    b.on("track", on_track)
    try:
        a.addTrack(ColourTrack(RED))
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        for _ in range(200):
            if len(got) >= 30:
                break
            await asyncio.sleep(0.05)
        assert len(got) >= 30, "no RTP reached the tap"
        tap = taps[0]
        conn = tap.receiver.transport.transport._connection
        assert getattr(conn, "_livedesk_fast", False), "the fast receive path was not installed"
        assert conn._queue.qsize() == 0
        streams = tap._state["_RTCRtpReceiver__remote_streams"]
        assert sum(s.packets_received for s in streams.values()) >= len(got) - 1
        rbe = tap._state["_RTCRtpReceiver__remote_bitrate_estimator"]
        assert rbe.incoming_bitrate._total.count > 0
    finally:
        await a.close()
        await b.close()


def test_lean_rtp_parse_agrees_with_aiortc():
    """The fast path's parser reads what aiortc's does (header, CSRCs, padding, the
    abs-send-time and audio-level extensions in one- and two-byte form) and refuses what
    it refuses."""
    import random

    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    m = rtp.HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level")]))
    rnd = random.Random(5)
    for i in range(300):
        p = rtp.RtpPacket(payload_type=rnd.choice([96, 111]), sequence_number=rnd.randrange(65536),
                          timestamp=rnd.randrange(1 << 32), ssrc=rnd.randrange(1 << 32),
                          marker=rnd.randrange(2), payload=bytes(rnd.randrange(256)
                                                                 for _ in range(rnd.randrange(0, 40))))
        p.csrc = [rnd.randrange(1 << 32) for _ in range(rnd.randrange(0, 3))]
        if rnd.random() < 0.7:
            p.extensions.mid = str(rnd.randrange(10))
            p.extensions.abs_send_time = rnd.randrange(1 << 24) if rnd.random() < 0.8 else None
            p.extensions.audio_level = (bool(rnd.randrange(2)), rnd.randrange(128)) \
                if rnd.random() < 0.5 else None
        data = p.serialize(m)
        if rnd.random() < 0.2:  # padding
            pad = rnd.randrange(1, 9)
            data = bytes([data[0] | 0x20]) + data[1:] + bytes(pad - 1) + bytes([pad])
        ref = rtp.RtpPacket.parse(data, m)
        got = compat.parse_rtp(data, 3, 2)
        assert got is not None
        for f in ("marker", "payload_type", "sequence_number", "timestamp", "ssrc", "csrc",
                  "payload", "padding_size"):
            assert getattr(got, f) == getattr(ref, f), (i, f)
        assert got.extensions.abs_send_time == ref.extensions.abs_send_time
        assert got.extensions.audio_level == ref.extensions.audio_level
    # two-byte header form (profile 0x1000): id, length, value
    two = (bytes([0x90, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x10, 0x00, 0, 2])
           + bytes([3, 3, 1, 2, 3, 2, 1, 0x85]) + b"pl")
    got = compat.parse_rtp(two, 3, 2)
    assert got.extensions.abs_send_time == 0x010203 and got.extensions.audio_level == (True, 5)
    assert got.payload == b"pl"
    for bad in (b"\x80" * 11, bytes([0x40]) + bytes(11), bytes([0x83]) + bytes(11),
                bytes([0x90]) + bytes(11) + b"\xbe\xde\x00\x05",
                bytes([0xA0]) + bytes(11) + b"\x00\x09"):
        with pytest.raises(ValueError):
            rtp.RtpPacket.parse(bad, m)
        assert compat.parse_rtp(bad, 3, 2) is None, bad


def test_srtp_calls_match_pylibsrtps_own():
    """The per-packet SRTP calls give byte for byte what pylibsrtp's methods give, and
    refuse what they refuse (a replay, a forged tag)."""
    import os

    import pylibsrtp
    from pylibsrtp import Policy, Session

    key = os.urandom(30)
    tx_a = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    tx_b = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    protect, _ = compat.srtp_calls(tx_a)
    _, unprotect = compat.srtp_calls(rx)
    for i in range(50):
        plain = rtp.RtpPacket(payload_type=96, sequence_number=i, timestamp=i * 3000, ssrc=9,
                              payload=os.urandom(100 + i)).serialize()
        sealed = protect(plain)
        assert sealed == tx_b.protect(plain)
        assert unprotect(sealed) == plain
    with pytest.raises(pylibsrtp.Error):
        unprotect(sealed)  # replayed
    with pytest.raises(pylibsrtp.Error):
        unprotect(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(ValueError):
        protect(bytes(1500))
