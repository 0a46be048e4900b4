"""The media benchmark's own logic: frames counted from RTP headers, send times recovered by
timestamp matching, calls split over client processes, the capacity verdict, and the
loopback guard. A wrong count here would flatter or blame the gateway, so each rule is
pinned by a case that breaks it."""

import pytest

from benchmarks.media import (
    CLIENT_SATURATED,
    KNEE_ADDED_P95_MS,
    capacity,
    client_procs,
    driven,
    shares,
)
from benchmarks.media_client import check_loopback
from benchmarks.media_streams import Rx, stream_figures

START = 0x90  # VP8 descriptor: X and S set, partition 0 (what aiortc's packetizer writes)
MID = 0x80  # X set, not a start


def _frame(rx: Rx, ts: int, seq: int, n: int, now: float, skip: int | None = None) -> int:
    for k in range(n):
        if k != skip:
            rx.on_header(ts, seq & 0xFFFF, k == n - 1, START if k == 0 else MID, now)
        seq += 1
    return seq


def test_a_frame_counts_once_when_complete_in_order():
    rx = Rx("video")
    seq = _frame(rx, 1000, 65534, 4, 1.0)  # across the sequence wrap
    seq = _frame(rx, 4000, seq, 3, 1.1, skip=1)  # a packet lost: not a frame
    seq = _frame(rx, 7000, seq, 3, 1.2, skip=0)  # the opening packet lost: not a frame
    rx.on_header(7000, (seq - 1) & 0xFFFF, True, MID, 1.25)  # a duplicated marker
    _frame(rx, 10000, seq, 1, 1.3)
    assert rx.frames == [(0, 1.0), (9000, 1.3)]
    assert rx.first_at == 1.0


def test_timestamps_are_relative_to_the_first_frame_across_the_32_bit_wrap():
    rx = Rx("video")
    seq = _frame(rx, 0xFFFFFF00, 10, 2, 1.0)
    _frame(rx, 0xFFFFFF00 + 3000 - (1 << 32), seq, 2, 1.1)
    assert [ts for ts, _ in rx.frames] == [0, 3000]


def test_audio_counts_packets():
    rx = Rx("audio")
    for i in range(5):
        rx.on_header(i * 960, i, False, 0x00, 1.0 + i * 0.02)
    assert rx.count_between(1.0, 1.05) == 3


def test_latency_and_loss_from_matched_timestamps():
    offset = 123_456  # what the gateway adds to every timestamp
    sent = {n * 3000 + (n * 577) % 1500: 10.0 + n / 30 for n in range(60)}
    rx = Rx("video")
    seq = 0
    for ts, t in sorted(sent.items()):
        if ts // 3000 in (20, 21):  # two frames lost
            continue
        seq = _frame(rx, ts + offset, seq, 2, t + 0.004)
    fig = stream_figures(rx, sent, 10.0, 12.0)
    assert fig is not None
    assert fig["lost"] == 2 and fig["due"] == 46  # sent in [t0, t1 − 0.5 s]
    assert all(abs(x - 4.0) < 1e-6 for x in fig["lat"])
    assert stream_figures(Rx("video"), sent, 10.0, 12.0) is None  # nothing to match


def test_calls_split_evenly_over_processes():
    assert shares(8, 1) == [(0, 8)]
    assert shares(17, 3) == [(0, 6), (6, 6), (12, 5)]
    assert client_procs("auto", 32) == 2 and client_procs("auto", 33) == 3 and client_procs("auto", 2) == 1
    assert client_procs("8", 3) == 3  # never more processes than calls


def _row(calls: int, cpu: float, **kw) -> dict:
    row = {"calls": calls, "cpu_per_call": cpu, "fps_min": 30.0, "frame_loss": 0.0,
           "streams_unmatched": 0, "client_cpu_max": 0.3}
    row.update(kw)
    row["driven"] = driven(row)
    return row


def test_a_level_is_driven_only_at_full_rate_without_loss_or_saturated_clients():
    assert _row(8, 0.01)["driven"]
    assert not _row(8, 0.01, fps_min=26.9)["driven"]  # one stream under 90 % of 30 fps
    assert not _row(8, 0.01, frame_loss=0.011)["driven"]
    assert not _row(8, 0.01, streams_unmatched=1)["driven"]
    assert not _row(8, 0.01, client_cpu_max=CLIENT_SATURATED)["driven"]
    # every frame delivered, but late: a saturated gateway is past the knee
    assert _row(8, 0.01, added_latency_ms_p95=KNEE_ADDED_P95_MS)["driven"]
    assert not _row(8, 0.01, added_latency_ms_p95=KNEE_ADDED_P95_MS + 1)["driven"]


def test_capacity_is_the_highest_driven_level_against_the_first():
    table = [_row(8, 0.010), _row(16, 0.011), _row(24, 0.02, frame_loss=0.05)]
    assert capacity(table) == {"calls_max": 16, "cpu_per_call_at_max": 0.011,
                               "cpu_per_call_at_max_ratio": 1.1}
    assert capacity([_row(8, 0.01, fps_min=3.0)])["calls_max"] is None


def test_an_sdp_naming_an_address_off_loopback_is_refused():
    ok = ("v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"
          "a=candidate:2 1 udp 2130706431 ::1 40001 typ host\r\n")
    check_loopback(ok)
    for address in ("192.0.2.2", "10.0.0.7", "fd00::2", "host.local"):
        with pytest.raises(RuntimeError, match="off loopback"):
            check_loopback(ok + f"a=candidate:3 1 udp 1 {address} 40002 typ host\r\n")
