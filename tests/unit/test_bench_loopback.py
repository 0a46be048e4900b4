"""The benchmarks' browser-to-browser paths stay on loopback (docs/testing.md#network-safety):
the p2p relay names only 127.0.0.1 candidates (``benchmarks/loopback.py``), and the impairment
relay (``benchmarks/impair_relay.py``) relays to, and answers, loopback addresses only.

No packet here goes anywhere but 127.0.0.1: a datagram "from" another address is handed to
the relay port's protocol directly, never sent."""

from __future__ import annotations

import asyncio
import json

from benchmarks.impair_relay import ImpairRelay
from benchmarks.loopback import (
    is_loopback,
    loopback_candidate,
    loopback_message,
    loopback_sdp,
)

HOST = "candidate:1 1 udp 2122260223 192.0.2.2 36927 typ host generation 0 ufrag ab network-id 1"


def test_an_ipv4_udp_host_candidate_moves_to_loopback_on_the_same_port():
    assert loopback_candidate(HOST) == HOST.replace("192.0.2.2", "127.0.0.1")
    assert loopback_candidate("a=" + HOST) == "a=" + HOST.replace("192.0.2.2", "127.0.0.1")
    lo = HOST.replace("192.0.2.2", "127.0.0.1")
    assert loopback_candidate(lo) == lo


def test_every_other_candidate_is_dropped():
    for other in (
        HOST.replace("192.0.2.2", "fd00::2"),  # IPv6
        HOST.replace("192.0.2.2", "1f3e9b2c-0d1a-4c7e-9a55-3d1f2b7c8e90.local"),  # mDNS
        HOST.replace(" udp ", " tcp "),
        HOST.replace("typ host", "typ srflx raddr 0.0.0.0 rport 0"),
        HOST.replace("typ host", "typ relay raddr 0.0.0.0 rport 0"),
        "candidate:1 1 udp",  # not a candidate
        "",
    ):
        assert loopback_candidate(other) is None, other


def test_sdp_and_relay_messages_carry_only_loopback_candidates():
    sdp = "\r\n".join(["v=0", "a=" + HOST, "a=" + HOST.replace("192.0.2.2", "fd00::2"),
                       "a=end-of-candidates", ""])
    out = loopback_sdp(sdp)
    assert "192.0.2.2" not in out and "fd00::2" not in out
    assert out.split("\r\n") == ["v=0", "a=" + HOST.replace("192.0.2.2", "127.0.0.1"),
                                 "a=end-of-candidates", ""]
    m = json.loads(loopback_message(json.dumps({"type": "offer", "sdp": sdp})))
    assert m["sdp"] == out
    c = {"candidate": HOST, "sdpMid": "0", "sdpMLineIndex": 0}
    m = json.loads(loopback_message(json.dumps({"type": "candidate", "candidate": c})))
    assert m["candidate"]["candidate"].split()[4] == "127.0.0.1"
    dropped = {**c, "candidate": HOST.replace("192.0.2.2", "fd00::2")}
    assert loopback_message(json.dumps({"type": "candidate", "candidate": dropped})) is None
    # end of candidates and the pages' own messages pass unchanged
    for m in ({"type": "candidate", "candidate": None}, {"type": "ring"}):
        assert json.loads(loopback_message(json.dumps(m))) == m


def test_is_loopback():
    assert all(is_loopback(a) for a in ("127.0.0.1", "127.3.2.1", "::1"))
    assert not any(is_loopback(a) for a in ("192.0.2.2", "10.0.0.1", "fd00::2", "0.0.0.0",
                                            "localhost", "x.local", ""))


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[bytes, tuple]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.got.put_nowait((data, addr))


async def _endpoint() -> tuple[_Sink, int]:
    sink = _Sink()
    await asyncio.get_running_loop().create_datagram_endpoint(lambda: sink,
                                                              local_addr=("127.0.0.1", 0))
    assert sink.transport is not None
    return sink, sink.transport.get_extra_info("sockname")[1]


async def test_the_relay_makes_ports_for_loopback_targets_only():
    relay = ImpairRelay()
    try:
        for ip in ("192.0.2.2", "10.1.2.3", "203.0.113.9", "fd00::2", "::1", "x.local"):
            assert await relay.port_for(ip, 5000) is None, ip
        assert not relay._ports  # no socket was even made for them
        assert isinstance(await relay.port_for("127.0.0.1", 5000), int)
    finally:
        relay.close()


async def test_the_relay_neither_forwards_nor_answers_a_non_loopback_source():
    relay = ImpairRelay()
    target, target_port = await _endpoint()
    client, _ = await _endpoint()
    try:
        port = await relay.port_for("127.0.0.1", target_port)
        assert port is not None
        relay_port = relay._ports[("127.0.0.1", target_port)]
        # a datagram from eth0's address (handed to the port, not sent): dropped, counted,
        # and its sender never becomes the client the target's answers go to
        relay_port.datagram_received(b"from-eth0", ("192.0.2.2", 40000))
        assert relay.refused == 1 and relay_port.client is None
        # from loopback: relayed to the target, and the target's answer goes back
        assert client.transport is not None and target.transport is not None
        client.transport.sendto(b"hello", ("127.0.0.1", port))
        data, via = await asyncio.wait_for(target.got.get(), 2)
        assert data == b"hello" and via == ("127.0.0.1", port)
        assert target.got.empty()  # the refused datagram never arrived
        target.transport.sendto(b"back", ("127.0.0.1", port))
        data, _ = await asyncio.wait_for(client.got.get(), 2)
        assert data == b"back"
        assert relay_port.client is not None and relay_port.client[0] == "127.0.0.1"
        assert relay.refused == 1
    finally:
        relay.close()
        for s in (target, client):
            if s.transport is not None:
                s.transport.close()
