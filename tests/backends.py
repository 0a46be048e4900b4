"""The two support backends a parity test runs on: the embedded memory one and Redis.

A test asks for the ``backend`` fixture (or for ``gateway``, which asks for it) and builds its
gateway's ``Config`` through :meth:`Backend.config`; in a module marked ``parity`` the fixture
is parametrised, so the same test body runs once per backend and its id ends in
``[memory]`` or ``[redis]``. Modules that are not about support keep one run on memory.

Why one redis-server per session rather than one per test: starting one costs ~50-100 ms and
an AOF directory; the parity tests do not restart or stop Redis (tests that do still use the
per-test ``redis_server`` fixture), so flushing between tests gives the same isolation. The
gateway's keys share one fixed prefix, and pub/sub channels ignore the database number, so a
distinct prefix or database per test would not isolate them; a flush does.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Literal

from gateway.config import Config

BackendName = Literal["memory", "redis"]
BACKENDS: tuple[BackendName, ...] = ("memory", "redis")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Backend:
    """Which backend a test's gateway runs on; ``redis_url`` is set exactly for Redis."""

    name: BackendName
    redis_url: str | None = None

    def config(self, **kw: Any) -> Config:
        """A dev gateway's config on this backend, on a free port unless ``port`` is given."""
        kw.setdefault("dev", True)
        kw.setdefault("port", free_port())
        return Config(redis_url=self.redis_url, **kw)


MEMORY = Backend("memory")
