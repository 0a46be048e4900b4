"""One trace per call setup: from ``call.request`` until media flows.

Why a trace of its own: setting a call up takes several requests from two or three people
(``call.request``, ``call.accept``, an ``rtc.offer`` from each, candidates), each of which is
a WebSocket request and so a trace of its own. An operator asking "why did this call take
four seconds to connect" needs them in one picture. So ``call.request`` opens a
``call.setup`` span (a child of that request's span), kept open here until the call is
active — two participants' peers connected, ICE and DTLS done: media flows from then on —
or ends first. The spans of the call's other requests (``call.accept``, ``rtc.offer``,
``rtc.answer``, ``rtc.candidate``, ``call.decline``, ``call.hangup``) are opened by the edge
as children of ``call.setup`` (:meth:`parent_of`, the hub's ``trace_parent``), so those
requests and every line they log carry the call's trace id.

State: one open span per call being set up, owned here, dropped when the call is active or
ended. Calls that are already active get no new spans beyond their requests' own.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from signaling import logctx, tracing


class CallSetupTraces:
    """The open ``call.setup`` span of each call being set up on this node."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[Span, Context]] = {}

    def started(self, call_id: str, node: str) -> None:
        """``call.request`` created the call: its setup span starts, as a child of the
        request's span."""
        logctx.bind(call=call_id)
        s = tracing.start_span("call.setup", attributes={"livedesk.call": call_id,
                                                         "livedesk.node": node})
        self._open[call_id] = (s, tracing.context_with(s))

    def parent_of(self, msg: Any) -> Context | None:
        """The hub's ``trace_parent`` for the call's other requests (``call.accept``,
        ``rtc.offer``…: ``msg.call``): while the call is being set up, the request's span is
        a child of ``call.setup``, so the request and every line it logs are in the call's
        trace. After that (or for an unknown call): None, a trace of its own."""
        entry = self._open.get(getattr(msg, "call", ""))
        return entry[1] if entry is not None else None

    def connected(self, call_id: str, user: str) -> None:
        entry = self._open.get(call_id)
        if entry is not None:
            entry[0].add_event("peer connected", {"livedesk.user": user})

    def active(self, call_id: str) -> None:
        """Two peers connected: media flows; the setup is over."""
        entry = self._open.pop(call_id, None)
        if entry is not None:
            entry[0].set_attribute("livedesk.call.outcome", "active")
            entry[0].end()

    def ended(self, call_id: str, reason: str) -> None:
        """The call ended before it was ever active (declined, missed, hung up)."""
        entry = self._open.pop(call_id, None)
        if entry is not None:
            entry[0].set_attribute("livedesk.call.outcome", reason)
            if reason not in ("declined", "missed", "hangup"):
                entry[0].set_status(Status(StatusCode.ERROR, reason))
            entry[0].end()

    def __len__(self) -> int:
        return len(self._open)
