"""The passthrough forwarding path, packet by packet, on one core (no network, no clients).

``benchmarks/media.py`` measures the gateway with real calls, but its figures move by ±5 %
with whatever else the two cores do. This one feeds SRTP packets straight into the same
code the gateway runs per packet (``compat.fast_receive.install_fast_receive``'s socket callback
→ ``ReceiverTap.receive`` → ``PassthroughForwarder._on_packet`` → ``RtpSink.forward`` →
SRTP protect → ``sendto`` on a real UDP socket) and reports CPU time per packet
(``time.process_time``), so a change of a few percent is visible.

Baseline, same run, same packets and sockets: the bare minimum any Python SRTP forwarder
pays per packet (unprotect, rewrite SSRC/seq in the 12-byte header, protect, ``sendto``).
``ratio`` = gateway ÷ baseline.

    .venv/bin/python -m benchmarks.forward_path [--packets 60000] [--sinks 1] [--json]

The traffic: 640×480@30 VP8-like video (3 packets per frame, ~1,100 bytes, abs-send-time
set, as browsers send) and Opus audio (20 ms, audio level set), interleaved 60:40 as in a
call, a destination per ``--sinks``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aioice.ice import StunProtocol  # noqa: E402
from aiortc import RTCRtpReceiver  # noqa: E402
from aiortc.rtcdtlstransport import RtpRouter, State  # noqa: E402
from aiortc.rtcrtpparameters import (  # noqa: E402
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket  # noqa: E402
from pylibsrtp import Policy, Session  # noqa: E402

from gateway.media.compat.fast_receive import install_fast_receive  # noqa: E402
from gateway.media.compat.receiver_tap import tap_receiver  # noqa: E402
from gateway.media.forward.passthrough import PassthroughForwarder  # noqa: E402
from gateway.media.forward.seam import SourceKey  # noqa: E402
from gateway.media.rtp_sink import URI_ABS_SEND_TIME, URI_AUDIO_LEVEL, URI_MID  # noqa: E402

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97,
                            parameters={"apt": 96})
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2,
                             payloadType=111)
EXTS = [RTCRtpHeaderExtensionParameters(id=1, uri=URI_MID),
        RTCRtpHeaderExtensionParameters(id=3, uri=URI_ABS_SEND_TIME),
        RTCRtpHeaderExtensionParameters(id=2, uri=URI_AUDIO_LEVEL)]


def srtp_pair(key: bytes) -> tuple[Session, Session]:
    tx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    return tx, rx


def traffic(n: int, key: bytes) -> list[bytes]:
    """``n`` SRTP packets as a browser would send them: video 3 per frame, audio every 20 ms."""
    tx, _ = srtp_pair(key)
    m = HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=EXTS))
    out, vseq, aseq, frame = [], 0, 0, 0
    while len(out) < n:
        for k in range(3):
            p = RtpPacket(payload_type=96, sequence_number=vseq & 0xFFFF, timestamp=frame * 3000,
                          ssrc=1001, marker=int(k == 2),
                          payload=bytes([0x90 if k == 0 else 0x80, 0x80, 0x80 | (frame >> 8) & 0x7F,
                                         frame & 0xFF, 0x00 if frame == 0 else 0x01]) + bytes(1100))
            p.extensions.mid, p.extensions.abs_send_time = "1", (frame * 33 * 262) & 0xFFFFFF
            out.append(tx.protect(p.serialize(m)))
            vseq += 1
        for _ in range(2):
            p = RtpPacket(payload_type=111, sequence_number=aseq & 0xFFFF, timestamp=aseq * 960,
                          ssrc=2002, payload=bytes(120))
            p.extensions.mid, p.extensions.audio_level = "0", (False, 40)
            out.append(tx.protect(p.serialize(m)))
            aseq += 1
        frame += 1
    return out[:n]


class Ice:
    """The parts of an aioice connection the forwarding path touches, over a real socket."""

    def __init__(self, sock: socket.socket, addr):
        proto = StunProtocol.__new__(StunProtocol)
        proto.transport = SimpleNamespace(sendto=sock.sendto)
        proto.datagram_received = lambda data, addr: None
        self._nominated = {1: SimpleNamespace(protocol=proto, remote_addr=addr)}
        self._protocols = [proto]


def gateway_path(packets: list[bytes], key: bytes, sinks: int, out_sock, addr) -> float:
    """CPU seconds to push ``packets`` through the gateway's per-packet code."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_gateway_path(packets, key, sinks, out_sock, addr))
    finally:
        loop.close()


