"""``tests/loopback_ice.py``: every aioice agent of the test process stays on loopback
(docs/testing.md#network-safety).

Observed without sending anything: a refused datagram goes to a fake transport that only
records, an mDNS name to a stub resolver, servers are never contacted (no gathering), and
the one connection that gathers has no STUN server and no peer.
"""

from __future__ import annotations

import aioice.ice as aioice_ice
import pytest
from aioice import Candidate, stun

from gateway.media.compat.hooks import source_of
from tests import loopback_ice
from tests.media.rtc_client import bare_pc


def candidate(host: str, port: int = 40000) -> Candidate:
    return Candidate(foundation="1", component=1, transport="udp", priority=1, host=host,
                     port=port, type="host")


class RecordingTransport:
    """Stands in for a socket: what would have been sent, and to where."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))


def test_installed_for_the_whole_run_and_aioice_alone_skips_loopback():
    assert loopback_ice.installed()
    assert aioice_ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
    assert aioice_ice.get_host_addresses(use_ipv4=False, use_ipv6=True) == ["::1"]
    # why the patch exists: aioice's own choice is every address but 127.0.0.1 and ::1
    own = loopback_ice._ORIGINAL["get_host_addresses"](use_ipv4=True, use_ipv6=True)
    assert "127.0.0.1" not in own and "::1" not in own, own


async def test_a_bare_connection_gathers_on_127_0_0_1_only():
    pc = bare_pc()
    try:
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        hosts = {line.split()[4] for line in pc.localDescription.sdp.splitlines()
                 if line.startswith("a=candidate:")}
        assert hosts == {"127.0.0.1"}, pc.localDescription.sdp
    finally:
        await pc.close()


async def test_remote_candidates_off_loopback_never_reach_the_agent(monkeypatch):
    looked_up: list[object] = []

    async def no_mdns(subscriber):  # an mDNS query would be multicast: never make one
        looked_up.append(subscriber)
        raise AssertionError("mDNS resolution attempted")

    monkeypatch.setattr(aioice_ice, "get_or_create_mdns_protocol", no_mdns)
    conn = aioice_ice.Connection(ice_controlling=True)
    start = len(loopback_ice.DROPPED)
    try:
        for host in ("192.0.2.2", "fd00::2", "10.0.0.5", "203.0.113.9", "abc-123.local",
                     "::ffff:192.0.2.2"):
            await conn.add_remote_candidate(candidate(host))
        await conn.add_remote_candidate(candidate("127.0.0.1", 40001))
        await conn.add_remote_candidate(candidate("::1", 40002))
        assert [(c.host, c.port) for c in conn.remote_candidates] == [
            ("127.0.0.1", 40001), ("::1", 40002)]
        assert [d.host for d in loopback_ice.DROPPED[start:]] == [
            "192.0.2.2", "fd00::2", "10.0.0.5", "203.0.113.9", "abc-123.local",
            "::ffff:192.0.2.2"]
        assert looked_up == []
    finally:
        await conn.close()


def test_stun_and_turn_servers_off_loopback_are_forgotten():
    # aiortc's default configuration names stun.l.google.com
    far = aioice_ice.Connection(ice_controlling=True, stun_server=("stun.l.google.com", 19302),
                                turn_server=("203.0.113.5", 3478))
    assert far.stun_server is None and far.turn_server is None
    near = aioice_ice.Connection(ice_controlling=True, stun_server=("127.0.0.1", 3478),
                                 turn_server=("127.0.0.1", 3479))
    assert near.stun_server == ("127.0.0.1", 3478) and near.turn_server == ("127.0.0.1", 3479)


async def test_datagrams_to_another_address_are_refused_and_recorded():
    proto = aioice_ice.StunProtocol(aioice_ice.Connection(ice_controlling=True))
    transport = RecordingTransport()
    proto.transport = transport  # type: ignore[assignment]
    message = stun.Message(message_method=stun.Method.BINDING,
                           message_class=stun.Class.REQUEST)
    start = len(loopback_ice.REFUSED)
    try:
        proto.send_stun(message, ("192.0.2.2", 5000))
        await proto.send_data(b"rtp", ("203.0.113.1", 5002))
        proto.send_stun(message, ("127.0.0.1", 5004))
        await proto.send_data(b"rtp", ("::1", 5006))
        assert [addr for _, addr in transport.sent] == [("127.0.0.1", 5004), ("::1", 5006)]
        assert loopback_ice.REFUSED[start:] == [
            loopback_ice.Refused("stun", "192.0.2.2", 5000),
            loopback_ice.Refused("data", "203.0.113.1", 5002)]
    finally:
        del loopback_ice.REFUSED[start:]  # refused on purpose: not this test's failure


def test_the_gateway_still_reads_aioice_own_send_path():
    """``compat/rtp_forwarding.py`` checks aioice's source and compares ``send_data`` by
    identity: the wrappers must not switch the gateway's fast path off in tests."""
    assert "self.transport.sendto(data, addr)" in source_of(aioice_ice.StunProtocol.send_data)
    assert "self.transport.sendto(bytes(message), addr)" in source_of(
        aioice_ice.StunProtocol.send_stun)


@pytest.mark.parametrize("host,ok", [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                     ("::ffff:127.0.0.1", True), ("192.0.2.2", False),
                                     ("fd00::2", False), ("localhost", False),
                                     ("x.local", False), ("", False)])
def test_is_loopback(host, ok):
    assert loopback_ice.is_loopback(host) is ok


def test_a_benchmark_installs_it_in_one_call():
    """``benchmarks/loopback.py``'s hook for a benchmark with in-process aiortc peers."""
    from benchmarks.loopback import in_process_ice_on_loopback

    loopback_ice.uninstall()
    try:
        assert not loopback_ice.installed()
        assert "127.0.0.1" not in aioice_ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
        in_process_ice_on_loopback()
        assert loopback_ice.installed()
        assert aioice_ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    finally:
        loopback_ice.install()  # (idempotent) the rest of the run keeps it
