"""Issue 13, finding 10 (ICE part): the rule for which remote ICE candidates are kept.

Only the decision is exercised here (addresses are read, never contacted); the integration
test ``tests/media/test_candidate_filter.py`` shows the gateway applies it to trickled and
SDP candidates before its ICE agent sees them.
"""

from __future__ import annotations

import ipaddress

import pytest

from gateway.config import DEFAULT_ICE_DENIED_RANGES, Config, ConfigError
from gateway.media.candidates import CandidatePolicy

DEFAULT = CandidatePolicy.from_ranges(DEFAULT_ICE_DENIED_RANGES)
LOOPBACK_OK = CandidatePolicy.from_ranges(DEFAULT_ICE_DENIED_RANGES, allow_loopback=True)

DENIED = [
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254",
    "127.0.0.1", "127.255.0.1", "169.254.169.254", "169.254.0.1", "172.16.0.1",
    "172.17.0.2", "172.31.255.255", "192.168.0.1", "192.168.255.254", "224.0.0.251",
    "239.255.255.250", "255.255.255.255", "240.0.0.1",
    "::", "::1", "fc00::1", "fd00::2", "fdff:ffff::1", "fe80::1", "febf::1", "ff02::fb",
    "fe80::1%eth0", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:127.0.0.1",
]
# not an IP literal: mDNS names, host names, shorthand or octal forms the socket layer
# would interpret on its own
NOT_LITERAL = ["4d1c9a2e-3f1b-4c8e-9d5e-0a1b2c3d4e5f.local", "printer.local",
               "metadata.google.internal", "localhost", "example.com", "10.1", "0x7f.0.0.1",
               "010.0.0.1", "2130706433", "", " 8.8.8.8", "1.2.3.4 "]
ALLOWED = ["8.8.8.8", "1.1.1.1", "203.0.113.9", "192.0.2.2", "100.63.255.255",
           "100.128.0.0", "172.15.255.255", "172.32.0.0", "169.253.255.255", "11.0.0.0",
           "2001:db8::1", "2606:4700::1111", "::ffff:8.8.8.8", "fec0::1"]


@pytest.mark.parametrize("addr", DENIED)
def test_denied_ranges_are_refused(addr):
    assert not DEFAULT.allows(addr)


@pytest.mark.parametrize("addr", NOT_LITERAL)
def test_names_and_non_canonical_addresses_are_refused(addr):
    assert not DEFAULT.allows(addr)
    assert not LOOPBACK_OK.allows(addr)


@pytest.mark.parametrize("addr", ALLOWED)
def test_public_addresses_are_kept(addr):
    assert DEFAULT.allows(addr)


def test_allow_loopback_readmits_only_loopback():
    for addr in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"):
        assert not DEFAULT.allows(addr) and LOOPBACK_OK.allows(addr), addr
    for addr in DENIED:
        if not ipaddress.ip_address(addr.split("%")[0]).is_loopback and "127.0.0.1" not in addr:
            assert not LOOPBACK_OK.allows(addr), addr


def test_every_address_of_every_default_range_edge_is_refused():
    """Both ends of each default range, and the first address outside each end."""
    for r in DEFAULT_ICE_DENIED_RANGES:
        net = ipaddress.ip_network(r)
        assert not DEFAULT.allows(str(net.network_address)), r
        assert not DEFAULT.allows(str(net.broadcast_address)), r
        for outside in (int(net.network_address) - 1, int(net.broadcast_address) + 1):
            if 0 <= outside < 2 ** net.max_prefixlen:
                a = ipaddress.ip_address(outside) if net.version == 4 else \
                    ipaddress.IPv6Address(outside)
                inside_other = any(a in ipaddress.ip_network(o) for o in DEFAULT_ICE_DENIED_RANGES
                                   if ipaddress.ip_network(o).version == a.version)
                assert DEFAULT.allows(str(a)) is not inside_other, (r, str(a))


def test_configured_ranges_replace_the_default():
    policy = CandidatePolicy.from_ranges(["203.0.113.0/24"])
    assert not policy.allows("203.0.113.7")
    assert policy.allows("10.0.0.1")  # no longer denied: the operator's choice
    assert not CandidatePolicy.from_ranges([]).allows("host.local")  # names: never


