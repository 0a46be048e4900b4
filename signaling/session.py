"""A session: one authenticated client identity that outlives any single socket.

The session owns its sequence counter and the retained frames that make resume possible.
Every frame sent after ``hello`` gets the next ``seq`` and is retained (at least the last
``retain_frames`` frames, and anything younger than ``retain_s``) whether or not a socket
is attached at that moment; a client that reconnects sends ``resume {session, last_seq}``
and gets exactly what it missed, with the original seqs.

Sending never awaits: frames are numbered synchronously and written at once when the
socket takes them (the common case); only a socket that is behind (flow control), or a
session whose frames must be mirrored first, gets a writer task that drains its queue in
order. That keeps seq order equal to production order without locks, and a slow socket
can't stall whoever is fanning out. A broadcast is serialized once (:class:`Prepared`) and
each session splices its own ``seq`` into it.

A frame that cannot be serialised or encoded as UTF-8 (a lone surrogate that slipped past
the edge, a NaN, an object JSON does not know) is **dropped before it is numbered**: it gets
no ``seq``, is never retained (so ``resume`` never replays it) and never reaches the socket;
the drop is logged and counted (``on_drop``), and the session goes on with the next frame.
A dropped direct reply (it carries the request ``id``) is replaced by an ``internal`` error
with that ``id``, so the requester still gets its one answer. Before this, one such frame
made the socket writer fail and stop for good while the socket stayed open: the session
went silent, and every resume replayed the poison.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, final

from aiohttp import WSMsgType

from .auth import Claims
from .coro import finish
from .protocol import dumps
from .wsdeflate import Deflater
from .wsframe import DirectWriter, direct_writer

log = logging.getLogger(__name__)


class Transport(Protocol):
    async def send_str(self, data: str) -> None: ...
    async def close(self, *, code: int = 1000, message: bytes = b"") -> Any: ...


def _with_seq(head: str, seq: int) -> str:
    return f'{head},"seq":{seq}}}'


def _encode(body: dict[str, Any]) -> tuple[str, bytes]:
    """JSON text and its UTF-8 bytes; raises ``ValueError``/``TypeError`` (a
    ``UnicodeEncodeError`` is a ``ValueError``) for a frame that cannot go on the wire."""
    text = dumps(body)
    return text, text.encode("utf-8")


def undeliverable(event: dict[str, Any], err: BaseException) -> dict[str, Any] | None:
    """The ``internal`` error that stands in for a dropped direct reply (None: not a reply)."""
    rid = event.get("id")
    if rid is None or event.get("type") == "error":
        return None
    return {"type": "error", "id": rid, "code": "internal",
            "message": f"the reply to this request could not be encoded and was dropped "
                       f"({type(err).__name__})"}


@final  # senders tell it from a plain event with ``type(e) is Prepared``
class Prepared:
    """One event serialized once for every session it goes to (a topic broadcast).

    ``head`` is its JSON without the closing brace; each session appends its own
    ``"seq"``, which gives exactly the text ``dumps(dict(event, seq=n))`` would. Events that
    already carry a ``seq`` key (or are empty) are not spliced: sessions serialize them.
    """

    __slots__ = ("cursor", "deflated", "error", "event", "head", "head_b", "ts")

    def __init__(self, event: dict[str, Any]):
        self.event = event
        self.ts = time.monotonic()  # one clock read for every session it goes to
        self.cursor = event.get("_cursor")
        # window bits → ``head_b`` compressed once for every deflate socket (None: sent
        # uncompressed); filled by the first such socket (wsframe.DirectWriter.splice)
        self.deflated: dict[int, bytes | None] = {}
        self.error: BaseException | None = None  # set: no session sends it (logged once)
        body = event if "_cursor" not in event else {k: v for k, v in event.items()
                                                     if k != "_cursor"}
        self.head: str | None = None
        self.head_b: bytes | None = None  # both set, or both None: not spliced
        if body and "seq" not in body:
            try:
                text, raw = _encode(body)
            except (ValueError, TypeError) as e:
                self.error = e
                log.error("dropped a %r event that cannot be encoded (%s: %s)",
                          event.get("type"), type(e).__name__, e)
                return
            self.head = text[:-1]
            self.head_b = raw[:-1]


@final
class Spliced:
    """A broadcast frame waiting in one socket's queue: the broadcast (its shared head and
    compressions) and this socket's ``,"seq":n}``. Kept apart until written so a queued
    broadcast is still compressed once for all (``DirectWriter.send_spliced``)."""

    __slots__ = ("prepared", "suffix")

    def __init__(self, prepared: Prepared, suffix: bytes):
        self.prepared = prepared
        self.suffix = suffix

    def whole(self) -> bytes:
        head_b = self.prepared.head_b
        assert head_b is not None  # only spliceable broadcasts are queued this way
        return head_b + self.suffix


Frame = str | bytes | Spliced  # what a socket's queue holds: text, UTF-8, or a broadcast


class RetainedFrame:
    """A numbered frame kept for resume (what :meth:`Session.frames_after` returns).

    Inside a session frames are kept as plain tuples ``(seq, ts, text, head)``: the cyclic
    GC stops tracking a tuple of strings and numbers, so ten thousand sessions retaining
    every broadcast add nothing for full collections to walk (a slotted object per frame
    made them grow and pause the loop for a second). A broadcast frame keeps only the
    shared ``head``; its text is rebuilt when it is replayed."""

    __slots__ = ("seq", "ts", "_text", "_head")

    def __init__(self, seq: int, text: str | None, ts: float, head: str | None = None):
        self.seq = seq
        self.ts = ts
        self._text = text
        self._head = head

    @property
    def text(self) -> str:
        if self._text is not None:
            return self._text
        assert self._head is not None  # a frame keeps its text or its broadcast's head
        return _with_seq(self._head, self.seq)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, RetainedFrame) and other.seq == self.seq
                and other.text == self.text and other.ts == self.ts)

    def __repr__(self) -> str:
        return f"RetainedFrame(seq={self.seq}, text={self.text!r}, ts={self.ts})"


def _send(transport: Transport, data: str | bytes) -> Coroutine[Any, Any, Any]:
    """The send coroutine for one frame; ``bytes`` are already UTF-8 text."""
    if isinstance(data, bytes):
        send_frame: Callable[[bytes, WSMsgType], Coroutine[Any, Any, Any]] | None = getattr(
            transport, "send_frame", None)
        if send_frame is not None:
            return send_frame(data, WSMsgType.TEXT)
        data = data.decode("utf-8")
    return transport.send_str(data)


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
    # (seq, ts, text, head): a broadcast keeps only its shared head (see RetainedFrame)
    _frames: deque[tuple[int, float, str | None, str | None]] = field(default_factory=deque)
    _transport: Transport | None = None
    # (seq, data) waiting for the writer task; None: nothing more to write
    _out: deque[tuple[int, Frame]] | None = None
    _writer: asyncio.Task[None] | None = None  # only while the socket is behind (or mirroring)
    _direct: DirectWriter | None = None  # the attached socket's direct path (None: aiohttp's)
    attrs: dict[str, Any] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    mirror: Any = None  # SessionMirror when sessions must survive this node (Redis)
    on_drop: Callable[[], None] | None = None  # a frame was dropped (metrics): the hub's
    deflater: Deflater | None = None  # compresses for permessage-deflate sockets: the hub's

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
    def send(self, event: dict[str, Any] | Prepared) -> int:
        """Number, retain and queue one frame. Returns its seq (0 if suppressed).

        An event may carry an internal ``_cursor: [stream, n]`` (a position in an ordered
        log, e.g. a conversation's message index). The session remembers the highest ``n``
        per stream it has numbered and drops an event at or below it: that is what makes a
        catch-up after a cross-node resume and the live feed never deliver twice.

        A :class:`Prepared` event (a broadcast) is serialized once for all its sessions.
        """
        prepared = None
        if type(event) is Prepared:
            if event.cursor is None and event.head_b is not None and self.mirror is None:
                # the fan-out's common case, kept short
                return self._send_broadcast(event, event.head_b)
            if event.error is not None:
                return self._dropped(event.event, event.error, logged=True)
            cur = event.cursor
            if event.head is not None:
                prepared = event
            event = event.event
        else:
            cur = event.get("_cursor")
        if cur is not None:
            stream, n = cur
            if n <= self.cursors.get(stream, -1):
                return 0
        seq = self.seq + 1
        if prepared is not None:
            text, head_b = prepared.head, prepared.head_b
            assert text is not None and head_b is not None  # prepared: it splices
            data: Frame = Spliced(prepared, b',"seq":%d}' % seq)
        else:
            body = dict(event)
            body.pop("_cursor", None)
            body["seq"] = seq
            try:  # before it is numbered or retained: a frame that cannot go out never was
                text, data = _encode(body)
            except (ValueError, TypeError) as e:
                return self._dropped(event, e)
        if cur is not None:
            self.cursors[stream] = n
        self.seq = seq
        now = time.monotonic()
        self._frames.append((seq, now, None, text) if prepared is not None
                            else (seq, now, text, None))
        self._trim(now)
        if self.mirror is not None:
            self.mirror.push(self, seq, text if prepared is None else _with_seq(text, seq), cur)
        self._enqueue(data, seq)
        return seq

    def _dropped(self, event: dict[str, Any], err: BaseException, logged: bool = False) -> int:
        """A frame that cannot be encoded: not numbered, not retained, not written; counted,
        logged, and a direct reply is answered with ``internal`` instead."""
        if not logged:
            log.error("session %s: dropped a %r frame that cannot be encoded (%s: %s)",
                      self.id, event.get("type"), type(err).__name__, err)
        if self.on_drop is not None:
            self.on_drop()
        stand_in = undeliverable(event, err)
        if stand_in is not None:
            self.send(stand_in)
        return 0

    def _send_broadcast(self, event: Prepared, head_b: bytes) -> int:
        """:meth:`send` for a broadcast without cursor or mirror: same numbering, retention
        and write, with the clock read once per broadcast and the trim only when due.
        ``head_b`` is ``event.head_b``, which the caller found set."""
        self.seq = seq = self.seq + 1
        frames = self._frames
        frames.append((seq, event.ts, None, event.head))
        if len(frames) > self.retain_frames:
            self._trim(event.ts)
        suffix = b',"seq":%d}' % seq
        direct = self._direct
        if (direct is not None and self._writer is None and self._out is not None
                and direct.splice(head_b, suffix, event.deflated)):
            return seq
        self._enqueue(Spliced(event, suffix), seq)
        return seq

    def _enqueue(self, data: Frame, seq: int = 0) -> None:
        """Write now if the socket takes it (the common case: no task, no wake-up); else
        queue it behind what is waiting for the writer task."""
        out = self._out
        if out is None:
            return
        if self._writer is None and not (seq and self.mirror is not None):
            direct = self._direct
            if direct is not None:
                if isinstance(data, Spliced):
                    p = data.prepared
                    assert p.head_b is not None  # only spliceable broadcasts are Spliced
                    if direct.splice(p.head_b, data.suffix, p.deflated):
                        return
                elif direct.write(data.encode("utf-8") if isinstance(data, str) else data):
                    return  # (a str is a replayed text: it was encoded before)
                # closing or behind: the writer task waits for the transport (below)
            else:
                transport = self._transport
                assert transport is not None  # attached while there is an out queue
                coro = _send(transport, data.whole() if isinstance(data, Spliced) else data)
                try:
                    yielded = coro.send(None)
                except StopIteration:
                    return
                except (ConnectionError, RuntimeError):
                    self._out = None  # the socket is going away; frames stay retained
                    return
                except Exception:  # this one frame; the socket and the frames after it go on
                    log.exception("session %s: a frame could not be written; dropped",
                                  self.id)
                    if self.on_drop is not None:
                        self.on_drop()
                    return
                # flow control (the socket is behind): the rest of this send, and whatever
                # comes after it, is written by a task
                self._writer = asyncio.get_running_loop().create_task(
                    self._write_loop(transport, out, None, (coro, yielded)),
                    name=f"ws-writer-{self.id}")
                return
        if len(out) >= self.max_queue:
            # The client can't keep up; drop the socket, it will resume from its last seq.
            log.warning("session %s: send queue full, closing socket", self.id)
            self.detach(close_code=4008, reason="send queue overflow, resume")
            return
        out.append((seq, data))
        if self._writer is None:
            transport = self._transport
            assert transport is not None  # attached while there is an out queue
            self._writer = asyncio.get_running_loop().create_task(
                self._write_loop(transport, out, self._direct), name=f"ws-writer-{self.id}")

    def _trim(self, now: float) -> None:
        frames = self._frames
        while len(frames) > self.retain_frames and now - frames[0][1] > self.retain_s:
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
        oldest = self._frames[0][0] if self._frames else self.seq + 1
        if last_seq + 1 < oldest:
            return None
        return [RetainedFrame(seq, text, ts, head) for seq, ts, text, head in self._frames
                if seq > last_seq]

    def retain(self, frame: RetainedFrame) -> None:
        """Keep a frame numbered elsewhere (a session restored from the mirror)."""
        self._frames.append((frame.seq, frame.ts, frame.text, None))

    def replay(self, frames: list[RetainedFrame]) -> None:
        for f in frames:
            self._enqueue(f.text, f.seq)

    # --- sockets -------------------------------------------------------------------------
    def attach(self, transport: Transport) -> None:
        self.detach(close_code=4000, reason="session taken over by a new socket")
        self._transport = transport
        self._direct = direct_writer(transport, self.deflater)
        self._out = deque()
        self._writer = None
        self.detached_at = None

    def detach_if(self, transport: Transport) -> bool:
        """Detach only if ``transport`` is still the attached socket (not after a resume)."""
        if self._transport is transport:
            self.detach()
            return True
        return False

    def detach(self, close_code: int | None = None, reason: str = "") -> None:
        t, w = self._transport, self._writer
        # a running writer flushes what is queued for this socket, then stops
        self._transport = self._out = self._writer = self._direct = None
        if t is None:
            return
        self.detached_at = time.monotonic()
        if close_code is not None:
            async def close_after_flush() -> None:
                if w is not None:
                    try:
                        await asyncio.wait_for(asyncio.shield(w), 2.0)
                    except Exception:
                        pass
                try:
                    await t.close(code=close_code, message=reason.encode()[:120])
                except Exception:
                    pass
            asyncio.get_running_loop().create_task(close_after_flush())

    async def _write_loop(self, transport: Transport, out: deque[tuple[int, Frame]],
                          direct: DirectWriter | None,
                          pending: tuple[Coroutine[Any, Any, Any], Any] | None = None) -> None:
        """Drain ``out`` in order: through the socket's direct path when it has one (it
        compresses as negotiated), else aiohttp's ``send_frame``."""
        try:
            if pending is not None:
                await finish(*pending)
            while out:
                seq, data = out.popleft()
                if seq and self.mirror is not None:
                    # never show a client a frame that a node failure could lose
                    await self.mirror.wait_mirrored(self, seq)
                try:
                    if direct is None:
                        await _send(transport,
                                    data.whole() if isinstance(data, Spliced) else data)
                    elif isinstance(data, Spliced):
                        p = data.prepared
                        assert p.head_b is not None
                        await direct.send_spliced(p.head_b, data.suffix, p.deflated)
                    else:
                        await direct.send(data.encode("utf-8") if isinstance(data, str)
                                          else data)
                except (ConnectionError, RuntimeError, asyncio.CancelledError):
                    raise
                except Exception:  # this one frame; the writer goes on with the next
                    log.exception("session %s: frame %s could not be written; dropped",
                                  self.id, seq)
                    if self.on_drop is not None:
                        self.on_drop()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            if self._out is out:
                self._out = None
        except Exception:
            log.exception("session %s writer failed", self.id)
            if self._out is out:
                self._out = None
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait until queued frames are written (used before closing a socket on purpose)."""
        w = self._writer
        if w is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(w), timeout)
        except Exception:
            pass
