"""``livedesk serve`` with the call set-up trace installed (``benchmarks/call_setup.py
--trace``): the same command line and server, plus ``GET /__bench/trace`` (the events
recorded so far, ``[[name, wall ms], …]``) and ``DELETE /__bench/trace`` (clear them);
with ``LIVEDESK_BENCH_PACKET_TRACE=1`` also ``/__bench/packets`` (the video packet trace of
:mod:`benchmarks.packet_trace`: GET reads it, DELETE reads and clears it).

Benchmark instrumentation only: the gateway never imports this, and the route exists only
in a process started through this module (``--dev`` on loopback, see gateway/config.py).
"""

from __future__ import annotations

import os
import sys

from aiohttp import web

from benchmarks.packet_trace import install_packet_trace
from benchmarks.setup_trace import install_gateway_trace


def main(argv: list[str] | None = None) -> int:
    from gateway import app as app_mod
    from gateway import cli

    trace = install_gateway_trace()
    # LIVEDESK_BENCH_PACKET_TRACE=1 (benchmarks/impaired.py --trace): video packet timelines
    packets = install_packet_trace() if os.environ.get("LIVEDESK_BENCH_PACKET_TRACE") else None
    create_app = app_mod.create_app

    async def packet_events(request: web.Request) -> web.Response:
        assert packets is not None
        packets.start_lag_monitor()
        got = packets.events
        if request.method == "DELETE":
            packets.clear()
        return web.json_response(got)

    async def events(request: web.Request) -> web.Response:
        return web.json_response(trace.events)

    async def clear(request: web.Request) -> web.Response:
        trace.clear()
        return web.json_response([])

    def traced_app(config, **kw):
        app = create_app(config, **kw)
        app.router.add_get("/__bench/trace", events)
        app.router.add_delete("/__bench/trace", clear)
        if packets is not None:  # GET: the events so far; DELETE: them, and start again
            app.router.add_get("/__bench/packets", packet_events)
            app.router.add_delete("/__bench/packets", packet_events)
        return app

    app_mod.create_app = traced_app  # cli._run imports it at call time
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
