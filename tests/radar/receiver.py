"""A webhook receiver for tests: an aiohttp server on 127.0.0.1 that checks every delivery
with the documented helper (``gateway.webhooks.verify``) and keeps what it got."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.webhooks import WebhookError, verify


@dataclass
class Receiver:
    secret: str
    port: int
    got: list[dict[str, Any]] = field(default_factory=list)  # verified bodies
    refused: list[str] = field(default_factory=list)  # why verify refused a delivery
    _runner: web.AppRunner | None = None
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            claims = verify(body, request.headers.get("Authorization", ""), self.secret)
        except WebhookError as e:
            self.refused.append(str(e))
            return web.json_response({"error": str(e)}, status=401)
        event = json.loads(body)
        event["_claims"] = claims
        async with self._cond:
            self.got.append(event)
            self._cond.notify_all()
        return web.json_response({"ok": True})

    async def wait_for(self, event: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            async with self._cond:
                while True:
                    for e in self.got:
                        if e["event"] == event and all(e.get(k) == v for k, v in match.items()):
                            return e
                    await self._cond.wait()
        return await asyncio.wait_for(find(), timeout)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
