"""The SDK's in-memory span exporter for tests, and a log capture that formats lines as the
gateway's JSON formatter does.

OpenTelemetry allows one global tracer provider per process, so it is installed once, the
first time a test asks, with a sampler that records only while a test holds
:func:`recording`: the rest of the run's spans stay the API's non-recording ones, as with
tracing off."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from gateway.logs import JsonFormatter
from signaling import tracing


class _Switch(Sampler):
    on = False

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state=None) -> SamplingResult:
        s = ALWAYS_ON if self.on else ALWAYS_OFF
        return s.should_sample(parent_context, trace_id, name, kind, attributes, links,
                               trace_state)

    def get_description(self) -> str:
        return "tests.otel switch"


_SWITCH = _Switch()
_EXPORTER = InMemorySpanExporter()


def _install() -> None:
    provider = trace.get_tracer_provider()
    if getattr(provider, "_livedesk_test", False):
        return
    assert isinstance(provider, trace.ProxyTracerProvider), \
        f"another tracer provider is installed already: {provider!r}"
    p = TracerProvider(sampler=_SWITCH)
    p.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    p._livedesk_test = True  # type: ignore[attr-defined]
    trace.set_tracer_provider(p)
    tracing.enable()


@contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Spans started inside the block are recorded; the exporter starts empty."""
    _install()
    _EXPORTER.clear()
    _SWITCH.on = True
    try:
        yield _EXPORTER
    finally:
        _SWITCH.on = False
        _EXPORTER.clear()


class JsonLines(logging.Handler):
    """Every record, formatted by the gateway's JSON formatter at the moment it is logged
    (in the task that logged it, so with that task's context), parsed back."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@contextmanager
def json_logs(*loggers: str) -> Iterator[JsonLines]:
    """Capture the lines of ``loggers`` (and their children) at DEBUG, as JSON."""
    h = JsonLines()
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in loggers}
    root.addHandler(h)
    for name in loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield h
    finally:
        root.removeHandler(h)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def by_trace(spans: Sequence[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in spans:
        assert s.context is not None
        out.setdefault(format(s.context.trace_id, "032x"), []).append(s)
    return out


def connected(spans: Sequence[ReadableSpan]) -> bool:
    """One trace whose spans form one tree: exactly one root, every other span's parent is
    among them."""
    ids = {s.context.span_id for s in spans if s.context is not None}
    roots = [s for s in spans if s.parent is None]
    orphans = [s for s in spans if s.parent is not None and s.parent.span_id not in ids]
    return len(roots) == 1 and not orphans
