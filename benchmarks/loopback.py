"""Media on loopback only, for benchmarks (docs/testing.md#network-safety): browsers that
call each other (``benchmarks/call_setup.py``'s direct path, ``benchmarks/impaired.py``) and
the relays between them, and aiortc peers in a benchmark's own process
(:func:`in_process_ice_on_loopback`).

Load and fault benchmarks talk only to loopback. Chromium runs with
``--webrtc-ip-handling-policy=default_public_and_private_interfaces``
(``tests/e2e/conftest.py``): its one IPv4 UDP socket is bound to 0.0.0.0 and *announced*
under the default route's address (eth0's), and packets it sends to 127.0.0.1 leave from
127.0.0.1. Two browsers that exchanged their candidates unchanged would send to each other's
eth0 address; the signaling relay passes every candidate through :func:`loopback_message`
instead, which names the same port on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json

from tests.loopback_ice import (
    is_loopback,  # the one check: 127/8, ::1, mapped, bracketed
)

__all__ = ["in_process_ice_on_loopback", "is_loopback", "loopback_candidate", "loopback_message",
           "loopback_sdp"]


def in_process_ice_on_loopback() -> None:
    """Every aiortc peer this process creates from now on gathers on 127.0.0.1 only, is never
    given a non-loopback candidate, STUN or TURN server, and never sends to another address
    (``tests/loopback_ice.py``, what every test process runs with). One call, before the first
    ``RTCPeerConnection``, in a benchmark whose clients are in-process aiortc peers
    (``benchmarks/media.py``); its gateway needs ``tests.conftest.LOOPBACK_MEDIA_ENV`` (a
    ``livedesk serve`` process) or ``LOOPBACK_MEDIA`` (an in-process ``Config``) as well.
    Refused datagrams are counted in ``tests.loopback_ice.REFUSED``."""
    from tests.loopback_ice import install

    install()


def loopback_candidate(candidate: str) -> str | None:
    """A browser's ICE candidate as the other browser may see it: an IPv4 UDP host candidate
    with its address replaced by 127.0.0.1 (same port), anything else None (dropped).

    Why rewriting is right, and safe: the port is Chromium's any-address socket (module
    docstring), which answers on 127.0.0.1 too. If a Chromium ever bound that port to one
    address only, the rewritten candidate would reach nothing on 127.0.0.1 and the call
    would fail: never a packet to another address.
    ``candidate`` is the attribute value (``candidate:…``) or an SDP line (``a=candidate:…``).
    """
    prefix = "a=" if candidate.startswith("a=") else ""
    f = candidate[len(prefix):].split()
    # candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> …
    if (len(f) < 8 or not f[0].startswith("candidate:") or f[2].lower() != "udp"
            or f[6] != "typ" or f[7] != "host"):
        return None
    try:
        ipaddress.IPv4Address(f[4])
    except ValueError:
        return None  # IPv6, or an mDNS name
    f[4] = "127.0.0.1"
    return prefix + " ".join(f)


def loopback_sdp(sdp: str) -> str:
    """``sdp`` with every ``a=candidate`` line made :func:`loopback_candidate` (or dropped)."""
    out = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:"):
            kept = loopback_candidate(line)
            if kept is None:
                continue
            line = kept
        out.append(line)
    return "\r\n".join(out)


def loopback_message(text: str) -> str | None:
    """A P2P page's relay message with its ICE candidates on loopback (None: nothing left
    to pass on). Every SDP and trickled candidate of ``call_setup.start_relay`` goes through
    this."""
    m = json.loads(text)
    if m.get("type") in ("offer", "answer") and isinstance(m.get("sdp"), str):
        m["sdp"] = loopback_sdp(m["sdp"])
    elif m.get("type") == "candidate" and m.get("candidate") and m["candidate"].get("candidate"):
        line = loopback_candidate(m["candidate"]["candidate"])
        if line is None:
            return None
        m["candidate"]["candidate"] = line
    return json.dumps(m)
