"""Where this process's spans go: the OpenTelemetry SDK and its OTLP exporter, when asked.

Why only from the environment: the exporter's own settings are OpenTelemetry's standard
variables (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``…), which a
platform team sets the same way for every service it runs and which the SDK reads itself;
re-declaring them as LiveDesk settings would give two names to one thing. Tracing is on
when an endpoint is set (and ``OTEL_SDK_DISABLED`` is not ``true``); otherwise no provider
is installed and the spans of :mod:`signaling.tracing` stay the API's non-recording ones.

The provider is process-wide (OpenTelemetry allows one): the first node built in a process
installs it, later ones (tests running two nodes in one process) reuse it. A provider
somebody else installed first (a test's in-memory exporter, an embedding application's own)
is left alone. docs/operations.md#tracing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace

from signaling import tracing as spans

from .config import ConfigError

log = logging.getLogger(__name__)

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


@dataclass
class Tracing:
    """What :func:`configure` did: ``exporting`` (this call installed the OTLP pipeline) and
    how to flush it at shutdown."""

    exporting: bool = False
    endpoint: str = ""

    async def close(self) -> None:
        if not self.exporting:
            return
        flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if flush is not None:
            # the exporter posts over HTTP with a blocking client: off the event loop
            await asyncio.to_thread(flush, 5_000)


def wanted(env: Mapping[str, str]) -> str:
    """The OTLP endpoint tracing should export to, or ``""`` (off)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ""
    for name in ENDPOINT_VARS:
        value = env.get(name, "").strip()
        if value:
            return value
    return ""


def configure(env: Mapping[str, str], node_id: str) -> Tracing:
    """Install the SDK with a batching OTLP/HTTP exporter when an endpoint is set; else
    nothing. Raises :class:`ConfigError` when an endpoint is set but the exporter package
    is missing (``pip install 'livedesk[otlp]'``): asked-for traces must not vanish."""
    endpoint = wanted(env)
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        spans.enable()  # installed already (an earlier node, or the embedding application)
        return Tracing(endpoint=endpoint)
    if not endpoint:
        return Tracing()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )
    except ImportError:
        raise ConfigError(
            f"{ENDPOINT_VARS[1]} is set but the OTLP exporter is not installed: "
            f"pip install 'livedesk[otlp]' (opentelemetry-exporter-otlp-proto-http)") from None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES still win over these defaults
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "livedesk",
                                "service.instance.id": node_id})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    spans.enable()
    log.info("tracing: exporting spans over OTLP/HTTP to %s", endpoint)
    return Tracing(exporting=True, endpoint=endpoint)
