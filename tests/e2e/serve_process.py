"""``livedesk serve --dev`` as a real child process on a fixed loopback port, so a test can
kill it (SIGKILL: no drain, no goodbye) and start it again on the same port, as an operator's
restart does. Like ``make run``, no ``LIVEDESK_SECRET`` is set: each start generates its own,
so tokens from before the restart are refused (pages must fetch new ones).

Only 127.0.0.1 is used."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

from tests import token_watch
from tests.children import die_with_parent
from tests.conftest import LOOPBACK_MEDIA_ENV

ROOT = Path(__file__).resolve().parents[2]


def serve_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(PYTHONPATH=str(ROOT), LIVEDESK_DRAIN_S="0")
    env.update(LOOPBACK_MEDIA_ENV)  # docs/testing.md#network-safety
    return env


class ServeProcess:
    """One ``livedesk serve --dev --port P --data-dir D`` (on 127.0.0.1) at a time; its
    output goes to ``log`` (a pipe nobody reads could fill and stall the server)."""

    def __init__(self, port: int, log: Path, store: bool = True):
        self.port = port
        self.store = store  # False: --no-store (memory only: a restart forgets everything)
        self.log = token_watch.watch(log)
        self.url = f"http://127.0.0.1:{port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        # its own store beside the log (the test's tmp dir), the same one at every restart:
        # not the repository's ./data, which `make run` uses
        self.data_dir = log.parent / "data"

    async def start(self) -> None:
        assert self.proc is None or self.proc.returncode is not None, "already running"
        self.starts += 1
        with open(self.log, "a") as out:
            out.write(f"\n--- start {self.starts} at {time.time():.3f}\n")
            out.flush()
            where = ["--data-dir", str(self.data_dir)] if self.store else ["--no-store"]
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "serve", "--dev", "--host", "127.0.0.1",
                "--port", str(self.port), *where, cwd=ROOT, env=serve_env(), stdout=out,
                stderr=out, preexec_fn=die_with_parent)

    async def wait_accepting(self, timeout: float = 60.0) -> float:
        """Poll the port every 10 ms; the wall-clock time (time.time()) when it first
        accepted a TCP connection. Fails if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"livedesk serve exited {self.proc.returncode}: {self.tail()}")
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            at = time.time()
            w.close()
            return at
        raise AssertionError(f"livedesk serve did not accept on {self.port}: {self.tail()}")

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        await self.wait_accepting(timeout)
        async with aiohttp.ClientSession() as http, http.get(self.url + "/healthz") as r:
            assert r.status == 200, r.status

    async def kill(self) -> None:
        """SIGKILL and reap: the sockets die with the process, as in a crash."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            await self.kill()

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text()[-n:]
        except OSError:
            return ""
