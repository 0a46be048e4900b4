"""A gateway in its own process, as operators run it (``livedesk serve --dev``, its own event
loop — uvloop where installed), for the benchmarks that drive it with browsers.

Why not in the benchmark's process: Playwright's client, the page polling and the stats
reads run on the benchmark's loop; a gateway sharing it waits behind them (measured in
``call_setup.py``: 10–25 ms per step of a call's set-up that the same steps take in a
quiet process), and that wait would be charged to the gateway. ``traced=True`` runs it
through ``benchmarks.traced_gateway`` instead, which is the same server with the set-up
trace installed and readable over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import free_port
from tests.conftest import LOOPBACK_MEDIA_ENV

ROOT = Path(__file__).resolve().parent.parent


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60.0) -> None:
    """Block until the gateway at ``url`` answers ``/readyz`` 200; raise with the end of its
    ``log`` if it exits first, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=0.5) as r:
                if r.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not become ready") from None
        time.sleep(0.1)


class GatewayProcess:
    """``livedesk serve --dev`` on a free loopback port with a throw-away data directory,
    its WebRTC media on loopback only (docs/testing.md#network-safety)."""

    def __init__(self, traced: bool = False, extra: list[str] | None = None,
                 env: dict[str, str] | None = None, name: str = "bench") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"ld-{name}-"))
        self.log = self.dir / "gateway.log"
        module = "benchmarks.traced_gateway" if traced else "gateway.cli"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--dev", "--host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(self.dir / "data"),
             "--log-level", "WARNING", *(extra or [])],
            cwd=ROOT, env={**os.environ, **LOOPBACK_MEDIA_ENV, **(env or {})},
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    async def ready(self, timeout: float = 60.0) -> None:
        await asyncio.to_thread(wait_ready, self.proc, self.url, self.log, timeout)

    def _trace_request(self, method: str, path: str = "/__bench/trace") -> list:
        req = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(req, timeout=5) as r:
            return list(json.loads(r.read() or b"[]"))

    async def trace_events(self) -> list[tuple[str, float]]:
        """The traced gateway's events since the last :meth:`trace_clear`."""
        got = await asyncio.to_thread(self._trace_request, "GET")
        return [(str(n), float(t)) for n, t in got]

    async def packet_events(self) -> list[list]:
        """The packet trace since the last call (``LIVEDESK_BENCH_PACKET_TRACE=1``), cleared."""
        return await asyncio.to_thread(self._trace_request, "DELETE", "/__bench/packets")

    async def trace_clear(self) -> None:
        await asyncio.to_thread(self._trace_request, "DELETE")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
