"""Every aioice ICE agent of this process on loopback: what in-process aiortc peers gather,
are given and send to (docs/testing.md#network-safety).

Why a process-wide patch of aioice, not a setting: aiortc builds its ICE agents itself
(``aioice.Connection`` inside ``RTCIceGatherer``) and has no option for interfaces, and
aioice gathers host candidates on every interface address *except* 127.0.0.1 and ::1: a
call between two peers of one test process crossed this host's eth0 address (192.0.2.2
here), which is not loopback. The gateway narrows its own agents
(``gateway/media/ice_policy.py``, ``media_address``: the tests' ``LOOPBACK_MEDIA``); the
tests' clients (``tests/media/rtc_client.py``) and bare ``RTCPeerConnection``s have no such
seam, and a test that forgets one must not leak. :func:`install` (``tests/conftest.py`` does
it for every test run; a benchmark with in-process aiortc peers calls it first) makes every
agent of the process:

* gather host candidates on 127.0.0.1 only (aioice's ``get_host_addresses``). A gateway's own
  ``media_address`` still decides for its agents (``PolicyConnection`` replaces the list);
* forget STUN/TURN servers that are not loopback literals (aiortc's default configuration
  names stun.l.google.com: a DNS query and STUN packets to the internet);
* drop remote candidates that are not loopback literals before the agent sees them: no
  connectivity check to another address, no mDNS query for a ``.local`` name (recorded in
  :data:`DROPPED`; normal when a gateway announces an extra address);
* refuse to send any STUN message or data datagram to a non-loopback address. The only way
  left to have one is a peer-reflexive address, learnt from a packet that another process
  sent from a non-loopback address to an agent's 127.0.0.1 socket (a browser with its
  default policy does that); the answer is not sent, and the refusal is recorded in
  :data:`REFUSED`, which fails the test that caused it (``tests/conftest.py``). The
  gateway's passthrough fast path writes to its nominated pair's socket directly
  (``compat/rtp_forwarding.py``), but a pair is nominated only after a STUN check to its
  remote address was answered, and every check goes through ``send_stun``.

The wrappers keep ``__wrapped__`` (``functools.wraps``), so the gateway's source checks of
aioice (``compat/hooks.py``) read aioice's own code, and its fast path, which compares
``StunProtocol.send_data`` by identity, still recognises a plain socket. :func:`uninstall`
restores aioice exactly.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any

import aioice.ice as aioice_ice

__all__ = ["DROPPED", "REFUSED", "Refused", "install", "installed", "is_loopback",
           "uninstall"]


@dataclass(frozen=True)
class Refused:
    """Something an agent was kept from: ``what`` is ``"stun"``/``"data"`` (a datagram not
    sent), ``"candidate"`` (a remote candidate dropped) or ``"stun_server"``/``"turn_server"``
    (a server forgotten)."""

    what: str
    host: str
    port: int


REFUSED: list[Refused] = []  # datagrams never sent: each one fails its test
DROPPED: list[Refused] = []  # remote candidates and servers the agents never saw

_ORIGINAL: dict[str, Any] = {}
_LOOPBACK_CACHE: dict[str, bool] = {}


def is_loopback(host: object) -> bool:
    """A loopback IP literal (127/8, ::1, IPv4-mapped 127/8; an IPv6 literal may come in
    brackets, as browsers' stats write it). False for names (``.local`` included), None and
    anything else: the safe side. The one such check of the tests and benchmarks."""
    if not isinstance(host, str):
        return False
    known = _LOOPBACK_CACHE.get(host)
    if known is not None:
        return known
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ok = False
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        ok = ip.is_loopback
    if len(_LOOPBACK_CACHE) < 4096:  # a per-packet check: remember the few addresses seen
        _LOOPBACK_CACHE[host] = ok
    return ok


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """aioice's ``get_host_addresses``, on loopback: 127.0.0.1 (::1 for an IPv6-only agent)."""
    if use_ipv4:
        return ["127.0.0.1"]
    return ["::1"] if use_ipv6 else []


def installed() -> bool:
    return bool(_ORIGINAL)


def install() -> None:
    """Patch aioice for the whole process (idempotent); see the module docstring."""
    if _ORIGINAL:
        return
    conn, proto = aioice_ice.Connection, aioice_ice.StunProtocol
    _ORIGINAL.update(get_host_addresses=aioice_ice.get_host_addresses,
                     init=conn.__init__, add_remote_candidate=conn.add_remote_candidate,
                     send_stun=proto.send_stun, send_data=proto.send_data)
    init = _ORIGINAL["init"]
    add_remote = _ORIGINAL["add_remote_candidate"]
    send_stun = _ORIGINAL["send_stun"]
    send_data = _ORIGINAL["send_data"]

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        for name in ("stun_server", "turn_server"):
            server = getattr(self, name)
            if server is not None and not is_loopback(server[0]):
                DROPPED.append(Refused(name, str(server[0]), int(server[1])))
                setattr(self, name, None)

    @functools.wraps(add_remote)
    async def add_remote_candidate(self, remote_candidate: Any) -> None:
        if remote_candidate is not None and not is_loopback(remote_candidate.host):
            DROPPED.append(Refused("candidate", str(remote_candidate.host),
                                   int(remote_candidate.port)))
            return
        await add_remote(self, remote_candidate)

    @functools.wraps(send_stun)
    def guarded_send_stun(self, message: Any, addr: tuple[str, int]) -> None:
        if not is_loopback(addr[0]):
            REFUSED.append(Refused("stun", str(addr[0]), int(addr[1])))
            return
        send_stun(self, message, addr)

    @functools.wraps(send_data)
    async def guarded_send_data(self, data: bytes, addr: tuple[str, int]) -> None:
        if not is_loopback(addr[0]):
            REFUSED.append(Refused("data", str(addr[0]), int(addr[1])))
            return
        await send_data(self, data, addr)

    aioice_ice.get_host_addresses = _host_addresses
    conn.__init__ = __init__  # type: ignore[method-assign]
    conn.add_remote_candidate = add_remote_candidate  # type: ignore[method-assign]
    proto.send_stun = guarded_send_stun  # type: ignore[method-assign]
    proto.send_data = guarded_send_data  # type: ignore[method-assign]


def uninstall() -> None:
    """aioice exactly as it was (agents created meanwhile keep what they gathered)."""
    if not _ORIGINAL:
        return
    conn, proto = aioice_ice.Connection, aioice_ice.StunProtocol
    aioice_ice.get_host_addresses = _ORIGINAL["get_host_addresses"]
    conn.__init__ = _ORIGINAL["init"]  # type: ignore[method-assign]
    conn.add_remote_candidate = _ORIGINAL["add_remote_candidate"]  # type: ignore[method-assign]
    proto.send_stun = _ORIGINAL["send_stun"]  # type: ignore[method-assign]
    proto.send_data = _ORIGINAL["send_data"]  # type: ignore[method-assign]
    _ORIGINAL.clear()
