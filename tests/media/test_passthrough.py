"""Encoded passthrough: the gateway forwards the participants' RTP payloads
untouched (only headers rewritten), never decoding them, relays keyframe requests upstream (rate-limited), gets a joiner a
keyframe, answers NACKs from what it sent, and falls back to decode + encode for exactly
the pairs whose codecs differ. The in-process clients decode what they get (colour test)."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
)

from gateway.media.assembler import FrameAssembler
from gateway.media.compat.receiver_tap import receiver_tap
from gateway.media.forward.passthrough import PassthroughForwarder
from gateway.media.tracks import RtpTrack
from tests.conftest import start_gateway, stop_gateway
from tests.media.conftest import (
    EscalatingStub,
    escalated,
    media_config,
    one_to_one,
    ring,
)
from tests.media.rtc_client import BLUE, GREEN, RED, RtcClient


@pytest.fixture
async def pgw():
    r = await start_gateway(media_config(media_mode="passthrough"), responder=EscalatingStub())
    try:
        yield r
    finally:
        await stop_gateway(r)


async def eventually(pred, timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, f"{what} not reached in time"
        await asyncio.sleep(0.02)


def gateway_sender(media, dest: str, owner: str, kind: str = "video"):
    """The gateway's RTCRtpSender that sends ``owner``'s ``kind`` to ``dest``."""
    for peer in media.peers():
        if peer.owner == dest:
            for s in peer.slots:
                if s.key is not None and s.key.owner == owner and s.key.kind == kind:
                    return s.key, s.transceiver.sender
    raise AssertionError(f"no sender {owner}→{dest} {kind}")


def count_keyframe_requests(client: RtcClient) -> list:
    """Spy on the client's own video sender: every PLI/FIR it receives is recorded."""
    sender = next(t.sender for t in client.pc.getTransceivers()
                  if t.kind == "video" and t.sender.track is not None)
    calls: list = []
    original = sender._send_keyframe

    def spy():
        calls.append(asyncio.get_running_loop().time())
        original()

    sender._send_keyframe = spy
    return calls


async def test_passthrough_delivers_encoded_frames_without_decoding(pgw):
    media = pgw.gw.media
    assert isinstance(media.forwarder, PassthroughForwarder)
    v, a, cid = await escalated(pgw)
    call = await ring(v, a, cid)
    vc = RtcClient(v, "v1", RED, browser_numbering=True)  # numbers its SDP like Chromium
    ac = RtcClient(a, "a1", GREEN)
    try:
        await vc.start(call)
        await ac.start(call)
        await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED),
                             vc.wait_audio("a1"), ac.wait_audio("v1"))
        fw = media.forwarder
        for peer in media.peers():
            for r in peer.received:
                tap = receiver_tap(r.receiver)
                assert tap is not None, f"{peer.owner} {r.key.kind}: receiver not tapped"
                assert tap.packets > 0
                assert tap.decoder_queue.tasks == 0, "a frame reached aiortc's decoder"
                assert tap.assembler.frames == 0, "frames were assembled (RTP-level expected)"
            for s in peer.slots:
                if s.key is None:
                    continue
                assert fw.pair_mode(s.key, peer.owner) == "passthrough"
                track = s.transceiver.sender.track
                assert isinstance(track, RtpTrack) and track.sent > 0
        # what goes out to the agent is the viewer's RTP payload, byte for byte, with the
        # agent sender's SSRC and negotiated payload type and consecutive sequence numbers
        key, sender = gateway_sender(media, "a1", "v1")
        src = fw._sources[key]
        sink = src.sinks["a1"]
        received: list[bytes] = []
        sent: list[RtpPacket] = []
        on_packet, write = src.tap.on_packet, sink.write

        def spy_in(p):
            received.append(p.payload)
            on_packet(p)

        def spy_out(data: bytes) -> bool:
            sent.append(RtpPacket.parse(data))
            return write(data)

        src.tap.on_packet, sink.write = spy_in, spy_out
        await eventually(lambda: len(sent) >= 20, what="forwarded packets")
        src.tap.on_packet, sink.write = on_packet, write
        assert [p.payload for p in sent] == received[:len(sent)]
        assert {p.ssrc for p in sent} == {sender._ssrc}
        assert {p.payload_type for p in sent} == {sink.pt}
        seqs = [p.sequence_number for p in sent]
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False)), seqs
        await ac.wait_colour("v1", RED)
        assert not (vc.errors or ac.errors)
    finally:
        await vc.close()
        await ac.close()


