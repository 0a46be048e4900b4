"""A real redis-server for tests: our own process on a free port when `redis-server` is on
PATH (with AOF, so restart tests can check durability), else ``REDIS_URL``. In CI neither
being available is a failure, never a skip."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.children import die_with_parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """``durable``: AOF with fsync on every write, for tests that restart it and check what
    survived; without it the server keeps nothing on disk (faster, for tests that never
    restart it)."""

    def __init__(self, durable: bool = True) -> None:
        self.durable = durable
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ld-redis-"))
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else \
            ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *aof, "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_url_or_server(durable: bool = True):
    """(url, server-or-None). Fails loudly when no Redis can be had."""
    if shutil.which("redis-server"):
        srv = RedisServer(durable).start()
        return srv.url, srv
    url = os.environ.get("REDIS_URL")
    if url:
        return url, None
    pytest.fail("no redis-server on PATH and no REDIS_URL: Redis tests need a real Redis "
                "(make test installs redis-server with apt)", pytrace=False)
