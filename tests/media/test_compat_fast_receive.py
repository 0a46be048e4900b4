"""``gateway/media/compat/fast_receive.py``: what the fast receive path mirrors of aiortc
is still there (a changed one is reported by name and the path stays off), it is taken on a
connected pair and leaves the receiver consistent, and its parser reads what aiortc's
does."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import rtp

from gateway.media.compat import fast_receive
from gateway.media.compat.fast_receive import fast_receive_hooks_missing, parse_rtp
from gateway.media.compat.receiver_tap import tap_receiver
from tests.media.rtc_client import RED, bare_pc


def test_hooks_fast_receive():
    """Names every aiortc/aioice internal the fast receive path mirrors; an upgrade that
    changes one fails here, naming it (the path would also switch itself off)."""
    assert fast_receive_hooks_missing() == []


def test_hook_checks_name_what_an_upgrade_removed(monkeypatch):
    """The check reads aiortc's source; a change is reported by name (the cached result is
    for this aiortc; the uncached function is called here)."""
    from aiortc import RTCRtpReceiver

    async def changed(self, *a, **kw):  # an aiortc whose method does something else
        return None

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", changed)
    fast = fast_receive._fast_receive_hooks_missing.__wrapped__()
    assert any("remote_bitrate_estimator" in m for m in fast), fast


async def test_fast_receive_path_is_taken_and_leaves_the_receiver_consistent():
    """A tapped receiver on a connected pair: packets arrive through the socket callback
    (not aioice's queue), RTCP statistics count them (receiver reports stay true), the
    bitrate estimator runs."""
    from tests.media.rtc_client import ColourTrack

    a, b = bare_pc(), bare_pc()
    got = []
    taps = []

    def on_track(track):
        t = next(x for x in b.getTransceivers() if x.receiver.track is track)
        tap = tap_receiver(t.receiver, track.kind)
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

    from aiortc.rtcrtpparameters import (
        RTCRtpHeaderExtensionParameters,
        RTCRtpParameters,
    )

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
        got = parse_rtp(data, 3, 2)
        assert got is not None
        for f in ("marker", "payload_type", "sequence_number", "timestamp", "ssrc", "csrc",
                  "payload", "padding_size"):
            assert getattr(got, f) == getattr(ref, f), (i, f)
        assert got.extensions.abs_send_time == ref.extensions.abs_send_time
        assert got.extensions.audio_level == ref.extensions.audio_level
    # two-byte header form (profile 0x1000): id, length, value
    two = (bytes([0x90, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x10, 0x00, 0, 2])
           + bytes([3, 3, 1, 2, 3, 2, 1, 0x85]) + b"pl")
    got = parse_rtp(two, 3, 2)
    assert got.extensions.abs_send_time == 0x010203 and got.extensions.audio_level == (True, 5)
    assert got.payload == b"pl"
    for bad in (b"\x80" * 11, bytes([0x40]) + bytes(11), bytes([0x83]) + bytes(11),
                bytes([0x90]) + bytes(11) + b"\xbe\xde\x00\x05",
                bytes([0xA0]) + bytes(11) + b"\x00\x09"):
        with pytest.raises(ValueError):
            rtp.RtpPacket.parse(bad, m)
        assert parse_rtp(bad, 3, 2) is None, bad
