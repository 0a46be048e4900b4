"""RED/ULPFEC on the gateway's receive side (gateway/media/ulpfec.py, the receiver tap):
a lost packet rebuilt from Chromium's own parity, byte for byte; the destinations numbered
without the parity packets; what a hostile sender can do to it.

The fixture is real: packets Chromium 156 sent the gateway on a lossy link (see its
``about``), so the rebuild is checked against libwebrtc's encoder, not against our own
reading of RFC 5109."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

from aiortc.rtp import RtpPacket

from gateway.media.compat.fast_receive import parse_rtp
from gateway.media.ulpfec import FecDecoder, SeqCompactor, unred, zero_extensions
from tests.media.fake_receiver import tapped_red_receiver

FIXTURE = json.loads((Path(__file__).parent / "data" / "chromium_red_ulpfec.json").read_text())
GROUPS = [[base64.b64decode(x) for x in g] for g in FIXTURE["groups"]]
AST = FIXTURE["abs_send_time_id"]


def _parse(raw: bytes):
    p = parse_rtp(raw, AST, None)
    assert p is not None
    return p


def _block(raw: bytes) -> tuple[int, bytes]:
    """(payload type, payload) inside a RED packet of the fixture."""
    got = unred(_parse(raw).payload)
    assert got is not None
    return got


class Wire:
    """A tapped RED receiver and what it forwards and NACKs."""

    def __init__(self, receiver, tap) -> None:
        self.receiver, self.tap = receiver, tap
        self.out: list[RtpPacket] = []
        self.nacks: list[list[int]] = []
        tap.on_packet = self.out.append

        async def send_nack(media_ssrc: int, lost: list[int]) -> None:
            self.nacks.append(list(lost))

        receiver._send_rtcp_nack = send_nack
        self.t = 0

    def send(self, raw: bytes) -> None:
        self.t += 5
        self.tap.receive(_parse(raw), self.t)


async def wire() -> Wire:
    return Wire(*await tapped_red_receiver(AST))


def test_the_fixture_is_what_it_says():
    """Each group: media packets (VP8 inside RED), then one ULPFEC packet."""
    assert len(GROUPS) == 3
    for g in GROUPS:
        kinds = [_block(raw)[0] for raw in g]
        assert kinds[:-1] == [96] * (len(g) - 1) and kinds[-1] == 120, kinds


async def test_each_lost_packet_is_rebuilt_byte_for_byte_from_chromiums_parity():
    for g in GROUPS:
        for lost in range(len(g) - 1):  # every media packet of the group, in turn
            w = await wire()
            for i, raw in enumerate(g):
                if i != lost:
                    w.send(raw)
            original = _parse(g[lost])
            pt, payload = _block(g[lost])
            rebuilt = [p for p in w.out if p.timestamp == original.timestamp
                       and p.payload == payload]
            assert len(rebuilt) == 1, f"group at {original.sequence_number}: not rebuilt"
            p = rebuilt[0]
            assert (p.payload_type, p.marker, p.ssrc) == (pt, original.marker, original.ssrc)
            assert p.extensions.abs_send_time is None  # zeroed by parity: the sink stamps it
            assert w.tap._red[original.ssrc].decoder.recovered == 1
            await w.receiver.stop()


async def test_the_rebuilt_header_is_the_original_with_abs_send_time_zeroed():
    """Why :func:`zero_extensions` exists: the sender writes abs-send-time after computing
    parity, so parity covers it as zero. Zeroed on the way in, the rebuilt packet is the
    original with that value zeroed; kept, the rebuilt header carries garbage there."""
    g = GROUPS[0]
    ssrc = _parse(g[0]).ssrc
    wrong, right = FecDecoder(ssrc), FecDecoder(ssrc)
    for raw in g[1:-1]:  # g[0] lost
        p = _parse(raw)
        head = raw[12:len(raw) - len(p.payload)]
        _, data = _block(raw)
        b1 = (0x80 if p.marker else 0) | 96
        wrong.media(p.sequence_number, raw[0], b1, p.timestamp, head + data)
        right.media(p.sequence_number, raw[0], b1, p.timestamp,
                    zero_extensions(head, raw[0] & 0x0F, frozenset({AST})) + data)
    fec = _parse(g[-1])
    _, parity = _block(g[-1])
    original = g[0]
    o = _parse(original)
    head = original[12:len(original) - len(o.payload)]
    want = zero_extensions(head, original[0] & 0x0F, frozenset({AST})) + _block(original)[1]
    assert want != head + _block(original)[1]  # the original has a value there
    (got_right,) = right.parity(fec.sequence_number, parity)
    (got_wrong,) = wrong.parity(fec.sequence_number, parity)
    assert got_right.data[12:] == want
    assert got_right.data[:12] == bytes([original[0], (original[1] & 0x80) | 96]) + original[2:12]
    assert got_wrong.data[12:] != want and got_wrong.data.endswith(_block(original)[1])


async def test_destinations_are_numbered_without_the_parity_packets():
    """Each media packet's number is the sender's minus the parity packets before it (the
    fixture's groups are not adjacent: the gaps between them stay, as losses do)."""
    w = await wire()
    parity: list[int] = []
    want: list[int] = []
    for g in GROUPS:
        for raw in g[:-1]:
            s = _parse(raw).sequence_number
            want.append(s - len(parity))
        parity.append(_parse(g[-1]).sequence_number)
        for raw in g:
            w.send(raw)
    assert [p.sequence_number for p in w.out] == want
    await w.receiver.stop()


async def test_a_rebuilt_packet_lands_in_its_own_hole_and_its_retransmission_is_dropped():
    g = GROUPS[1]
    w = await wire()
    w.send(g[0])
    w.send(g[2])  # g[1] lost: the gap is NACKed at once
    lost_seq = _parse(g[1]).sequence_number
    assert w.nacks == [[lost_seq]]
    for raw in g[3:]:
        w.send(raw)  # the rest and the parity: g[1] rebuilt
    seqs = [p.sequence_number for p in w.out]
    by_payload = {p.payload: p.sequence_number for p in w.out}
    assert by_payload[_block(g[1])[1]] == by_payload[_block(g[0])[1]] + 1
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + len(seqs)))
    # the sender answers the NACK anyway (it left before the parity came): a duplicate
    rtx = RtpPacket(payload_type=119, sequence_number=500, timestamp=_parse(g[1]).timestamp,
                    ssrc=0x5EED)
    w.receiver._RTCRtpReceiver__rtx_ssrc[0x5EED] = _parse(g[1]).ssrc
    rtx.payload = lost_seq.to_bytes(2, "big") + _parse(g[1]).payload
    before = len(w.out)
    w.t += 5
    w.tap.receive(rtx, w.t)
    assert len(w.out) == before
    # and it is not asked for again: repaired, not missing
    w.t += 500
    w.send(g[-1])  # (a duplicate: only to let a retry fall due)
    assert w.nacks == [[lost_seq]]
    await w.receiver.stop()


