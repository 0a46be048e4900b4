"""Issue 13, finding 2: a real coturn with compose's denied ranges refuses to relay to them.

The test runs Debian's ``turnserver`` on loopback only (free ports, an empty config file
instead of /etc/turnserver.conf, ``--no-cli``, the TURN REST API secret), allocates a relay
with aioice's TURN client using credentials minted by the gateway's own
:class:`~gateway.ice.IceProvider`, and asks for a permission toward 127.0.0.1:

* with every ``--denied-peer-ip`` of ``docker/compose.yaml`` (which includes 127/8) the
  CreatePermission is refused with 403 (Forbidden IP), with and without
  ``--allow-loopback-peers`` (so the refusal comes from the denied list, not only from
  coturn's loopback default);
* the control, which makes the test able to fail: the same list without the ranges holding
  127.0.0.1, plus ``--allow-loopback-peers``: the permission is granted and a datagram sent
  through the relay reaches a local socket.

Every address used is on loopback: no packet leaves the machine. Without ``turnserver`` the
test skips, except in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import TurnClientUdpProtocol

from gateway.ice import IceProvider
from tests.children import die_with_parent
from tests.unit.test_compose_turn import ENV, _coturn_args, render

LOOPBACK = "127.0.0.1"
SECRET = "coturn-test-secret-0123456789abcdef"
REALM = "livedesk.test"


def _turnserver() -> str:
    path = shutil.which("turnserver") or ("/usr/bin/turnserver"
                                          if os.path.exists("/usr/bin/turnserver") else None)
    if path is None:
        pytest.fail("turnserver (Debian package coturn) is not installed: run "
                    "`make system-deps`; this test fails rather than skips")
    return path


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _free_relay_range(size: int = 8) -> tuple[int, int]:
    """``size`` consecutive UDP ports on loopback that are free right now."""
    for _ in range(200):
        start = _free_udp_port()
        if start + size > 65535:
            continue
        socks = []
        try:
            for p in range(start, start + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((LOOPBACK, p))
            return start, start + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range on loopback")


def compose_denied() -> list[str]:
    """The ``--denied-peer-ip`` arguments of compose's coturn, rendered."""
    return [a for a in _coturn_args(render(ENV)) if a.startswith("--denied-peer-ip=")]


def _holds_loopback(arg: str) -> bool:
    lo, _, hi = arg.split("=", 1)[1].partition("-")
    lo_ip, hi_ip = ipaddress.ip_address(lo), ipaddress.ip_address(hi or lo)
    one = ipaddress.ip_address(LOOPBACK)
    return lo_ip.version == 4 and lo_ip <= one <= hi_ip


def _free_udp_tcp_port() -> int:
    """A loopback port free for UDP *and* TCP right now: turnserver listens on both (a free
    UDP port whose TCP twin was taken left it retrying the TCP bind, never answering — a CI
    run failed so)."""
    for _ in range(200):
        port = _free_udp_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for both UDP and TCP on loopback")


