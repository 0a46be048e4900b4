"""Issue 18: an agent whose last socket dropped is shown offline after
``SupportConfig.agent_offline_after_s`` (10 s by default; shortened here), not for the
minutes its session is retained; a socket back in time keeps the status."""

from __future__ import annotations

import asyncio

from tests.conftest import start_gateway, stop_gateway


async def status_seen(watcher, user: str, status: str, timeout: float) -> dict:
    return await watcher.wait_for(
        lambda f: f.get("type") == "queue.update"
        and any(a["user"] == user and a["status"] == status for a in f.get("agents", [])),
        timeout=timeout)


async def test_dropped_agent_goes_offline_and_a_resumed_one_does_not():
    gw = await start_gateway()
    try:
        gw.gw.support.config.agent_offline_after_s = 0.5
        watcher = await gw.client("agent", "watch", name="W")
        await watcher.request("agent.status", status="away")

        gone = await gw.client("agent", "gone", name="G")
        await gone.request("agent.status", status="available")
        await gone.drop()
        n = len(watcher.frames)
        await asyncio.sleep(0.2)
        assert gw.gw.support.router.agents["gone"].status == "available"  # not yet
        await watcher.wait_for(
            lambda f: f.get("type") == "queue.update"
            and any(a["user"] == "gone" and a["status"] == "offline" for a in f["agents"]),
            timeout=3, start=n)
        assert gw.gw.support.router.agents["gone"].status == "offline"

        # a second socket of the same agent keeps it as it is
        stay = await gw.client("agent", "stay", name="S")
        await stay.request("agent.status", status="available")
        other = await gw.client("agent", "stay", name="S")
        await other.request("ping")
        await stay.drop()
        await asyncio.sleep(1.0)
        assert gw.gw.support.router.agents["stay"].status == "available"

        # disabled: 0 keeps the old behaviour (status until the session expires)
        gw.gw.support.config.agent_offline_after_s = 0
        keep = await gw.client("agent", "keep", name="K")
        await keep.request("agent.status", status="available")
        await keep.drop()
        await asyncio.sleep(0.8)
        assert gw.gw.support.router.agents["keep"].status == "available"
    finally:
        await stop_gateway(gw)
