"""The tracks a forwarding destination's ``RTCRtpSender`` holds.

aiortc's sender reads a ``MediaStreamTrack``; what it reads depends on how the pair is
forwarded:

* :class:`RtpTrack` (passthrough): nothing. The pair's :class:`~gateway.media.rtp_sink.RtpSink`
  writes the packets; the track only keeps the sender's RTCP loop running until the end.
* :class:`PacketTrack`: the source's encoded frames as ``av.Packet``, bounded, never
  starting (or restarting) on a delta frame.
* :class:`DecodedTrack` (the per-pair fallback): those frames decoded, off the loop, for
  a destination that cannot receive the source's codec; its sender re-encodes them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from .compat.receiver_tap import decoder_for
from .rtp_sink import RtpSink

VIDEO_QUEUE = 15  # frames a subscription may hold (~0.5 s at 30 fps) before it resyncs
AUDIO_QUEUE = 25  # 20 ms packets (~0.5 s); the oldest are dropped
FRESH_KEYFRAME_S = 0.2  # a queued keyframe older than this is not worth starting with


class RtpTrack(MediaStreamTrack):
    """The track a passthrough sender holds. aiortc's sender reads nothing from it (its
    packets are written by the :class:`RtpSink`); ``recv`` only waits for the end, so the
    sender's own RTP loop sleeps while its RTCP loop (sender reports, NACK, PLI) runs."""

    def __init__(self, kind: str, sink: RtpSink):
        super().__init__()
        self.kind = kind
        self.sink = sink
        self._done = asyncio.Event()

    @property
    def mime(self) -> str | None:
        return self.sink.mime

    @property
    def sent(self) -> int:
        return self.sink.sent

    async def recv(self):
        await self._done.wait()
        raise MediaStreamError

    def end(self) -> None:
        self.sink.end()
        self.stop()
        self._done.set()



@dataclass(slots=True)
class Item:
    packet: av.Packet
    key: bool
    mime: str
    arrival: float


class PacketTrack(MediaStreamTrack):
    """What one destination's sender reads: the source's encoded frames as ``av.Packet``.

    Bounded; video never skips to a delta frame: after dropping anything (a backlog, the
    frames queued before the sender started) it waits for the next keyframe and asks the
    source for one.
    """

    def __init__(self, kind: str, request_keyframe: Callable[[], None], mime: str | None = None):
        super().__init__()
        self.kind = kind
        self.mime = mime.lower() if mime else None  # the codec the destination negotiated
        self._request = request_keyframe
        self._q: deque[Item] = deque()
        self._wake = asyncio.Event()
        self._need_key = kind == "video"
        self._started = False
        self._ended = False
        self.sent = 0
        self.resyncs = 0

    def push(self, item: Item) -> None:
        if self._ended:
            return
        if self.mime is not None and item.mime != self.mime:
            return  # the source switched codec: this sender cannot pack it
        if self.kind == "video":
            if self._need_key:
                if not item.key:
                    return
                self._need_key = False
            if not self._started and item.key:
                self._q.clear()  # before the sender starts, keep from the latest keyframe
            self._q.append(item)
            if len(self._q) > VIDEO_QUEUE:
                self._resync()
        else:
            self._q.append(item)
            if len(self._q) > AUDIO_QUEUE:
                self._q.popleft()
        self._wake.set()

    def _resync(self) -> None:
        self._q.clear()
        self._need_key = True
        self.resyncs += 1
        self._request()

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._started:
            self._started = True
            if self.kind == "video":
                head = self._q[0] if self._q else None
                if (head is None or not head.key
                        or time.monotonic() - head.arrival > FRESH_KEYFRAME_S):
                    self._resync()  # a joiner starts on a fresh keyframe
            else:
                while len(self._q) > 1:
                    self._q.popleft()
        while not self._q:
            if self._ended or self.readyState != "live":
                raise MediaStreamError
            self._wake.clear()
            await self._wake.wait()
        self.sent += 1
        return self._q.popleft().packet

    def end(self) -> None:
        """End the subscription and wake a sender blocked in :meth:`recv`."""
        self._ended = True
        self.stop()
        self._wake.set()


class DecodedTrack(MediaStreamTrack):
    """The per-pair fallback: the source's packets decoded (off the loop), as frames."""

    def __init__(self, kind: str, packets: PacketTrack, codec):
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._decode = decoder_for(codec)
        self._pending: deque = deque()

    async def recv(self):
        loop = asyncio.get_running_loop()
        while not self._pending:
            try:
                pkt = await self._packets.recv()
            except MediaStreamError:
                self.stop()
                raise
            self._pending.extend(await loop.run_in_executor(None, self._decode, pkt))
        return self._pending.popleft()

    def stop(self) -> None:
        super().stop()
        self._packets.end()