def test_candidate_lines_are_judged_by_their_connection_address():
    line = "candidate:1 1 udp 2122260223 {} 40000 typ host"
    assert DEFAULT.allows_line(line.format("8.8.8.8"))
    assert not DEFAULT.allows_line(line.format("10.0.0.1"))
    # the related address is informational: never contacted, never decisive
    srflx = "candidate:2 1 udp 1686052607 8.8.4.4 40001 typ srflx raddr 10.0.0.1 rport 5000"
    assert DEFAULT.allows_line(srflx)
    assert DEFAULT.allows_line(srflx[len("candidate:"):])
    with pytest.raises(ValueError):
        DEFAULT.allows_line("candidate:garbage")


def test_filter_sdp_drops_refused_candidates_and_then_end_of_candidates():
    lines = [
        "v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=candidate:1 1 udp 2122260223 10.0.0.5 40000 typ host",
        "a=candidate:2 1 udp 2122260223 8.8.8.8 40000 typ host",
        "a=candidate:3 1 udp 2122260223 abc.local 40000 typ host",
        "a=candidate:4 1 udp 2122260223 169.254.169.254 80 typ host",
        "a=end-of-candidates", ""]
    sdp = "\r\n".join(lines)
    out, dropped = DEFAULT.filter_sdp(sdp)
    assert dropped == 3
    assert "8.8.8.8" in out and "10.0.0.5" not in out and "abc.local" not in out
    assert "169.254.169.254" not in out and "end-of-candidates" not in out
    # nothing dropped: the SDP is untouched, end-of-candidates included
    clean = sdp.replace("10.0.0.5", "8.8.4.4").replace("abc.local", "1.1.1.1") \
               .replace("169.254.169.254", "9.9.9.9")
    assert DEFAULT.filter_sdp(clean) == (clean, 0)


def test_filter_sdp_splits_lines_as_aiortc_does():
    """A candidate hidden behind a separator that str.splitlines honours is still judged."""
    for sep in ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028"):
        sdp = f"v=0{sep}m=audio 9 UDP/TLS/RTP/SAVPF 111{sep}" \
              f"a=candidate:1 1 udp 1 10.0.0.5 4000 typ host{sep}"
        out, dropped = DEFAULT.filter_sdp(sdp)
        assert dropped == 1 and "10.0.0.5" not in out, repr(sep)


def test_config_reads_and_checks_the_ranges(monkeypatch):
    monkeypatch.setenv("LIVEDESK_ICE_DENIED_RANGES", "10.0.0.0/8, fc00::/7")
    monkeypatch.setenv("LIVEDESK_ICE_ALLOW_LOOPBACK", "yes")
    c = Config.from_env()
    assert c.ice_denied_ranges == ["10.0.0.0/8", "fc00::/7"] and c.ice_allow_loopback is True
    monkeypatch.setenv("LIVEDESK_ICE_DENIED_RANGES", "none")
    assert Config.from_env().ice_denied_ranges == []
    monkeypatch.setenv("LIVEDESK_ICE_ALLOW_LOOPBACK", "maybe")
    with pytest.raises(ConfigError, match="LIVEDESK_ICE_ALLOW_LOOPBACK"):
        Config.from_env()
    monkeypatch.delenv("LIVEDESK_ICE_ALLOW_LOOPBACK")
    monkeypatch.delenv("LIVEDESK_ICE_DENIED_RANGES")
    assert Config.from_env().ice_denied_ranges == list(DEFAULT_ICE_DENIED_RANGES)
    with pytest.raises(ConfigError, match="ICE_DENIED_RANGES"):
        Config(dev=True, ice_denied_ranges=["10.0.0.0/33"]).validate()
    with pytest.raises(ConfigError, match="ICE_DENIED_RANGES"):
        Config(dev=True, ice_denied_ranges=["10.0.0.1/8"]).validate()


def test_compose_coturn_denies_every_ice_default_range_it_can():
    """One list in two places: coturn's --denied-peer-ip covers the gateway's default ranges
    (multicast there is --no-multicast-peers, the reserved 240/4 and :: are unroutable)."""
    from tests.unit.test_compose_turn import ENV, _coturn_args, _denied_ranges, render

    ranges = _denied_ranges(_coturn_args(render(ENV)))
    for r in DEFAULT_ICE_DENIED_RANGES:
        net = ipaddress.ip_network(r)
        if net.is_multicast or r in ("240.0.0.0/4", "::/128"):
            continue
        assert any(lo.version == net.version and lo <= net.network_address
                   and net.broadcast_address <= hi for lo, hi in ranges), r