async def _gateway_path(packets, key, sinks, out_sock, addr) -> float:
    _, rx = srtp_pair(key)
    in_ice = Ice(out_sock, addr)
    m = HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=EXTS))
    router = RtpRouter()
    dtls = SimpleNamespace(_rx_srtp=rx, _state=State.CONNECTED, _rtp_header_extensions_map=m,
                           _rtp_router=router, transport=SimpleNamespace(_connection=in_ice),
                           _handle_rtp_data=None, _handle_rtcp_data=None)
    fw = PassthroughForwarder()
    for kind, codec, ssrc in (("video", VP8, 1001), ("audio", OPUS, 2002)):
        receiver = RTCRtpReceiver(kind, SimpleNamespace(state="connected", _register_rtp_receiver=None))
        receiver._RTCRtpReceiver__codecs = {codec.payloadType: codec}
        if kind == "video":
            receiver._RTCRtpReceiver__codecs[97] = RTX
        tap = tap_receiver(receiver, kind)
        tap._fast = True  # installed below, on the fake transport
        router.register_receiver(receiver, ssrcs=[ssrc], payload_types=[codec.payloadType])
        key_ = SourceKey("src", kind, "0", 1)
        fw.publish(key_, receiver.track if hasattr(receiver, "track") else None, receiver, codec)
        for d in range(sinks):
            track = fw.subscribe(key_, f"dest{d}")
            tx_out, _ = srtp_pair(os.urandom(30))
            out_dtls = SimpleNamespace(_state=State.CONNECTED, _tx_srtp=tx_out,
                                       transport=SimpleNamespace(_connection=Ice(out_sock, addr)))
            sender = SimpleNamespace(_ssrc=5000 + d, _rtx_ssrc=6000 + d, transport=out_dtls,
                                     send=None, _retransmit=None, _send_keyframe=None,
                                     _handle_rtcp_packet=None)
            for n in ("ntp_timestamp", "rtp_timestamp", "octet_count", "packet_count"):
                setattr(sender, "_RTCRtpSender__" + n, 0)
            track.sink.attach(sender)
            track.sink._configure(RTCRtpSendParameters(
                codecs=[codec] + ([RTX] if kind == "video" else []), muxId=str(d),
                headerExtensions=EXTS))
    assert install_fast_receive(dtls), "the fast receive path did not install"
    deliver = in_ice._protocols[0].datagram_received
    t0 = time.process_time()
    for data in packets:
        deliver(data, addr)
    took = time.process_time() - t0
    forwarded = sum(s.sent for src in fw._sources.values() for s in src.sinks.values())
    assert forwarded >= len(packets) * sinks * 0.99, (forwarded, len(packets))
    return took


def bare_path(packets: list[bytes], key: bytes, sinks: int, out_sock, addr) -> float:
    """The least any Python SRTP forwarder does per packet: unprotect, new SSRC and
    sequence number in the fixed header, protect, send."""
    _, rx = srtp_pair(key)
    txs = [srtp_pair(os.urandom(30))[0] for _ in range(sinks)]
    pack_into = struct.Struct("!HII").pack_into
    seq = [0] * sinks
    sendto = out_sock.sendto
    t0 = time.process_time()
    for data in packets:
        plain = bytearray(rx.unprotect(data))
        for i, tx in enumerate(txs):
            pack_into(plain, 2, seq[i], int.from_bytes(plain[4:8], "big"), 5000 + i)
            seq[i] = (seq[i] + 1) & 0xFFFF
            sendto(tx.protect(bytes(plain)), addr)
    return time.process_time() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=60_000)
    ap.add_argument("--sinks", type=int, default=1, help="destinations per source")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; best of each")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    key = os.urandom(30)
    packets = traffic(args.packets, key)
    sink_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink_sock.bind(("127.0.0.1", 0))
    sink_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)
    addr = sink_sock.getsockname()
    gw, bare = [], []
    for _ in range(args.rounds):
        gw.append(gateway_path(packets, key, args.sinks, out, addr))
        bare.append(bare_path(packets, key, args.sinks, out, addr))
    us = lambda s: round(min(s) / args.packets * 1e6, 2)  # noqa: E731
    res = {"bench": "forward_path", "packets": args.packets, "sinks": args.sinks,
           "us_per_packet": us(gw), "bare_us_per_packet": us(bare),
           "ratio": round(min(gw) / min(bare), 2),
           "runs_us": [round(s / args.packets * 1e6, 2) for s in gw],
           "bare_runs_us": [round(s / args.packets * 1e6, 2) for s in bare]}
    print(f"gateway forwarding path: {res['us_per_packet']} µs CPU per packet in "
          f"({args.sinks} destination(s)); bare SRTP forwarder: {res['bare_us_per_packet']} µs; "
          f"ratio {res['ratio']}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