def test_a_late_parity_packet_leaves_a_gap_never_a_collision():
    c = SeqCompactor()
    assert [c.media(s) for s in (10, 11, 12)] == [10, 11, 12]
    c.parity(13)  # ahead of the media: skipped
    assert c.media(14) == 13
    assert c.media(16) == 15  # 15 unknown (lost): its number is kept for it
    c.parity(15)  # it was parity after all, and late: not skipped (14/15 would collide)
    assert c.media(17) == 16
    c.parity(18)
    c.parity(19)
    assert c.media(20) == 17
    assert c.media(15) == 14  # a packet in the hole gets the hole's number


def test_the_compactor_folds_old_numbers_and_refuses_what_it_cannot_place():
    c = SeqCompactor()
    seq = 0
    outs = []
    for _ in range(2000):
        outs.append(c.media(seq))
        c.parity(seq + 1)
        seq += 2
    assert outs == list(range(2000))  # contiguous across the folding
    assert c.media(4) is None  # too old to place: dropped, not mis-numbered
    assert c.media(seq) == 2000


def test_hostile_red_and_parity_are_refused_without_harm():
    assert unred(b"") is None
    assert unred(b"\x80\x60\x00\x01abc") is None  # several blocks: never sent by libwebrtc
    d = FecDecoder(1)
    d.media(1, 0x80, 96, 1000, b"\x00" * 10)
    for seq, bad in enumerate((b"", b"\x00" * 9,  # too short for a header
                               bytes(10) + b"\xff\xff" + b"\x80\x00",  # protection > data
                               bytes(12) + b"\x00\x00" + b"x" * 4,  # protects nothing
                               b"\x40" + bytes(11) + b"\xff" * 3),  # L bit, mask cut short
                              start=50):
        assert d.parity(seq, bad) == []
    assert d.refused == 5
    # a length recovery beyond the protection length: refused, not a short read
    fec = bytearray(bytes(10) + (4).to_bytes(2, "big") + b"\xc0\x00" + b"abcd")
    fec[2:4] = (1).to_bytes(2, "big")  # protects 1 and 2; 1 is here
    fec[8:10] = (10 ^ 900).to_bytes(2, "big")
    assert d.parity(3, bytes(fec)) == []
    assert d.refused == 6


async def test_random_bytes_on_a_red_stream_never_break_the_tap():
    """A hostile or broken sender: random RED payloads (parity or media, any length) and
    random sequence numbers go through the tap without an exception, and everything it
    forwards has the media payload type."""
    rng = random.Random(7)
    w = await wire()
    for i in range(3000):
        p = RtpPacket(payload_type=118, sequence_number=rng.randrange(1 << 16),
                      timestamp=rng.randrange(1 << 32), ssrc=0x77, marker=rng.random() < 0.3)
        inner = rng.choice((96, 120, 120, 5))
        p.payload = bytes([inner]) + rng.randbytes(rng.randrange(0, 60))
        if rng.random() < 0.05:
            p.payload = rng.randbytes(rng.randrange(0, 4))
        w.t += 1
        w.tap.receive(p, w.t)
        if i % 500 == 0:
            w.send(GROUPS[0][0])
    assert w.out and {p.payload_type for p in w.out} == {96}, {p.payload_type for p in w.out}
    await w.receiver.stop()