@pytest.mark.uvloop
async def test_passthrough_call_on_uvloop(pgw):
    """The production loop: the fast receive path and the RTP writer work on uvloop's
    datagram transports too (colours decoded both ways, packets forwarded)."""
    loop = asyncio.get_running_loop()
    assert type(loop).__module__.startswith("uvloop"), type(loop)
    media = pgw.gw.media
    v, a, cid = await escalated(pgw)
    call = await ring(v, a, cid)
    vc, ac = RtcClient(v, "v1", RED, browser_numbering=True), RtcClient(a, "a1", GREEN)
    try:
        await vc.start(call)
        await ac.start(call)
        await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED),
                             vc.wait_audio("a1"), ac.wait_audio("v1"))
        for peer in media.peers():
            for r in peer.received:
                conn = r.receiver.transport.transport._connection
                assert getattr(conn, "_livedesk_fast", False), "fast receive path not installed"
                assert conn._queue.qsize() == 0
            for s in peer.slots:
                if s.key is not None:
                    assert s.transceiver.sender.track.sent > 0
    finally:
        await vc.close()
        await ac.close()


async def test_downstream_pli_becomes_rate_limited_upstream_pli(pgw):
    media = pgw.gw.media
    async with one_to_one(pgw) as c:
        upstream = count_keyframe_requests(c.vc)
        key, sender = gateway_sender(media, "a1", "v1")
        await asyncio.sleep(0.6)  # past the start-up requests' rate limit
        base = len(upstream)
        stats0 = media.forwarder.source_stats(key)
        # the agent's side reports picture loss five times in a row (PLI, then FIR-like PLIs)
        for _ in range(5):
            await sender._handle_rtcp_packet(RtcpPsfbPacket(
                fmt=RTCP_PSFB_PLI, ssrc=1234, media_ssrc=sender._ssrc))
        await eventually(lambda: len(upstream) > base, what="upstream PLI")
        await asyncio.sleep(0.9)  # one more may follow at the end of the 500 ms interval
        stats = media.forwarder.source_stats(key)
        assert stats["keyframe_requests"] - stats0["keyframe_requests"] == 5
        assert 1 <= stats["pli_sent"] - stats0["pli_sent"] <= 2
        assert 1 <= len(upstream) - base <= 2, upstream
        await c.ac.wait_colour("v1", RED)  # and the picture goes on


async def test_joiner_gets_a_keyframe_promptly(pgw):
    """aiortc's encoder sends a keyframe only every 3000 frames: a host joining a running
    call sees the others only because the gateway asks them for a keyframe."""
    v, a, cid = await escalated(pgw)
    h = await pgw.client("host", "h1", room=pgw.room_id, name="Host")
    await h.request("ping")
    call = await ring(v, a, cid)
    vc, ac, hc = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN), RtcClient(h, "h1", BLUE)
    try:
        await vc.start(call)
        await ac.start(call)
        await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED))
        upstream = count_keyframe_requests(vc)
        await asyncio.sleep(0.8)
        assert (await a.request("call.invite", call=call, user="h1"))["type"] == "call.state"
        await h.event("call.incoming", call=call)
        await h.request("call.join", call=call)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await hc.start(call)
        await asyncio.gather(hc.wait_colour("v1", RED, timeout=5, min_frames=1),
                             hc.wait_colour("a1", GREEN, timeout=5, min_frames=1))
        took = loop.time() - t0
        assert upstream, "the joiner's arrival did not ask the viewer for a keyframe"
        assert took < 5
        await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED),
                             vc.wait_colour("h1", BLUE), ac.wait_colour("h1", BLUE))
    finally:
        for c in (vc, ac, hc):
            await c.close()


