"""The HTTP server's logs: one access line per request, never a query string, never a
token; no traceback for a client's malformed request; no version in ``Server``.

Why not aiohttp's default format: its ``%r`` is the whole request line, query string
included, so a page opened as ``/admin?token=eyJ…`` or a socket at ``/ws?token=…`` wrote a
working admin token into every log file, log shipper and support ticket that quoted it.
This logger prints the path only (percent-encoded as it arrived, so a request cannot
forge log lines), drops the ``Referer`` (another page's URL, with whatever it carried),
and masks anything shaped like a JWT that is left in the path or the user agent.
"""

from __future__ import annotations

import logging
import re

import aiohttp.web_response
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, StreamResponse

from .http_headers import SERVER

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
MAX_FIELD = 200


def _safe(text: str) -> str:
    """One line of printable ASCII, bounded, with tokens masked."""
    text = _UNPRINTABLE.sub("?", text[:MAX_FIELD])
    return JWT.sub("[token]", text)


class AccessLogger(AbstractAccessLogger):
    """``<remote> "<METHOD> <path> HTTP/x.y" <status> <bytes> <seconds>s "<user agent>"``."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        path = request.raw_path.split("?", 1)[0]
        v = request.version
        self.logger.info('%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
                         request.remote or "-", _safe(request.method), _safe(path),
                         v.major, v.minor, response.status, response.body_length, time,
                         _safe(request.headers.get("User-Agent", "-")))


class ClientErrorFilter(logging.Filter):
    """Turns aiohttp's "Error handling request" for a malformed request (bad request line,
    header too long, invalid chunking: an ``HttpProcessingError``, the client's mistake and
    answered 400) into one warning line without the traceback. Anyone can send those
    without a token; with a traceback each, they were a cheap way to flood the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.msg}: {type(exc).__name__} (client error, answered 400)"
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_CLIENT_ERRORS = ClientErrorFilter()


def hide_server_version() -> None:
    """``Server: LiveDesk`` on every response, including the 400s aiohttp writes itself for
    requests it cannot parse (those bypass the app, so ``on_response_prepare`` cannot set
    it). aiohttp takes the default from this module global; replacing it is the only
    switch it offers. Also installs :class:`ClientErrorFilter` on aiohttp's server log.
    Idempotent."""
    aiohttp.web_response.SERVER_SOFTWARE = SERVER
    server_log = logging.getLogger("aiohttp.server")
    if _CLIENT_ERRORS not in server_log.filters:
        server_log.addFilter(_CLIENT_ERRORS)
