"""Shared helpers of the abuse tests: a gateway on either support backend (memory, or a
real redis-server of the test's own), with the workspace tests' deterministic bot."""

from __future__ import annotations

import pytest

from tests.workspace.helpers import start


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request) -> dict:
    """Config overrides that select the backend: ``{}`` (memory) or ``{"redis_url": …}``."""
    if request.param == "memory":
        return {}
    return {"redis_url": request.getfixturevalue("redis_server").url}


async def start_on(backend: dict, **config):
    # the edge's per-socket rate limit is not what these tests are about
    config.setdefault("rate_per_s", 1000.0)
    config.setdefault("rate_burst", 1000)
    return await start(**backend, **config)


def frames(c, type_: str, **match) -> list[dict]:
    return [f for f in c.frames if f.get("type") == type_
            and all(f.get(k) == v for k, v in match.items())]