async def test_nack_is_answered_from_what_the_gateway_sent(pgw):
    """NACK/RTX keep working: the gateway's sender retransmits what it packetized."""
    media = pgw.gw.media
    async with one_to_one(pgw):
        key, sender = gateway_sender(media, "a1", "v1")
        sink = media.forwarder._sources[key].sinks["a1"]
        sent: list[RtpPacket] = []
        original = sink.write

        def spy(data: bytes) -> bool:
            sent.append(RtpPacket.parse(data))
            return original(data)

        sink.write = spy
        try:
            await eventually(lambda: any(p.ssrc == sender._ssrc for p in sent), what="video RTP")
            first = next(p for p in sent if p.ssrc == sender._ssrc)
            nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1234, media_ssrc=sender._ssrc)
            nack.lost = [first.sequence_number]
            await sender._handle_rtcp_packet(nack)
            rtx = [p for p in sent if p.ssrc == sender._rtx_ssrc]
            assert rtx, "no retransmission (RTX) for a NACKed packet"
            assert int.from_bytes(rtx[0].payload[:2], "big") == first.sequence_number
            assert rtx[0].payload[2:] == first.payload
            assert rtx[0].payload_type == sink.rtx_pt != sink.pt
            assert rtx[0].timestamp == first.timestamp
            # a sequence number it never sent (or that left its history) is not answered
            nack.lost = [(first.sequence_number - 5000) & 0xFFFF]
            n = len(sent)
            await sender._handle_rtcp_packet(nack)
            assert not [p for p in sent[n:] if p.ssrc == sender._rtx_ssrc]
        finally:
            sink.write = original


async def test_codec_mismatch_falls_back_to_transcoding_for_that_pair_only(pgw):
    """Viewer offers VP8 only, agent H.264 only, host both. Pairs with a common codec
    stay encoded (v→h VP8, a→h H.264, h→v VP8); a→v, v→a and h→a are transcoded."""
    media = pgw.gw.media
    v, a, cid = await escalated(pgw)
    h = await pgw.client("host", "h1", room=pgw.room_id, name="Host")
    await h.request("ping")
    call = await ring(v, a, cid)
    vc = RtcClient(v, "v1", RED, video_codecs=("VP8",), browser_numbering=True)
    ac = RtcClient(a, "a1", GREEN, video_codecs=("H264",))
    hc = RtcClient(h, "h1", BLUE)
    try:
        await vc.start(call)
        await ac.start(call)
        await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED))
        await a.request("call.invite", call=call, user="h1")
        await h.event("call.incoming", call=call)
        await h.request("call.join", call=call)
        await hc.start(call)
        await asyncio.gather(
            hc.wait_colour("v1", RED), hc.wait_colour("a1", GREEN),
            vc.wait_colour("h1", BLUE), vc.wait_colour("a1", GREEN),
            ac.wait_colour("h1", BLUE), ac.wait_colour("v1", RED),
            hc.wait_audio("v1"), ac.wait_audio("v1"))
        fw = media.forwarder
        modes = {}
        for peer in media.peers():
            for s in peer.slots:
                if s.key is not None:
                    modes[(s.key.owner, peer.owner, s.key.kind)] = fw.pair_mode(s.key, peer.owner)
        assert modes == {
            ("v1", "a1", "video"): "transcode", ("a1", "v1", "video"): "transcode",
            ("h1", "a1", "video"): "transcode",
            ("v1", "h1", "video"): "passthrough", ("a1", "h1", "video"): "passthrough",
            ("h1", "v1", "video"): "passthrough",
            **{(x, y, "audio"): "passthrough" for x in ("v1", "a1", "h1")
               for y in ("v1", "a1", "h1") if x != y},
        }, modes
        # the H.264 source reaches the host as H.264, untouched
        _, sender = gateway_sender(media, "h1", "a1")
        assert isinstance(sender.track, RtpTrack) and sender.track.mime == "video/h264"
        assert not (vc.errors or ac.errors or hc.errors)
    finally:
        for c in (vc, ac, hc):
            await c.close()


# --- the assembler, packet by packet --------------------------------------------------------

def _vp8(first: bool, key: bool, body: bytes = b"x") -> tuple[bytes, bytes]:
    """(RTP payload, depacketized data) for a VP8 packet."""
    desc = bytes([0x10 if first else 0x00])
    data = (bytes([0x00 if key else 0x01]) if first else b"") + body
    return desc + data, data


def _feed(asm: FrameAssembler, seq: int, ts: int, marker: bool, first: bool, key: bool = False):
    payload, data = _vp8(first, key)
    return asm.add(seq, ts, marker, 42, 96, data, payload)


