"""A session: one authenticated client identity that outlives any single socket.

The session owns its sequence counter and the retained frames that make resume possible.
Every frame sent after ``hello`` gets the next ``seq`` and is retained (at least the last
``retain_frames`` frames, and anything younger than ``retain_s``) whether or not a socket
is attached at that moment; a client that reconnects sends ``resume {session, last_seq}``
and gets exactly what it missed, with the original seqs.

Sending never awaits: frames are numbered and queued synchronously, and a per-socket
writer task drains the queue. That keeps seq order equal to production order without
locks, and a slow socket can't stall whoever is fanning out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from .auth import Claims
from .protocol import dumps

log = logging.getLogger(__name__)


class Transport(Protocol):
    async def send_str(self, data: str) -> None: ...
    async def close(self, *, code: int = 1000, message: bytes = b"") -> Any: ...


@dataclass
class RetainedFrame:
    seq: int
    text: str
    ts: float


@dataclass
class Session:
    id: str
    claims: Claims
    retain_frames: int = 1000
    retain_s: float = 600.0
    max_queue: int = 10_000
    seq: int = 0
    live: bool = False  # receives events; False between hello and the next non-resume message
    created: float = field(default_factory=time.monotonic)
    detached_at: float | None = None
    _frames: deque = field(default_factory=deque)
    _transport: Transport | None = None
    _queue: asyncio.Queue | None = None
    _writer: asyncio.Task | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    mirror: Any = None  # SessionMirror when sessions must survive this node (Redis)

    @property
    def user(self) -> str:
        return self.claims.user

    @property
    def role(self) -> str:
        return self.claims.role

    @property
    def attached(self) -> bool:
        return self._transport is not None

    # --- sending -------------------------------------------------------------------------
    def send(self, event: dict[str, Any]) -> int:
        """Number, retain and queue one frame. Returns its seq (0 if suppressed).

        An event may carry an internal ``_cursor: [stream, n]`` (a position in an ordered
        log, e.g. a conversation's message index). The session remembers the highest ``n``
        per stream it has numbered and drops an event at or below it: that is what makes a
        catch-up after a cross-node resume and the live feed never deliver twice.
        """
        frame = dict(event)
        cur = frame.pop("_cursor", None)
        if cur is not None:
            stream, n = cur
            if n <= self.cursors.get(stream, -1):
                return 0
            self.cursors[stream] = n
        self.seq += 1
        frame["seq"] = self.seq
        text = dumps(frame)
        now = time.monotonic()
        self._frames.append(RetainedFrame(self.seq, text, now))
        self._trim(now)
        if self.mirror is not None:
            self.mirror.push(self, self.seq, text, cur)
        self._enqueue(text, self.seq)
        return self.seq

    def send_unnumbered(self, event: dict[str, Any]) -> None:
        """Frames outside the sequence (errors before ``hello``)."""
        self._enqueue(dumps(event))

    def _enqueue(self, text: str, seq: int = 0) -> None:
        if self._queue is None:
            return
        if self._queue.qsize() >= self.max_queue:
            # The client can't keep up; drop the socket, it will resume from its last seq.
            log.warning("session %s: send queue full, closing socket", self.id)
            self.detach(close_code=4008, reason="send queue overflow, resume")
            return
        self._queue.put_nowait((seq, text))

    def _trim(self, now: float) -> None:
        frames = self._frames
        while len(frames) > self.retain_frames and now - frames[0].ts > self.retain_s:
            frames.popleft()
        while len(frames) > self.retain_frames * 20:  # hard cap against floods
            frames.popleft()

    # --- resume --------------------------------------------------------------------------
    def frames_after(self, last_seq: int) -> list[RetainedFrame] | None:
        """Retained frames after ``last_seq``, or None when some of them are gone."""
        if last_seq > self.seq or last_seq < 0:
            return None
        if last_seq == self.seq:
            return []
        oldest = self._frames[0].seq if self._frames else self.seq + 1
        if last_seq + 1 < oldest:
            return None
        return [f for f in self._frames if f.seq > last_seq]

    def replay(self, frames: list[RetainedFrame]) -> None:
        for f in frames:
            self._enqueue(f.text, f.seq)

    # --- sockets -------------------------------------------------------------------------
    def attach(self, transport: Transport) -> None:
        self.detach(close_code=4000, reason="session taken over by a new socket")
        self._transport = transport
        self._queue = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(transport, self._queue), name=f"ws-writer-{self.id}")
        self.detached_at = None

    def detach_if(self, transport: Transport) -> bool:
        """Detach only if ``transport`` is still the attached socket (not after a resume)."""
        if self._transport is transport:
            self.detach()
            return True
        return False

    def detach(self, close_code: int | None = None, reason: str = "") -> None:
        t, q, w = self._transport, self._queue, self._writer
        self._transport = self._queue = self._writer = None
        if t is None:
            return
        self.detached_at = time.monotonic()
        if q is not None:
            q.put_nowait(None)  # writer flushes what is queued, then stops
        if close_code is not None and w is not None:
            async def close_after_flush():
                try:
                    await asyncio.wait_for(asyncio.shield(w), 2.0)
                except Exception:
                    pass
                try:
                    await t.close(code=close_code, message=reason.encode()[:120])
                except Exception:
                    pass
            asyncio.get_running_loop().create_task(close_after_flush())

    async def _write_loop(self, transport: Transport, queue: asyncio.Queue) -> None:
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                seq, text = item
                if seq and self.mirror is not None:
                    # never show a client a frame that a node failure could lose
                    await self.mirror.wait_mirrored(self, seq)
                await transport.send_str(text)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return
        except Exception:
            log.exception("session %s writer failed", self.id)

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait until queued frames are written (used before closing a socket on purpose)."""
        q = self._queue
        if q is None:
            return
        deadline = time.monotonic() + timeout
        while not q.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
