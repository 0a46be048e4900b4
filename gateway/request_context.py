"""The HTTP middleware that names every request: a request id, the node, and a span.

Why here and not in each handler: an order POST, a sign-in or an export logs from deep in
the support plane or the store, which know nothing of HTTP; the ids bound here
(:mod:`signaling.logctx`) are on every line the request's task logs, and its span
(:mod:`signaling.tracing`) is the parent of every span the request opens (the room's order
step, a Redis commit).

- ``X-Request-Id``: taken from the request when it is a short token of safe characters
  (a proxy's or a shop's own id, so both sides' logs join), else a new random one;
  returned on every response.
- The span ``HTTP <METHOD> <route>`` (the route's pattern, never the path with its ids,
  never the query string) continues the caller's trace when the request carries a W3C
  ``traceparent``. A WebSocket upgrade gets no span: the socket lives for hours, and each of
  its messages is a trace of its own (``signaling/server.py``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry.trace import SpanKind, Status, StatusCode

from signaling import logctx, tracing

REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id_of(request: web.Request) -> str:
    """The caller's ``X-Request-Id`` when it is safe to log and echo, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _SAFE_ID.fullmatch(given) else secrets.token_hex(8)


def _route(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info is not None else None
    return resource.canonical if resource is not None else "(unmatched)"


def request_context(node_id: str) -> Middleware:
    """The middleware for one node (two nodes in one process each name their own)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request_id_of(request)
        # aiohttp runs each request in a task of its own, and writes the access log line
        # in it after the handler: bound for the task (not a block), that line has the ids
        logctx.bind(node=node_id, request_id=rid, session=None, user=None,
                    conversation=None, call=None)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        # the caller's W3C traceparent, read by the one parser of it (signaling.tracing)
        parent = request.headers.get("traceparent")
        route = _route(request)
        with tracing.span(f"HTTP {request.method} {route}", parent=parent,
                          kind=SpanKind.SERVER,
                          attributes={"http.request.method": request.method,
                                      "http.route": route,
                                      "livedesk.node": node_id}) as s:
            try:
                resp = await handler(request)
            except web.HTTPException as e:  # a redirect or a 4xx answer, not a failure:
                answer = e  # raised after the span, which would mark it an error
                s.set_attribute("http.response.status_code", e.status)
                if e.status >= 500:
                    s.set_status(Status(StatusCode.ERROR))
            else:
                s.set_attribute("http.response.status_code", resp.status)
                if resp.status >= 500:
                    s.set_status(Status(StatusCode.ERROR))
                if not resp.prepared:
                    resp.headers[REQUEST_ID_HEADER] = rid
                return resp
        answer.headers[REQUEST_ID_HEADER] = rid
        raise answer

    return middleware
