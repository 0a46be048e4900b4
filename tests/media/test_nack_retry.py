"""NACK retries on the gateway's receive side (``gateway/media/nack_retry.py``): a packet
whose first NACK (or its retransmission) was lost is asked for again once per round trip,
as a browser receiving directly does, instead of waiting for the next loss."""

from __future__ import annotations

from gateway.media.nack_retry import (
    DEFAULT_RTT_MS,
    MAX_RETRIES,
    MIN_INTERVAL_MS,
    NackRetries,
)
from tests.media.fake_receiver import tapped_video_receiver


def test_a_missing_packet_is_asked_again_once_per_round_trip_then_given_up():
    r = NackRetries()
    missing = {11}
    r.sent([11], 0)
    assert r.due(missing, 50) == []  # within the round trip (100 ms before any sample)
    assert r.due(missing, int(DEFAULT_RTT_MS)) == [11]
    assert r.due(missing, int(DEFAULT_RTT_MS) + 30) == []  # asked just now
    t = int(DEFAULT_RTT_MS)
    asked = 2
    while 11 in missing:
        t += int(DEFAULT_RTT_MS)
        if r.due(missing, t):
            asked += 1
    assert asked == 1 + MAX_RETRIES, asked  # the first NACK and MAX_RETRIES more
    assert r.given_up == 1 and r.retries == MAX_RETRIES and not r.asked
    assert r.due(missing, t + 1000) == []  # forgotten: no later NACK carries it


def test_the_round_trip_is_learned_from_first_answers_only():
    r = NackRetries()
    r.sent([5], 1000)
    r.arrived(5, 1040)  # answered 40 ms after its only NACK: a sample
    assert DEFAULT_RTT_MS > r.rtt_ms > 40
    learned = r.rtt_ms
    r.sent([6], 2000)
    r.sent([6], 2100)  # asked twice: which NACK did the answer come from? not a sample
    r.arrived(6, 2101)
    assert r.rtt_ms == learned
    for i in range(60):  # a short path: retries follow it down, never below the floor
        r.sent([100 + i], i * 100)
        r.arrived(100 + i, i * 100 + 2)
    assert r.rtt_ms < 5
    r.sent([7], 10_000)
    missing = {7}
    assert r.due(missing, 10_000 + MIN_INTERVAL_MS - 1) == []
    assert r.due(missing, 10_000 + MIN_INTERVAL_MS) == [7]


def test_a_packet_outside_the_generators_window_is_forgotten():
    r = NackRetries()
    r.sent([1, 2], 0)
    assert r.due({2}, 500) == [2]  # 1 left aiortc's window (truncated): not asked again
    assert set(r.asked) == {2}


async def test_the_tapped_receiver_nacks_a_lost_packet_again_until_it_comes():
    """Through the receiver tap (the gateway's fast receive path): a gap is NACKed at once
    (aiortc's behaviour), again a round trip later when nothing came (aiortc alone would
    not), and not again once the retransmission arrived."""
    from aiortc.rtp import RtpPacket

    receiver, tap = await tapped_video_receiver()
    nacks: list[tuple[int, list[int]]] = []
    now = [0]

    async def send_nack(media_ssrc: int, lost: list[int]) -> None:
        nacks.append((now[0], list(lost)))

    receiver._send_rtcp_nack = send_nack  # what would go on the wire

    def packet(seq: int, at: int) -> None:
        p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=7,
                      marker=1)
        p.payload = b"\x10\x00frame"
        now[0] = at
        tap.receive(p, at)

    packet(10, 0)
    packet(12, 20)  # 11 lost: NACKed at once
    packet(13, 40)
    packet(14, 60)
    assert nacks == [(20, [11])], nacks
    packet(15, 80)
    packet(16, 120)  # a round trip (100 ms before any sample) later, still missing: again
    assert nacks == [(20, [11]), (120, [11])], nacks
    packet(17, 140)
    packet(11, 150)  # the retransmission
    packet(18, 260)
    packet(19, 400)
    assert nacks == [(20, [11]), (120, [11])], nacks  # nothing more: it came
    assert tap.nack_retries.retries == 1 and not tap.nack_retries.asked
    await receiver.stop()


async def test_a_jump_in_sequence_numbers_costs_the_window_not_the_jump():
    """A sender (broken or hostile) jumping 30,000 numbers per packet: aiortc's NACK
    generator would add every number in between to its missing set and then drop all but
    the last 128 (~18 ms a packet); the tap starts the window where it ends anyway. The
    NACKs sent are the same: the last 128 numbers before the packet."""
    from aiortc.rtp import RtpPacket

    receiver, tap = await tapped_video_receiver()
    nacks: list[list[int]] = []

    async def send_nack(media_ssrc: int, lost: list[int]) -> None:
        nacks.append(list(lost))

    receiver._send_rtcp_nack = send_nack
    gen = receiver._RTCRtpReceiver__nack_generator
    added = [0]

    class Counting(set):
        def add(self, x):
            added[0] += 1
            super().add(x)

    gen.missing = Counting()
    for i, seq in enumerate((100, 30_100, 60_100)):
        p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=i * 3000, ssrc=7)
        p.payload = b"\x10\x00frame"
        tap.receive(p, i * 20)
    assert added[0] <= 2 * 128, added[0]
    assert nacks[-1] == list(range(60_100 - 128, 60_100))
    await receiver.stop()
