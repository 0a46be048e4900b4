"""The playout-delay extension: negotiated on video (``compat/playout_delay.py``), asked of
a lossy source's destinations with the source's round trip (``nack_retry.py``), written by
the sink on every packet while asked (``rtp_sink.py``)."""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.rtp import unpack_header_extensions

from gateway.media.compat.playout_delay import (
    URI_PLAYOUT_DELAY,
    playout_delay_negotiated,
)
from gateway.media.nack_retry import DELAY_HOLD_MS, LOSSES_FOR_DELAY, NackRetries
from tests.media.test_passthrough import DELTA, KEY, _sink


async def test_an_answer_keeps_the_offers_playout_delay_id():
    assert playout_delay_negotiated()
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        offerer.addTransceiver("video", direction="sendrecv")
        await offerer.setLocalDescription(await offerer.createOffer())
        offer = offerer.localDescription
        assert f" {URI_PLAYOUT_DELAY}" in offer.sdp
        lines = [ln for ln in offer.sdp.splitlines() if URI_PLAYOUT_DELAY not in ln]
        sdp = "\r\n".join(lines).replace("a=mid:", f"a=extmap:12 {URI_PLAYOUT_DELAY}\r\na=mid:", 1)
        await answerer.setRemoteDescription(type(offer)(sdp=sdp + "\r\n", type="offer"))
        answer = await answerer.createAnswer()
        assert f"a=extmap:12 {URI_PLAYOUT_DELAY}" in answer.sdp, answer.sdp
    finally:
        await offerer.close()
        await answerer.close()


def test_a_lossy_source_asks_for_its_round_trip_and_a_clean_one_for_nothing():
    r = NackRetries()
    for i in range(LOSSES_FOR_DELAY - 1):
        r.sent([i], i * 1000)
        r.arrived(i, i * 1000 + 120)
    assert r.playout_ms == 0  # a loss or two: not yet (libwebrtc waits for 3 as well)
    r.sent([50], 5000)
    assert r.playout_ms == -int(-r.rtt_ms // 10) * 10 > 100  # learned ~120 ms, rounded up
    r.arrived(50, 5130)
    assert r.playout_ms == -int(-r.rtt_ms // 10) * 10
    r.expire(5000 + DELAY_HOLD_MS)
    assert r.playout_ms > 0  # still within the hold
    r.expire(5001 + DELAY_HOLD_MS)
    assert r.playout_ms == 0 and r.losses == 0  # clean for a minute: gone
    r2 = NackRetries()
    for i in range(LOSSES_FOR_DELAY):  # losses far apart do not add up
        r2.sent([i], i * (DELAY_HOLD_MS + 1))
    assert r2.playout_ms == 0


def _playout_element(data: bytes, ext_id: int) -> bytes | None:
    """The value of header extension ``ext_id`` in an RTP packet, if present (aiortc's own
    RFC 8285 element parser; its packet parser drops extensions it does not know)."""
    assert data[0] & 0x10, "no header extension"
    at = 12 + 4 * (data[0] & 0x0F)
    profile = int.from_bytes(data[at:at + 2], "big")
    end = at + 4 + 4 * int.from_bytes(data[at + 2:at + 4], "big")
    return dict(unpack_header_extensions(profile, data[at + 4:end])).get(ext_id)


def test_the_sink_writes_the_asked_delay_only_when_negotiated_and_asked():
    from aiortc.rtcrtpparameters import (
        RTCRtpCodecParameters,
        RTCRtpHeaderExtensionParameters,
        RTCRtpSendParameters,
    )

    sink, _ = _sink()
    raw: list[bytes] = []
    sink.write = lambda data: raw.append(data) or True
    sink.forward(7, 100, 9000, True, KEY, True)
    assert sink._pd_id == 0  # not negotiated (the fixture's parameters): nothing written
    sink.set_playout_delay(130)
    sink.forward(7, 101, 12000, True, DELTA, False)
    assert _playout_element(raw[-1], 9) is None
    params = RTCRtpSendParameters(
        codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)],
        muxId="3", headerExtensions=[RTCRtpHeaderExtensionParameters(id=9, uri=URI_PLAYOUT_DELAY)])
    sink._configure(params)  # negotiated now; the asked delay is kept
    sink.forward(7, 102, 15000, True, DELTA, False)
    value = _playout_element(raw[-1], 9)
    assert value is not None and len(value) == 3
    bits = int.from_bytes(value, "big")
    assert (bits >> 12, bits & 0xFFF) == (13, 0xFFF)  # min 130 ms, max uncapped (10 ms units)
    sink.set_playout_delay(0)  # the source is clean again
    sink.forward(7, 103, 18000, True, DELTA, False)
    assert _playout_element(raw[-1], 9) is None


def test_the_forwarder_asks_a_lossy_sources_destinations_and_stops_when_it_is_clean():
    from types import SimpleNamespace

    from gateway.media.forward.passthrough import PassthroughForwarder, Source
    from gateway.media.forward.seam import SourceKey

    fw = PassthroughForwarder()
    retries = NackRetries()
    tap = SimpleNamespace(nack_retries=retries)
    src = Source(SourceKey("v", "video", "1"), None, None, None, tap, None)  # type: ignore[arg-type]
    src.mimes = {96: "video/vp8"}
    sink, _ = _sink()
    src.sinks = {"agent": sink}

    def packet(seq, payload):
        return SimpleNamespace(sequence_number=seq, ssrc=7, timestamp=3000 * seq, marker=True,
                               payload=payload, payload_type=96,
                               extensions=SimpleNamespace(abs_send_time=None, audio_level=None))

    fw._on_packet(src, packet(1, KEY))
    assert sink.playout_ms == 0  # a clean source: nothing asked
    for i in range(LOSSES_FOR_DELAY):
        retries.sent([100 + i], i * 100)
    fw._on_packet(src, packet(2, DELTA))
    assert sink.playout_ms == retries.playout_ms == 100  # the default round trip, no sample yet
    retries.expire(LOSSES_FOR_DELAY * 100 + DELAY_HOLD_MS)
    fw._on_packet(src, packet(3, DELTA))
    assert sink.playout_ms == 0
