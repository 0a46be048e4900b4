"""What the logs-and-tracing instrumentation of one WebSocket request costs (issue 22).

Per request the edge binds the log context ids, opens a span (``signaling/server.py``),
logs one DEBUG line (off at INFO), and a Redis step asks for a ``traceparent``. This
measures exactly that sequence around an empty awaited handler, against the same handler
without it (the raw baseline, measured in the same run), in three set-ups:

- ``off``: no tracer provider installed — what ``livedesk serve`` runs without
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the API's non-recording spans);
- ``on_dropped``: the SDK installed with a sampler that records nothing (a deployment
  sampling at 0 %);
- ``on_recorded``: the SDK recording every span into an exporter that drops it (the cost
  of creating, filling and ending spans, without the network).

The SDK set-ups run in child processes (a process may install one provider). The last
line printed is one JSON object; ``overhead_us_off`` is the figure docs/performance.md
quotes. Run: ``python -m benchmarks.tracing_overhead [--n 200000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import time

from benchmarks.common import cpu_model

log = logging.getLogger("benchmarks.tracing_overhead")


async def _handler() -> None:
    """The request's own work, left out: what is measured is what surrounds it."""
    return None


async def _raw(n: int) -> float:
    t0 = time.thread_time()
    for _ in range(n):
        await _handler()
    return time.thread_time() - t0


async def _instrumented(n: int) -> float:
    from opentelemetry.trace import SpanKind

    from signaling import logctx, tracing

    logctx.bind(node="bench", session="s_bench", user="u1")
    t0 = time.thread_time()
    for i in range(n):
        with logctx.bound(request_id=i, conversation=None, call=None), \
                tracing.span("ws message.send", kind=SpanKind.SERVER, parent=None,
                             attributes={"livedesk.message": "message.send",
                                         "livedesk.node": "bench"}):
            t1 = time.perf_counter()
            logctx.bind(conversation="c_bench")
            await _handler()
            tracing.traceparent()
            log.debug("%s handled in %.1f ms", "message.send", (time.perf_counter() - t1) * 1e3)
    return time.thread_time() - t0


def _install(mode: str) -> None:
    if mode == "off":
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    class Drop(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            return SpanExportResult.SUCCESS

    p = TracerProvider(sampler=ALWAYS_ON if mode == "on_recorded" else ALWAYS_OFF)
    p.add_span_processor(SimpleSpanProcessor(Drop()))
    trace.set_tracer_provider(p)
    from signaling import tracing
    tracing.enable()  # what gateway/tracing.py does after installing its provider


def measure(mode: str, n: int, rounds: int) -> dict:
    _install(mode)
    logging.basicConfig(level=logging.INFO)  # DEBUG lines are off, as in production

    async def run() -> tuple[float, float]:
        await _raw(n // 10)
        await _instrumented(n // 10)  # warm-up
        raw, inst = [], []
        for _ in range(rounds):  # interleaved, best of each: the machine is shared
            raw.append(await _raw(n))
            inst.append(await _instrumented(n))
        return min(raw), min(inst)

    raw, inst = asyncio.run(run())
    return {"mode": mode, "raw_us": raw / n * 1e6, "instrumented_us": inst / n * 1e6,
            "overhead_us": (inst - raw) / n * 1e6, "ratio": inst / raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="requests per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mode", choices=("off", "on_dropped", "on_recorded"), default=None,
                    help=argparse.SUPPRESS)  # a child process's one set-up
    a = ap.parse_args()
    if a.mode is not None:
        print(json.dumps(measure(a.mode, a.n, a.rounds)))
        return
    res: dict = {"benchmark": "tracing_overhead", "n": a.n, "rounds": a.rounds,
                 "cpu": cpu_model()}
    for mode in ("off", "on_dropped", "on_recorded"):
        out = subprocess.run([sys.executable, "-m", "benchmarks.tracing_overhead", "--mode", mode,
                              "--n", str(a.n), "--rounds", str(a.rounds)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{mode:12s} raw {r['raw_us']:.3f} us  instrumented {r['instrumented_us']:.3f} us"
              f"  overhead {r['overhead_us']:.2f} us/request", file=sys.stderr)
        for k in ("raw_us", "instrumented_us", "overhead_us", "ratio"):
            res[f"{k}_{mode}"] = round(r[k], 4)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
