"""A small protocol-v1 test client: real aiohttp WebSocket, request/reply by id, event waits.

Written from docs/protocol.md only (it is the "independent client" of the issues); tests use
it to drive the server exactly as a browser would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp

_ids = itertools.count(1)


class WSClient:
    def __init__(self, base_url: str, http: aiohttp.ClientSession):
        self.base_url = base_url
        self.http = http
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.frames: list[dict] = []  # every frame received, in order
        self.session: str | None = None
        self.last_seq = 0
        self.closed_code: int | None = None
        self._cond = asyncio.Condition()
        self._reader: asyncio.Task | None = None
        self.on_frame = None  # optional callback(frame), e.g. benchmarks timestamping arrivals

    async def connect(self) -> WSClient:
        url = self.base_url.replace("http", "ws", 1) + "/ws"
        self.ws = await self.http.ws_connect(url, max_msg_size=8 * 1024 * 1024)
        self.closed_code = None
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        ws = self.ws
        async for m in ws:
            if m.type == aiohttp.WSMsgType.TEXT:
                f = json.loads(m.data)
                if "seq" in f:
                    self.last_seq = max(self.last_seq, f["seq"])
                if self.on_frame is not None:
                    self.on_frame(f)
                async with self._cond:
                    self.frames.append(f)
                    self._cond.notify_all()
        async with self._cond:
            self.closed_code = ws.close_code
            self._cond.notify_all()

    async def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def send(self, type_: str, **fields: Any) -> int:
        rid = next(_ids)
        await self.ws.send_str(json.dumps({"type": type_, "id": rid, **fields}))
        return rid

    async def wait_for(self, pred, timeout: float = 5.0, start: int = 0) -> dict:
        async def find():
            async with self._cond:
                i = start
                while True:
                    while i < len(self.frames):
                        if pred(self.frames[i]):
                            return self.frames[i]
                        i += 1
                    if self.closed_code is not None:
                        raise ConnectionError(f"socket closed ({self.closed_code}) while waiting")
                    await self._cond.wait()
        return await asyncio.wait_for(find(), timeout)

    async def request(self, type_: str, timeout: float = 5.0, **fields: Any) -> dict:
        """Send and return the direct reply (or error) carrying our id."""
        rid = await self.send(type_, **fields)
        return await self.wait_for(lambda f: f.get("id") == rid, timeout)

    async def event(self, type_: str, timeout: float = 5.0, after: int = 0, **match: Any) -> dict:
        return await self.wait_for(
            lambda f: f.get("type") == type_ and all(f.get(k) == v for k, v in match.items()),
            timeout, start=after)

    async def hello(self, token: str) -> dict:
        w = await self.request("hello", token=token, protocol=1)
        if w.get("type") == "welcome":
            self.session = w["session"]
        return w

    async def wait_closed(self, timeout: float = 5.0) -> int:
        async def w():
            async with self._cond:
                while self.closed_code is None:
                    await self._cond.wait()
                return self.closed_code
        return await asyncio.wait_for(w(), timeout)

    async def drop(self) -> None:
        """Simulate a dropped network: close our end without ceremony."""
        if self.ws is not None:
            await self.ws.close()
        if self._reader:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def close(self) -> None:
        await self.drop()
