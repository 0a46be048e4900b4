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
* The embed page (``/embed``, the widget's iframe) is the one exception to the framing
  rule: its ``frame-ancestors`` is the list of origins the room's shop registered
  (``livedesk shop add --origin``; ``'none'`` when there are none), set per request by
  :meth:`SecurityHeaders.frame_only_by`, and it has no ``X-Frame-Options`` (which cannot
  name an origin). Every other response keeps the configured policy.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (a page URL never
  travels to another site), and a ``Server`` header without a version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from .config import Config

SERVER = "LiveDesk"
# request key: the origins that may frame this response (set by the embed page's handler)
FRAME_ANCESTORS = web.RequestKey("livedesk_frame_ancestors", tuple)


def own_ws_origin(public_url: str) -> str:
    """``http://h:p`` → ``ws://h:p``; ``https://h`` → ``wss://h``."""
    u = urlsplit(public_url)
    scheme = "wss" if u.scheme == "https" else "ws"
    return f"{scheme}://{u.netloc}"


@dataclass(frozen=True)
class SecurityHeaders:
    headers: dict[str, str]
    gateway_origins: tuple[str, ...]  # ws(s) origins a page's ?gw= may name
    base_csp: str = ""  # the policy without its frame-ancestors directive

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
        ))
        headers = {
            "Content-Security-Policy": f"{csp}; frame-ancestors {ancestors}",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Server": SERVER,
        }
        if config.frame_ancestors == ["'none'"]:
            headers["X-Frame-Options"] = "DENY"
        elif config.frame_ancestors == ["'self'"]:
            headers["X-Frame-Options"] = "SAMEORIGIN"
        return cls(headers, origins, csp)

    @staticmethod
    def frame_only_by(request: web.Request, origins: Iterable[str]) -> None:
        """Let this request's response be framed by ``origins`` only (none: by nobody).
        The origins come from the store, normalised by ``livedesk shop add``."""
        request[FRAME_ANCESTORS] = tuple(origins)

    async def on_response_prepare(self, request: web.Request,
                                  response: web.StreamResponse) -> None:
        response.headers.update(self.headers)
        ancestors = request.get(FRAME_ANCESTORS)
        if ancestors is not None:
            allowed = " ".join(ancestors) or "'none'"
            response.headers["Content-Security-Policy"] = (
                f"{self.base_csp}; frame-ancestors {allowed}")
            response.headers.pop("X-Frame-Options", None)

    def install(self, app: web.Application) -> None:
        app.on_response_prepare.append(self.on_response_prepare)