def test_assembler_releases_a_frame_at_its_marker_and_waits_out_a_hole():
    out = []
    now = [0.0]
    asm = FrameAssembler("video", lambda d, pts, k, pt: out.append((pts, k)),
                         lambda pt: "video/VP8", max_wait_s=0.1, clock=lambda: now[0])
    _feed(asm, 100, 1000, False, True, key=True)
    assert out == []
    _feed(asm, 101, 1000, True, False)
    assert out == [(0, True)]  # released at the marker, not when the next frame starts
    # frame 2 loses its first packet; frame 3 is complete but must wait behind the hole
    _feed(asm, 103, 4000, True, False)
    _feed(asm, 104, 7000, True, True)
    assert out == [(0, True)]
    # the retransmission fills the hole: both frames leave at once, in order
    _feed(asm, 102, 4000, False, True)
    assert out == [(0, True), (3000, False), (6000, False)]
    # a hole nobody fills: after max_wait the assembler gives up, asks for a keyframe (PLI)
    # and releases no delta frame until a keyframe comes
    _feed(asm, 106, 10000, True, False)  # 105 lost
    now[0] = 0.2
    assert _feed(asm, 107, 13000, True, True) is True
    _feed(asm, 108, 16000, True, True)
    assert out[-1] == (6000, False)
    _feed(asm, 109, 19000, True, True, key=True)
    assert out[-1] == (18000, True) and asm.gaps == 1


def test_assembler_releases_audio_on_arrival():
    out = []
    asm = FrameAssembler("audio", lambda d, pts, k, pt: out.append(pts), lambda pt: "audio/opus")
    for _i, seq in enumerate((7, 8, 10, 9, 11)):
        asm.add(seq, 960 * (seq - 7), True, 1, 111, b"o", b"o")
    assert out == [0, 960, 2880, 3840]  # the late 9 is dropped, nothing waits


async def test_transcode_mode_still_forwards_decoded():
    """``media_mode=transcode`` keeps the decoded relay (aiortc decodes, senders encode)."""
    from gateway.media.forward.relay import RelayForwarder

    cfg_gw = await start_gateway(media_config(media_mode="transcode"), responder=EscalatingStub())
    try:
        media = cfg_gw.gw.media
        assert isinstance(media.forwarder, RelayForwarder)
        v, a, cid = await escalated(cfg_gw)
        call = await ring(v, a, cid)
        vc, ac = RtcClient(v, "v1", RED, browser_numbering=True), RtcClient(a, "a1", GREEN)
        try:
            await vc.start(call)
            await ac.start(call)
            await asyncio.gather(vc.wait_colour("a1", GREEN), ac.wait_colour("v1", RED))
            for peer in media.peers():
                for r in peer.received:
                    assert receiver_tap(r.receiver) is None  # aiortc decodes
        finally:
            await vc.close()
            await ac.close()
    finally:
        await stop_gateway(cfg_gw)


# --- the RTP-level sink, packet by packet -----------------------------------------------------

def test_starts_keyframe_reads_vp8_and_h264_payload_headers():
    from gateway.media.codecs import starts_keyframe

    # VP8: X=1,S=1,PID=0 | I=1 | 15-bit picture id | frame tag with P=0 (key) / P=1 (delta)
    assert starts_keyframe("video/vp8", bytes([0x90, 0x80, 0x80 | 0x12, 0x34, 0x00]))
    assert not starts_keyframe("video/vp8", bytes([0x90, 0x80, 0x80 | 0x12, 0x34, 0x01]))
    assert not starts_keyframe("video/vp8", bytes([0x80, 0x80, 0x12, 0x00]))  # S=0: not a start
    assert starts_keyframe("video/vp8", bytes([0x10, 0x9C]))  # no extension byte, key
    # H.264: STAP-A carrying SPS, FU-A start of an IDR, a plain non-IDR slice
    sps = bytes([0x67, 1, 2, 3])
    assert starts_keyframe("video/h264", bytes([24]) + len(sps).to_bytes(2, "big") + sps)
    assert starts_keyframe("video/h264", bytes([28, 0x80 | 5, 9]))
    assert not starts_keyframe("video/h264", bytes([28, 5, 9]))  # FU-A continuation
    assert not starts_keyframe("video/h264", bytes([0x41, 9]))
    assert starts_keyframe("audio/opus", b"\x01")


class _FakeSender:
    def __init__(self):
        self._ssrc, self._rtx_ssrc = 1111, 2222
        self.transport = None
        for n in ("ntp_timestamp", "rtp_timestamp", "octet_count", "packet_count"):
            setattr(self, "_RTCRtpSender__" + n, 0)


