"""Shared helpers of the abuse tests: a gateway on the test's support backend (the parity
modules' ``backend`` fixture: memory, or the session's real redis-server), with the workspace
tests' deterministic bot."""

from __future__ import annotations

from tests.backends import Backend
from tests.conftest import Running
from tests.workspace.helpers import start


async def start_on(backend: Backend, **config) -> Running:
    # the edge's per-socket rate limit is not what these tests are about
    config.setdefault("rate_per_s", 1000.0)
    config.setdefault("rate_burst", 1000)
    return await start(backend, **config)


def frames(c, type_: str, **match) -> list[dict]:
    return [f for f in c.frames if f.get("type") == type_
            and all(f.get(k) == v for k, v in match.items())]
