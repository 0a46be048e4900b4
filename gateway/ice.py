"""ICE servers handed to clients: STUN URLs, and TURN with short-lived REST-API credentials.

The TURN REST scheme (as coturn's ``use-auth-secret``): username ``<expiry>:<user>``,
password ``base64(HMAC-SHA1(secret, username))``. Nothing is stored; the TURN server checks
the HMAC with the same shared secret and refuses the credential after ``expiry``.
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

    def turn_credentials(self, user: str, now: float | None = None) -> tuple[str, str]:
        expiry = int((now if now is not None else time.time()) + self.ttl_s)
        username = f"{expiry}:{user}"
        digest = hmac.new(self.turn_secret.encode(), username.encode(), hashlib.sha1).digest()
        return username, base64.b64encode(digest).decode()

    def for_user(self, user: str) -> list[dict]:
        """RTCIceServer dicts for one user (what ``welcome`` and ``call.state`` carry)."""
        servers: list[dict] = []
        if self.stun_urls:
            servers.append({"urls": list(self.stun_urls)})
        if self.turn_urls and self.turn_secret:
            username, credential = self.turn_credentials(user)
            servers.append({"urls": list(self.turn_urls), "username": username,
                            "credential": credential})
        return servers