def _sink(kind="video", rtx=True, asks=None):
    from aiortc.rtcrtpparameters import (
        RTCRtpCodecParameters,
        RTCRtpHeaderExtensionParameters,
        RTCRtpSendParameters,
    )

    from gateway.media.rtp_sink import URI_ABS_SEND_TIME, URI_MID, RtpSink

    asks = asks if asks is not None else []
    sink = RtpSink(kind, "video/VP8" if kind == "video" else "audio/opus",
                   lambda: asks.append(1), now=lambda: 0x1234_5678_9ABC_DEF0)
    sink.sender = _FakeSender()
    sink._sender_state = sink.sender.__dict__
    sink.ssrc, sink.rtx_ssrc = 1111, 2222
    codecs = [RTCRtpCodecParameters(mimeType="video/VP8" if kind == "video" else "audio/opus",
                                    clockRate=90000 if kind == "video" else 48000,
                                    payloadType=96 if kind == "video" else 111)]
    if rtx:
        codecs.append(RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97,
                                            parameters={"apt": codecs[0].payloadType}))
    sink._configure(RTCRtpSendParameters(codecs=codecs, muxId="3", headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID),
        RTCRtpHeaderExtensionParameters(id=2, uri=URI_ABS_SEND_TIME)]))
    out: list = []
    sink.write = lambda data: out.append(RtpPacket.parse(data, _ext_map())) or True
    return sink, out


def _ext_map():
    from aiortc.rtcrtpparameters import (
        RTCRtpHeaderExtensionParameters,
        RTCRtpParameters,
    )

    from gateway.media.rtp_sink import URI_ABS_SEND_TIME, URI_MID

    m = HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID),
        RTCRtpHeaderExtensionParameters(id=2, uri=URI_ABS_SEND_TIME)]))
    return m


KEY = bytes([0x90, 0x80, 0x80, 0x01, 0x00]) + b"key"
DELTA = bytes([0x90, 0x80, 0x80, 0x02, 0x01]) + b"delta"


def test_sink_starts_at_a_keyframe_and_keeps_the_sources_gaps_and_order():
    asks: list = []
    sink, out = _sink(asks=asks)
    n0 = len(asks)  # _configure asked for a keyframe already (a joiner starts on one)
    sink.forward(7, 100, 9000, True, DELTA, None)
    assert out == [] and len(asks) == n0 + 1, "a delta frame before any keyframe: wait, ask"
    sink.forward(7, 101, 12000, False, KEY, None)
    sink.forward(7, 102, 12000, True, b"rest-of-key", False)
    sink.forward(7, 104, 15000, True, DELTA, False)  # 103 lost upstream
    sink.forward(7, 103, 15000, False, b"late", False)  # …and arrives late
    seqs = [p.sequence_number for p in out]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == [0, 1, 3, 2]
    assert [p.payload for p in out] == [KEY, b"rest-of-key", DELTA, b"late"]
    assert {p.ssrc for p in out} == {1111} and {p.payload_type for p in out} == {96}
    assert [p.marker for p in out] == [0, 1, 1, 0]
    assert (out[2].timestamp - out[0].timestamp) & 0xFFFFFFFF == 3000
    assert {p.extensions.mid for p in out} == {"3"}
    assert {p.extensions.abs_send_time for p in out} == {(0x1234_5678_9ABC_DEF0 >> 14) & 0xFFFFFF}
    sender = sink.sender
    assert sender._RTCRtpSender__packet_count == 4
    assert sender._RTCRtpSender__octet_count == sum(len(p.payload) for p in out)
    sink.forward(7, 99, 9000, True, DELTA, False)  # from before the start: never sent
    assert len(out) == 4


def test_sink_continues_its_numbering_when_the_source_restarts():
    sink, out = _sink()
    sink.forward(7, 500, 1000, True, KEY, True)
    sink.forward(7, 501, 4000, True, DELTA, False)
    sink.forward(8, 20, 777, True, DELTA, None)  # new SSRC, delta: wait for a key frame
    assert len(out) == 2
    sink.forward(8, 21, 3777, True, KEY, None)
    assert len(out) == 3 and sink.restarts == 1
    assert (out[2].sequence_number - out[1].sequence_number) & 0xFFFF == 1


