"""Which remote ICE candidates the gateway's ICE agents may be given.

A participant names its ICE candidates itself (``rtc.candidate``, or ``a=candidate`` lines in
its ``rtc.offer``/``rtc.answer`` SDP), and the gateway's ICE agent sends STUN connectivity
checks to every one of them. Left alone, any viewer could make the gateway send packets to
the private network behind it, to the host itself or to a cloud metadata service
(169.254.169.254). :class:`CandidatePolicy` is the one rule for what is kept:

* the address must be an IP literal (``ipaddress`` accepts it). Anything else is dropped:
  an mDNS name (``….local``) is never resolvable usefully — the gateway is not on the
  browser's link — resolving it would multicast queries on the gateway's own network on a
  client's say-so, and the address it resolves to would escape the range check; another
  host name would be resolved by the socket layer (blocking, and again to any address).
  Browsers that hide their addresses behind mDNS still connect: their checks reach the
  gateway's candidates and are answered as peer-reflexive candidates (real source
  addresses, not names a client chose);
* the address (an IPv4-mapped IPv6 address counts as its IPv4 address) must not be in a
  denied range (``ice_denied_ranges``, by default the private, loopback, link-local, CGNAT,
  multicast and reserved ranges). ``ice_allow_loopback`` re-admits 127/8 and ::1 for tests
  and development on one machine.

Ignored candidates are dropped silently for the client (a browser legitimately gathers
private addresses; nothing is wrong with its request) and logged at debug level. When a
candidate was dropped, the end-of-candidates marker is held back too: aioice gives up at
once when the last candidate is known and none is usable, before the browser's checks can
teach it a peer-reflexive one.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiortc.sdp import candidate_from_sdp

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class CandidatePolicy:
    denied: tuple[Network, ...] = ()
    allow_loopback: bool = False

    @classmethod
    def from_ranges(cls, ranges: Iterable[str], allow_loopback: bool = False) -> CandidatePolicy:
        return cls(tuple(ipaddress.ip_network(r, strict=False) for r in ranges), allow_loopback)

    @classmethod
    def from_config(cls, config: object) -> CandidatePolicy:
        from ..config import DEFAULT_ICE_DENIED_RANGES

        return cls.from_ranges(getattr(config, "ice_denied_ranges", DEFAULT_ICE_DENIED_RANGES),
                               bool(getattr(config, "ice_allow_loopback", False)))

    def allows(self, address: str) -> bool:
        """May the gateway send connectivity checks to ``address`` (a candidate's address)?"""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # mDNS or another host name, or not an address at all
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if self.allow_loopback and any(ip in n for n in LOOPBACK if n.version == ip.version):
            return True
        return not any(ip in n for n in self.denied if n.version == ip.version)

    def allows_line(self, candidate: str) -> bool:
        """The same for a candidate attribute value (``"<foundation> <component> …"``, with
        or without a leading ``candidate:``). Raises ``ValueError`` if it is not one."""
        try:
            c = candidate_from_sdp(candidate.removeprefix("candidate:"))
        except (AssertionError, ValueError, IndexError):  # what aiortc's parser raises
            raise ValueError("not an ICE candidate line") from None
        return self.allows(c.ip)

    def filter_sdp(self, sdp: str) -> tuple[str, int]:
        """``sdp`` without the ``a=candidate`` lines this policy refuses, and how many went.

        Lines are split exactly as aiortc splits them (``str.splitlines``) so that what is
        checked here is what aiortc would read. A candidate line aiortc cannot parse either
        is kept: aiortc then refuses the SDP (``bad_sdp``), as before. If anything was
        dropped, ``a=end-of-candidates`` is dropped too (see the module docstring).
        """
        lines = sdp.splitlines()
        kept: list[str] = []
        dropped = 0
        for line in lines:
            if line.startswith("a=candidate:"):
                try:
                    ok = self.allows_line(line[len("a=candidate:"):])
                except ValueError:
                    ok = True  # aiortc refuses the whole SDP on it
                if not ok:
                    dropped += 1
                    log.debug("ignored a remote ICE candidate in SDP: %s", line[:200])
                    continue
            kept.append(line)
        if not dropped:
            return sdp, 0
        kept = [x for x in kept
                if not (x.startswith("a=") and x[2:].split(":", 1)[0] == "end-of-candidates")]
        return "\r\n".join(kept) + "\r\n", dropped
