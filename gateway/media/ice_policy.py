"""Where the gateway's ICE agents bind and what they advertise: media addresses, UDP ports.

aiortc creates its ICE agents itself (``aioice.Connection`` inside ``RTCIceGatherer``) and
exposes no option for either: aioice 0.13 binds one UDP socket per local interface address
(all of them except 127.0.0.1) on an ephemeral port. This module narrows that, and only for
the gateway's own connections:

* ``media_address`` entries that are addresses of this machine → host candidates are
  gathered **only** on them (instead of every interface);
* other entries (a public/NAT 1:1 address) → **announced**: every host candidate is also
  advertised with that address and the same port, slightly lower priority (the gateway's
  private address still works on the same LAN);
* ``udp_port_min``/``udp_port_max`` → host sockets bind inside that range (random order,
  first free port). TURN allocations are on the TURN server's ports and unaffected.

How: :class:`PolicyConnection` subclasses aioice's ``Connection`` and replaces it in
``aiortc.rtcicetransport`` once; it behaves exactly like the original unless the
:data:`ICE_POLICY` context variable is set, which :class:`~gateway.media.peer.Peer` does
around the calls that gather (``setLocalDescription``). In-process aiortc clients (tests)
therefore keep aioice's default behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
from contextvars import ContextVar
from dataclasses import dataclass

import aioice.ice as aioice_ice
import ifaddr
from aioice import Candidate
from aioice.candidate import candidate_foundation, candidate_priority
from aiortc import rtcicetransport


@dataclass(frozen=True)
class IcePolicy:
    bind: tuple[str, ...] = ()  # local addresses to gather on (empty: aioice's choice)
    announce: tuple[str, ...] = ()  # extra addresses advertised for every host candidate
    port_min: int = 0
    port_max: int = 0

    @property
    def active(self) -> bool:
        return bool(self.bind or self.announce or (self.port_min and self.port_max))

    @classmethod
    def from_config(cls, media_address: list[str], port_min: int, port_max: int) -> IcePolicy:
        local = set(_local_addresses())
        bind = tuple(a for a in media_address if a in local)
        announce = tuple(a for a in media_address if a not in local)
        return cls(bind=bind, announce=announce, port_min=port_min or 0, port_max=port_max or 0)


ICE_POLICY: ContextVar[IcePolicy | None] = ContextVar("livedesk_ice_policy", default=None)


def _local_addresses() -> list[str]:
    out = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            out.append(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
    return out


class PolicyConnection(aioice_ice.Connection):
    """aioice ``Connection`` honouring :data:`ICE_POLICY` (read when gathering)."""

    async def get_component_candidates(self, component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Candidate]:
        policy = ICE_POLICY.get()
        if policy is None or not policy.active:
            return await super().get_component_candidates(component, addresses, timeout)
        if policy.bind:
            addresses = list(policy.bind)
        if policy.port_min and policy.port_max:
            candidates = await self._host_in_range(component, addresses, policy)
            # STUN over our host sockets, TURN as aioice does it (no host sockets to bind)
            srflx = [aioice_ice.server_reflexive_candidate(p, self.stun_server)
                     for p in self._protocols if self.stun_server
                     and p.local_candidate.component == component
                     and ipaddress.ip_address(p.local_candidate.host).version == 4]
            for got in await asyncio.gather(*srflx, return_exceptions=True):
                if not isinstance(got, BaseException):
                    candidates.append(got[0])
            candidates += await super().get_component_candidates(component, [], timeout)
        else:
            candidates = await super().get_component_candidates(component, addresses, timeout)
        for c in [c for c in candidates if c.type == "host"]:
            fam = ipaddress.ip_address(c.host).version
            for addr in policy.announce:
                if ipaddress.ip_address(addr).version == fam:
                    candidates.append(Candidate(
                        foundation=candidate_foundation("host", "udp", addr),
                        component=component, transport="udp",
                        priority=candidate_priority(component, "host", local_pref=65534),
                        host=addr, port=c.port, type="host"))
        return candidates

    async def _host_in_range(self, component: int, addresses: list[str],
                             policy: IcePolicy) -> list[Candidate]:
        loop = asyncio.get_running_loop()
        out = []
        for address in addresses:
            fam = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
            ports = list(range(policy.port_min, policy.port_max + 1))
            random.shuffle(ports)
            sock = None
            for port in ports:
                s = socket.socket(fam, socket.SOCK_DGRAM)
                try:
                    s.bind((address, port))
                except OSError:
                    s.close()
                    continue
                sock = s
                break
            if sock is None:
                continue  # range exhausted on this address: no candidate there
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                aioice_ice.turn.UDP_SOCKET_BUFFER_SIZE)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice_ice.StunProtocol(self), sock=sock)
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host), component=component,
                transport="udp", priority=candidate_priority(component, "host"),
                host=host, port=port, type="host")
            self._protocols.append(protocol)
            out.append(protocol.local_candidate)
        return out


def install() -> None:
    """Make aiortc build :class:`PolicyConnection` (inert until ICE_POLICY is set)."""
    if rtcicetransport.Connection is not PolicyConnection:
        # the module global RTCIceGatherer builds its agent from (a class: assigned by name)
        vars(rtcicetransport)["Connection"] = PolicyConnection


@contextlib.contextmanager
def applied(policy: IcePolicy | None):
    if policy is None or not policy.active:
        yield
        return
    token = ICE_POLICY.set(policy)
    try:
        yield
    finally:
        ICE_POLICY.reset(token)