def test_sink_answers_nacks_from_its_history_as_rtx():
    sink, out = _sink()
    sink.forward(7, 1, 1000, True, KEY, True)
    sink.forward(7, 2, 4000, True, DELTA, False)
    first = out[0]
    sink.retransmit(first.sequence_number)
    rtx = out[-1]
    assert (rtx.ssrc, rtx.payload_type) == (2222, 97)
    assert rtx.payload == first.sequence_number.to_bytes(2, "big") + KEY
    assert rtx.timestamp == first.timestamp and sink.retransmitted == 1
    sink.retransmit((first.sequence_number + 100) & 0xFFFF)  # never sent
    assert sink.retransmitted == 1
    plain, out2 = _sink(rtx=False)  # no RTX negotiated: the packet itself again
    plain.forward(7, 1, 1000, True, KEY, True)
    plain.retransmit(out2[0].sequence_number)
    assert out2[-1].sequence_number == out2[0].sequence_number and out2[-1].payload == KEY


def test_upstream_remb_is_the_lowest_estimate_and_throttled():
    from gateway.media.forward.passthrough import Source

    fw = PassthroughForwarder()
    src = Source(None, None, None, None, None, None)  # type: ignore[arg-type]
    a, _ = _sink()
    b, _ = _sink()
    src.sinks = {"a": a, "b": b}
    assert fw._upstream_remb(src, 2_000_000, [7]) is None  # nobody reported yet: nothing
    assert fw._upstream_remb(src, 2_100_000, [7]) is None  # within 0.5 s and not lower
    a._on_remb(900_000)
    b._on_remb(1_500_000)
    assert fw._upstream_remb(src, 2_000_000, [7]) == 900_000  # the first report: at once
    assert fw._upstream_remb(src, 1_000_000, [7]) is None  # same value, inside the interval
    src.remb_sent = (src.remb_sent[0] - 1.0, src.remb_sent[1])
    assert fw._upstream_remb(src, 3_000_000, [7]) == 900_000  # interval over: refreshed
    src.remb_sent = (src.remb_sent[0] - 1.0, src.remb_sent[1])
    # the gateway's own (event-loop-timed) estimate is never the value
    assert fw._upstream_remb(src, 50_000, [7]) == 900_000


def test_the_sources_abs_send_time_goes_through_unchanged():
    """The destination's estimator then measures the whole path from the source."""
    sink, out = _sink()
    sink.forward(7, 1, 1000, True, KEY, True, ast=0x12_3456)
    sink.forward(7, 2, 4000, True, DELTA, False)  # none from the source: the gateway's clock
    assert out[0].extensions.abs_send_time == 0x12_3456
    assert out[1].extensions.abs_send_time == (0x1234_5678_9ABC_DEF0 >> 14) & 0xFFFFFF


def test_a_destination_that_starts_late_gets_the_cached_key_frame_at_once():
    """Call set-up: the source's first key frame reaches the gateway before the other
    side's sender has started; that side starts on the cached key frame (and what followed
    it) with the next packet, instead of waiting for a PLI and a new key frame."""
    import time
    from types import SimpleNamespace

    from gateway.media.forward import passthrough as pt
    from gateway.media.forward.passthrough import Source
    from gateway.media.forward.seam import SourceKey

    fw = PassthroughForwarder()
    src = Source(SourceKey("v", "video", "1"), None, None, None, None, None)  # type: ignore[arg-type]
    src.mimes = {96: "video/vp8"}
    src.gop_until = time.monotonic() + pt.GOP_CACHE_S
    sink, out = _sink()
    write, sink.write = sink.write, None  # its sender has not started yet
    src.sinks = {"a": sink}

    def packet(seq, payload, marker=False):
        return SimpleNamespace(sequence_number=seq, ssrc=7, timestamp=3000 * (seq // 3),
                               marker=marker, payload=payload, payload_type=96,
                               extensions=SimpleNamespace(abs_send_time=None, audio_level=None))

    fw._on_packet(src, packet(10, KEY))
    fw._on_packet(src, packet(11, b"rest-of-key", marker=True))
    fw._on_packet(src, packet(12, DELTA, marker=True))
    assert out == [] and not sink.started
    sink.write = write  # the destination's sender starts
    fw._on_packet(src, packet(13, DELTA, marker=True))
    assert sink.started
    assert [p.payload for p in out] == [KEY, b"rest-of-key", DELTA, DELTA]
    seqs = [p.sequence_number for p in out]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(4)]  # numbering continues

    # an old key frame is not replayed: the late sink waits for a fresh one
    late, out2 = _sink()
    src.sinks["b"] = late
    src.gop_t -= pt.GOP_MAX_AGE_S + 0.1
    fw._on_packet(src, packet(14, DELTA, marker=True))
    assert out2 == [] and not late.started