class Coturn:
    def __init__(self, tmp: Path, extra: list[str]) -> None:
        self.port = _free_udp_tcp_port()
        lo, hi = _free_relay_range()
        conf = tmp / "turnserver.conf"
        conf.write_text("")  # never /etc/turnserver.conf
        self.log = tmp / "turnserver.log"
        self.args = [
            _turnserver(), "-c", str(conf), "-n", "--no-cli", "--no-tls", "--no-dtls",
            f"--listening-ip={LOOPBACK}", f"--relay-ip={LOOPBACK}",
            f"--listening-port={self.port}", f"--min-port={lo}", f"--max-port={hi}",
            "--use-auth-secret", f"--static-auth-secret={SECRET}", f"--realm={REALM}",
            f"--userdb={tmp / 'turndb'}", f"--pidfile={tmp / 'turnserver.pid'}",
            "--log-file=stdout", "--simple-log", "--no-software-attribute", "--fingerprint",
            "--no-multicast-peers", *extra]
        self.proc: subprocess.Popen | None = None

    def start(self) -> Coturn:
        with open(self.log, "wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=die_with_parent)
        deadline = time.time() + 15
        while time.time() < deadline:  # ready when it answers a STUN binding request
            if self.proc.poll() is not None:
                raise RuntimeError(f"turnserver exited:\n{self.log.read_text()[-3000:]}")
            if _stun_binding_ok(self.port):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"turnserver did not answer:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _stun_binding_ok(port: int) -> bool:
    req = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(bytes(req), (LOOPBACK, port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return stun.parse_message(data).transaction_id == req.transaction_id


@pytest.fixture
def coturn(tmp_path):
    started: list[Coturn] = []

    def run(extra: list[str]) -> Coturn:
        d = tmp_path / f"coturn{len(started)}"
        d.mkdir()
        c = Coturn(d, extra).start()
        started.append(c)
        return c

    yield run
    for c in started:
        c.stop()


async def _allocate(server: Coturn) -> TurnClientUdpProtocol:
    """A UDP relay allocation with credentials minted as the gateway mints them."""
    ice = IceProvider(turn_urls=[f"turn:{LOOPBACK}:{server.port}"], turn_secret=SECRET, ttl_s=600)
    username, password = ice.turn_credentials("viewer-1")
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(
        lambda: TurnClientUdpProtocol((LOOPBACK, server.port), username=username,
                                      password=password, lifetime=600,
                                      channel_refresh_time=500),
        remote_addr=(LOOPBACK, server.port))
    relayed = await asyncio.wait_for(proto.connect(), 10)
    assert relayed[0] == LOOPBACK
    return proto


async def _create_permission(proto: TurnClientUdpProtocol, peer: tuple[str, int]) -> None:
    req = stun.Message(message_method=stun.Method.CREATE_PERMISSION,
                       message_class=stun.Class.REQUEST)
    req.attributes["XOR-PEER-ADDRESS"] = peer
    await asyncio.wait_for(proto.request_with_retry(req), 10)


async def _close(proto: TurnClientUdpProtocol) -> None:
    """Free the allocation; delete() closes the socket whatever the server answers."""
    await asyncio.wait_for(proto.delete(), 10)


def test_compose_denies_loopback_itself():
    """The ranges the test starts coturn with are compose's, and they hold 127.0.0.1."""
    denied = compose_denied()
    assert denied and any(_holds_loopback(a) for a in denied)


@pytest.mark.parametrize("allow_loopback", [False, True],
                         ids=["coturn-default", "allow-loopback-peers"])
async def test_relay_toward_a_denied_address_is_refused(coturn, allow_loopback):
    extra = compose_denied() + ["--denied-peer-ip=127.0.0.0-127.255.255.255"]
    if allow_loopback:
        extra.append("--allow-loopback-peers")  # the denied list alone must refuse
    server = coturn(extra)
    proto = await _allocate(server)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((LOOPBACK, 0))
    try:
        with pytest.raises(stun.TransactionFailed) as err:
            await _create_permission(proto, peer.getsockname())
        assert err.value.response.error_code == 403, err.value.response.attributes
        assert "forbidden" in err.value.response.attributes["ERROR-CODE"][1].lower()
        # the channel path (what a WebRTC stack uses) is refused too
        with pytest.raises(stun.TransactionFailed) as err:
            await asyncio.wait_for(proto.channel_bind(0x4000, peer.getsockname()), 10)
        assert err.value.response.error_code == 403
    finally:
        peer.close()
        await _close(proto)


async def test_control_without_the_loopback_range_the_relay_works(coturn):
    """Same server, 127/8 not denied and loopback peers allowed: the permission is granted
    and data crosses the relay. Without this the refusal above could be any failure."""
    extra = [a for a in compose_denied() if not _holds_loopback(a)]
    server = coturn(extra + ["--allow-loopback-peers"])
    proto = await _allocate(server)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((LOOPBACK, 0))
    peer.setblocking(False)
    try:
        await _create_permission(proto, peer.getsockname())
        await asyncio.wait_for(proto.send_data(b"through the relay", peer.getsockname()), 10)
        loop = asyncio.get_running_loop()
        data, source = await asyncio.wait_for(loop.sock_recvfrom(peer, 2048), 10)
        assert data == b"through the relay"
        assert source == tuple(proto.relayed_address)
    finally:
        peer.close()
        await _close(proto)
