"""Real gateway processes (`livedesk serve --redis-url …`) for multi-node tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests import token_watch
from tests.children import die_with_parent
from tests.conftest import LOOPBACK_MEDIA_ENV, free_port

SECRET = "d6d9307e0c9b29960ad06deca79deb403105c166bf027818a30fe9768aa3206b"  # 32 random bytes: the gateway refuses a weaker secret


class Node:
    def __init__(self, redis_url: str, node_id: str, rooms: list[Path] | None = None,
                 extra_env: dict | None = None):
        self.port = free_port()
        self.node_id = node_id
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis_url = redis_url
        self.rooms = rooms or []
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log = token_watch.watch(
            Path(os.environ.get("TMPDIR", "/tmp")) / f"ld-node-{node_id}-{self.port}.log")

    def start(self) -> Node:
        # its media on loopback, as every test gateway's (docs/testing.md#network-safety)
        env = dict(os.environ, LIVEDESK_SECRET=SECRET, **LOOPBACK_MEDIA_ENV, **self.extra_env)
        args = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port),
                "--redis-url", self.redis_url, "--node-id", self.node_id, "--log-level", "WARNING"]
        for r in self.rooms:
            args += ["--room", str(r)]
        self.proc = subprocess.Popen(args, env=env, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.time() + 45  # a few seconds when quiet; much more on a loaded machine
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.node_id} exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=0.5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.kill9()  # not left running behind a failed test
        raise RuntimeError(f"node {self.node_id} did not become ready: {self.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def token(role: str, user: str, room: str | None = None, name: str | None = None) -> str:
    from signaling import TokenAuthority
    return TokenAuthority(SECRET).issue(user, role, room=room, name=name, ttl_s=600)


def write_room(path: Path, room_id: str = "flash", stock: int = 100000, limit: int = 100) -> Path:
    kb = {"room": {"id": room_id, "title": "Flash sale", "host": "H", "currency": "CNY"},
          "products": [{"sku": "S1", "name": "Thing", "price": 10, "stock": stock, "sizes": []},
                       {"sku": "S2", "name": "Other", "price": 5, "stock": stock, "sizes": []}],
          "promotions": [{"id": "G1", "kind": "first_n_gift", "text": "first 100 get a gift",
                          "limit": limit, "claimed": 0, "gift": "cap", "sku": "S1"}],
          "policies": {}, "faq": []}
    path.write_text(json.dumps(kb))
    return path
