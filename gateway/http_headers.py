"""Security headers on every HTTP response, and the list of gateways a page may connect to.

Why every response (pages, static files, JSON, errors) and not just the pages: a header
that is missing on one path is the path an attacker uses. They are computed once from the
config and added in ``on_response_prepare``, so no handler can forget them.

* ``Content-Security-Policy``: scripts, styles and connections from this origin only (the
  pages hold no inline script, style or ``on…=`` handler); WebSockets to this gateway's
  own ``ws(s)://`` origin and to the configured ``gateway_origins`` only; ``frame-ancestors``
  from ``Config.frame_ancestors`` (``'none'`` by default: ``/admin`` with its Approve
  buttons cannot be framed for click-jacking).
* ``X-Frame-Options``: the same decision for browsers without CSP 3 (``DENY`` for
  ``'none'``, ``SAMEORIGIN`` for ``'self'``; omitted for a list of origins, which it
  cannot express: CSP governs there).
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (a page URL never
  travels to another site), and a ``Server`` header without a version.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from .config import Config

SERVER = "LiveDesk"


def own_ws_origin(public_url: str) -> str:
    """``http://h:p`` → ``ws://h:p``; ``https://h`` → ``wss://h``."""
    u = urlsplit(public_url)
    scheme = "wss" if u.scheme == "https" else "ws"
    return f"{scheme}://{u.netloc}"


@dataclass(frozen=True)
class SecurityHeaders:
    headers: dict[str, str]
    gateway_origins: tuple[str, ...]  # ws(s) origins a page's ?gw= may name

    @classmethod
    def from_config(cls, config: Config) -> SecurityHeaders:
        own = own_ws_origin(config.public_url)
        origins = tuple(dict.fromkeys([own, *config.gateway_origins]))
        ancestors = " ".join(config.frame_ancestors)
        csp = "; ".join((
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:",
            "connect-src 'self' " + " ".join(origins),
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {ancestors}",
        ))
        headers = {
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Server": SERVER,
        }
        if config.frame_ancestors == ["'none'"]:
            headers["X-Frame-Options"] = "DENY"
        elif config.frame_ancestors == ["'self'"]:
            headers["X-Frame-Options"] = "SAMEORIGIN"
        return cls(headers, origins)

    async def on_response_prepare(self, request: web.Request,
                                  response: web.StreamResponse) -> None:
        response.headers.update(self.headers)

    def install(self, app: web.Application) -> None:
        app.on_response_prepare.append(self.on_response_prepare)
