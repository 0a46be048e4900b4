"""ICE servers handed to clients: STUN URLs, and TURN with short-lived REST-API credentials.

The TURN REST scheme (as coturn's ``use-auth-secret``): username ``<expiry>:<user>``,
password ``base64(HMAC-SHA1(secret, username))``. Nothing is stored; the TURN server checks
the HMAC with the same shared secret and refuses the credential after ``expiry``.

Who gets what: a TURN credential lets its holder relay traffic through our TURN
server, so it is handed out only where it is needed: to the participants of a call, when the
call starts (``call.state`` ``connecting`` for a participant that still has to send its
``rtc.offer``), and it expires no later than the call's own deadline (``max_call_s`` after it
was accepted). ``welcome`` carries STUN only: connecting a socket, as every viewer of a stream
does, is not a reason to hold a relay credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field


@dataclass
class IceProvider:
    stun_urls: list[str] = field(default_factory=list)
    turn_urls: list[str] = field(default_factory=list)
    turn_secret: str | None = None
    ttl_s: int = 3600

    def turn_credentials(self, user: str, now: float | None = None,
                         until: float | None = None) -> tuple[str, str]:
        """``(username, credential)`` valid for ``ttl_s``, and never past ``until``."""
        now = now if now is not None else time.time()
        expiry = now + self.ttl_s
        if until is not None:
            expiry = min(expiry, until)
        if self.turn_secret is None:
            raise ValueError("TURN credentials need turn_secret")
        username = f"{int(expiry)}:{user}"
        digest = hmac.new(self.turn_secret.encode(), username.encode(), hashlib.sha1).digest()
        return username, base64.b64encode(digest).decode()

    def stun_servers(self) -> list[dict]:
        """RTCIceServer dicts without any credential: what ``welcome`` carries."""
        return [{"urls": list(self.stun_urls)}] if self.stun_urls else []

    def for_call(self, user: str, until: float, now: float | None = None) -> list[dict]:
        """RTCIceServer dicts for one participant of a call whose deadline is ``until``
        (wall clock): STUN, and TURN with a credential that expires by then."""
        servers = self.stun_servers()
        if self.turn_urls and self.turn_secret:
            username, credential = self.turn_credentials(user, now=now, until=until)
            servers.append({"urls": list(self.turn_urls), "username": username,
                            "credential": credential})
        return servers