def test_a_long_stream_keeps_a_bounded_window():
    """Memory per RED stream: at most MEDIA_WINDOW + PRUNE_SLACK packets are kept, however
    long the stream; a repair inside the window still works after a long run."""
    from gateway.media.ulpfec import MEDIA_WINDOW, PRUNE_SLACK

    d = FecDecoder(9)
    for seq in range(10_000):
        d.ext(seq & 0xFFFF)
        d.media(seq, 0x80, 96, seq * 3000, bytes([seq & 0xFF]) * 100)
        assert len(d._media) <= MEDIA_WINDOW + PRUNE_SLACK + 1
        assert len(d._have) <= MEDIA_WINDOW + PRUNE_SLACK + 1
    # parity over 10_000 and 10_001 (10_000 lost): rebuilt from the kept 10_001
    body0, body1 = bytes([1]) * 100, bytes([2]) * 100
    d.ext(10_001 & 0xFFFF)
    d.media(10_001, 0x80, 96, 7, body1)
    x = bytes(a ^ b for a, b in zip(body0, body1, strict=True))
    hdr = bytes([0x80 ^ 0x80, 96 ^ 96]) + (10_000 & 0xFFFF).to_bytes(2, "big") + \
        (5 ^ 7).to_bytes(4, "big") + (100 ^ 100).to_bytes(2, "big")
    fec = hdr + (100).to_bytes(2, "big") + b"\xc0\x00" + x
    d.ext(10_002 & 0xFFFF)
    (r,) = d.parity(10_002, fec)
    assert r.seq == 10_000 and r.data[12:] == body0
    assert int.from_bytes(r.data[4:8], "big") == 5


async def test_a_duplicated_parity_packet_is_skipped_once():
    """The network (or a sender) repeats a parity packet: numbered once, or two forwarded
    packets would share a number and the destination would drop one."""
    g = GROUPS[0]
    w = await wire()
    for raw in g:
        w.send(raw)
    w.send(g[-1])  # the parity again
    for raw in GROUPS[1]:
        w.send(raw)
    seqs = [p.sequence_number for p in w.out]
    assert len(seqs) == len(set(seqs)), seqs
    assert seqs[len(g) - 1] == seqs[len(g) - 2] + 1 + (
        _parse(GROUPS[1][0]).sequence_number - _parse(g[-1]).sequence_number - 1)
    await w.receiver.stop()


def test_parity_must_protect_what_came_just_before_it():
    """A parity packet whose mask reaches past itself, or further back than the window, is
    refused: a "rebuilt" packet far ahead would make the stream jump."""
    d = FecDecoder(1)
    d.media(100, 0x80, 96, 1, b"x" * 10)
    ahead = bytes(2) + (30_100).to_bytes(2, "big") + bytes(6) + (4).to_bytes(2, "big") + \
        b"\x80\x00" + b"abcd"
    assert d.parity(101, ahead) == [] and d.refused == 1
    behind = bytes(2) + (100 - 300).to_bytes(2, "big", signed=True) + bytes(6) + \
        (4).to_bytes(2, "big") + b"\x80\x00" + b"abcd"
    assert d.parity(102, behind) == [] and d.refused == 2


async def test_a_rebuild_the_tap_refuses_does_not_block_the_retransmission():
    """Parity that rebuilds a packet of no media payload type (corrupt): not forwarded,
    and the packet's retransmission is still taken when it comes."""
    w = await wire()
    red = None
    # media 10 (VP8) here, 11 lost; parity over both whose payload-type recovery gives 5
    first = RtpPacket(payload_type=118, sequence_number=10, timestamp=1, ssrc=0x42, marker=1)
    first.payload = b"\x60" + b"\x10" + b"a" * 9  # RED byte (VP8), then 10 bytes
    w.send(first.serialize())  # as if from the wire: its bytes as sent are known
    body10 = b"\x10" + b"a" * 9
    x = bytes(a ^ b for a, b in zip(body10, b"\x10" + b"b" * 9, strict=True))
    hdr = bytes([0, (0x80 | 96) ^ 5]) + (10).to_bytes(2, "big") + bytes(4) + bytes(2)
    fec = RtpPacket(payload_type=118, sequence_number=12, timestamp=1, ssrc=0x42)
    fec.payload = bytes([120]) + hdr + (10).to_bytes(2, "big") + b"\xc0\x00" + x
    w.send(fec.serialize())
    red = w.tap._red[0x42]
    assert red.decoder.refused == 1 and not red.decoder.seen(11)
    assert [p.sequence_number for p in w.out] == [10]
    rtx = RtpPacket(payload_type=118, sequence_number=11, timestamp=1, ssrc=0x42, marker=1)
    rtx.payload = b"\x60\x10" + b"b" * 9  # the packet itself comes after all
    w.send(rtx.serialize())
    assert [p.payload for p in w.out][-1] == b"\x10" + b"b" * 9
    await w.receiver.stop()
