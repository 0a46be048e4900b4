"""Spans through the OpenTelemetry API, and the W3C ``traceparent`` that carries a trace
from one node to another.

Why the API directly (and not a wrapper of our own): OpenTelemetry is a cross-cutting
library like ``logging``; the API alone records nothing. Which provider receives the spans
(none, the OTLP exporter, a test's in-memory exporter) is decided once by the composition
root (``gateway/tracing.py``, called from ``gateway/wiring.py``). Until one is set every
span here is the API's non-recording span: no allocation of span data, no export — the
cost with tracing off is measured by ``benchmarks/tracing_overhead.py``. Whoever installs a
provider calls :func:`enable` (the composition root does; a provider installed by an
embedding application is found by it and enabled too).

Why a ``traceparent`` string: a trace crosses nodes through Redis — a change list in the
ops log (``ld:{ld}:ops``, field ``t``) and an envelope on the bus (``t``) — and the node that
applies or delivers it opens its span as a child of the one that wrote it, so a chat message
from a viewer on node A to an agent on node B is one trace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

TRACER_NAME = "livedesk"
_PROPAGATOR = TraceContextTextMapPropagator()
_tracer = trace.get_tracer(TRACER_NAME)  # a proxy: follows whatever provider is set later

Attributes = Mapping[str, AttributeValue]


def context_from(traceparent: str | None) -> Context | None:
    """The context a ``traceparent`` names, or None (absent, empty or malformed: the span
    then starts a trace of its own rather than failing the work it describes)."""
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": traceparent})
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


def traceparent() -> str:
    """The current span as a W3C ``traceparent``; ``""`` when no span is recording (tracing
    off), so callers can leave the field out."""
    if off():
        return ""
    span_ctx = trace.get_current_span().get_span_context()
    if not span_ctx.is_valid:
        return ""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span as lowercase hex, for the log formatter;
    None outside any recorded span."""
    span_ctx = trace.get_current_span().get_span_context()
    if not span_ctx.is_valid:
        return None
    return format(span_ctx.trace_id, "032x"), format(span_ctx.span_id, "016x")


_enabled = False  # a provider is installed: spans may record (see enable)


def enable() -> None:
    """Called once a tracer provider is installed in this process (by the composition root,
    ``gateway/tracing.py``, or a test's in-memory exporter). Until then every span is the
    cheap no-op below. Process-wide like the provider itself, and never switched back off
    (OpenTelemetry allows one provider per process)."""
    global _enabled
    _enabled = True


def off() -> bool:
    """No provider was installed (:func:`enable`): spans would not record. One global read
    per span: tracing off must cost next to nothing on the socket's hot path."""
    return not _enabled


class _NoSpan:
    """The ``with`` of a span while tracing is off: nothing attached, nothing allocated.
    (The API's own no-op path still attaches a context and builds a generator per span:
    about ten times the cost, measured by ``benchmarks/tracing_overhead.py``.)"""

    def __enter__(self) -> Span:
        return trace.INVALID_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()


def span(name: str, *, parent: str | Context | None = None,
         attributes: Attributes | None = None, kind: SpanKind = SpanKind.INTERNAL,
         links: Sequence[Link] = ()) -> AbstractContextManager[Span]:
    """A span around the ``with`` block, current inside it. ``parent``: a ``traceparent``
    or a context from another node or an earlier request (default: the current span).
    Exceptions are recorded on the span and re-raised."""
    if off():
        return _NO_SPAN
    return _span(name, parent, attributes, kind, links)


@contextmanager
def _span(name: str, parent: str | Context | None, attributes: Attributes | None,
          kind: SpanKind, links: Sequence[Link]) -> Iterator[Span]:
    ctx = context_from(parent) if isinstance(parent, str) else parent
    with _tracer.start_as_current_span(name, context=ctx, kind=kind, attributes=attributes,
                                       links=links) as s:
        yield s


def start_span(name: str, *, attributes: Attributes | None = None,
               parent: Context | None = None) -> Span:
    """A span that outlives the block that starts it (ended by whoever holds it: a call's
    setup, from its request until media flows). Not made current."""
    return _tracer.start_span(name, context=parent, attributes=attributes)


def context_with(s: Span) -> Context:
    """A context whose current span is ``s``: the parent for spans opened later, from other
    requests, that belong to the same piece of work."""
    return trace.set_span_in_context(s)


def link_to_current() -> list[Link]:
    """A link to the current span (when one is recording): how a span that belongs to
    another trace (a call's) points back at the request that caused it."""
    span_ctx = trace.get_current_span().get_span_context()
    return [Link(span_ctx)] if span_ctx.is_valid else []
