"""Which address a connection comes from, for per-address limits.

Behind a reverse proxy every socket comes from the proxy's address, so a per-address cap
would lump every viewer together; but ``X-Forwarded-For`` and ``Forwarded`` are just
headers, and a client talking to the gateway directly can write anything in them (and so
dodge the cap with a fresh made-up address per socket). So the headers are believed only
when the TCP peer is one of the configured trusted proxies, and only as far back as the
chain stays within trusted proxies: the client address is the right-most entry that is
not itself a trusted proxy (every proxy appends the address it saw, so entries to the left
of an untrusted one were written by the client and prove nothing).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_FOR = re.compile(r'(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]*)', re.IGNORECASE)


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` → networks; raises ``ValueError`` naming a bad entry."""
    out = []
    for e in entries:
        try:
            out.append(ipaddress.ip_network(e.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{e!r} is not an IP address or network") from None
    return tuple(out)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a header entry: ``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``, ``::1``,
    ``"[2001:db8::1]"``; None for anything else (``unknown``, obfuscated ids, junk)."""
    t = text.strip().strip('"')
    if t.startswith("["):
        t = t[1:t.find("]")] if "]" in t else ""
    elif t.count(":") == 1:
        t = t.split(":", 1)[0]
    try:
        return ipaddress.ip_address(t)
    except ValueError:
        return None


@dataclass(frozen=True)
class ClientAddress:
    """Decides a connection's client address from its peer and headers (one rule, tested
    on header strings alone: no traffic needed)."""

    trusted: tuple[Network, ...] = field(default_factory=tuple)

    def is_trusted(self, addr: object) -> bool:
        return addr is not None and any(addr in n for n in self.trusted)

    def __call__(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The address to count the connection against (the peer when nothing better)."""
        peer_ip = _ip(peer or "")
        if peer_ip is None:
            return peer or "unknown"
        if not self.is_trusted(peer_ip):
            return str(peer_ip)
        chain = _chain(headers)
        for addr in reversed(chain):
            if addr is None:
                return str(peer_ip)  # unreadable: believe nothing further left
            if not self.is_trusted(addr):
                return str(addr)
        # every entry is a trusted proxy (an internal client), or there were none
        return str(chain[0]) if chain else str(peer_ip)


def _chain(headers: Mapping[str, str]) -> list[Address | None]:
    """The forwarding chain, left (client) to right (nearest proxy). ``Forwarded`` (RFC 7239)
    wins over ``X-Forwarded-For`` when both are there."""
    fwd = headers.get("Forwarded")
    if fwd:
        out: list[Address | None] = []
        for element in fwd.split(","):
            m = _FOR.search(element)
            out.append(_ip(m.group(1)) if m else None)
        return out
    xff = headers.get("X-Forwarded-For")
    if xff:
        return [_ip(x) for x in xff.split(",")]
    return []
