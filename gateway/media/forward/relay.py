"""Decoded forwarding (``media_mode=transcode``) through aiortc's ``MediaRelay``.

Also the pieces of ``MediaRelay`` handling the passthrough forwarder's per-pair fallback
reuses: draining a relayed source nobody reads yet (:func:`drain`), and ending a relay
proxy so the sender reading it stops at once (:func:`end_proxy`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.contrib.media import MediaRelay, RelayStreamTrack
from aiortc.mediastreams import MediaStreamError

from .seam import Forwarder, SourceKey


@dataclass
class _Source:
    track: MediaStreamTrack
    receiver: RTCRtpReceiver | None
    drain: asyncio.Task | None = None
    subs: dict[str, MediaStreamTrack] = field(default_factory=dict)


class RelayForwarder(Forwarder):
    """Decoded forwarding through one :class:`aiortc.contrib.media.MediaRelay`.

    Every source is drained from the moment it is published, even with no subscriber:
    aiortc's receiver decodes into an unbounded queue that only a reader empties (a
    ringing call would otherwise hold seconds of raw frames).
    """

    def __init__(self) -> None:
        self._relay = MediaRelay()
        self._sources: dict[SourceKey, _Source] = {}

    def publish(self, key: SourceKey, track: MediaStreamTrack,
                receiver: RTCRtpReceiver | None = None, codec=None) -> None:
        if key in self._sources:
            self.unpublish(key)
        src = _Source(track, receiver)
        sink = self._relay.subscribe(track, buffered=False)
        src.drain = asyncio.get_running_loop().create_task(
            drain(sink), name=f"media-drain-{key.owner}-{key.kind}")
        src.subs["\0drain"] = sink
        self._sources[key] = src

    def unpublish(self, key: SourceKey) -> None:
        src = self._sources.pop(key, None)
        if src is None:
            return
        for proxy in src.subs.values():
            end_proxy(proxy)
        src.subs.clear()
        if src.drain is not None:
            src.drain.cancel()

    def subscribe(self, key: SourceKey, dest: str, accepts=None) -> MediaStreamTrack:
        src = self._sources[key]
        if dest in src.subs:
            raise ValueError(f"{dest} already subscribes to {key}")
        proxy = self._relay.subscribe(src.track, buffered=False)
        src.subs[dest] = proxy
        return proxy

    def unsubscribe(self, key: SourceKey, dest: str) -> None:
        src = self._sources.get(key)
        if src is None:
            return
        proxy = src.subs.pop(dest, None)
        if proxy is not None:
            end_proxy(proxy)

    def sources(self) -> list[SourceKey]:
        return list(self._sources)

    async def close(self) -> None:
        for key in list(self._sources):
            self.unpublish(key)


async def drain(track: MediaStreamTrack) -> None:
    """Read ``track`` until it ends (or this task is cancelled), dropping what it yields."""
    try:
        while True:
            await track.recv()
    except (MediaStreamError, asyncio.CancelledError):
        pass


def end_proxy(proxy: MediaStreamTrack) -> None:
    """Stop a relay proxy *and* wake a reader blocked in its ``recv()``.

    ``RelayStreamTrack.stop()`` only unregisters the proxy, so a sender awaiting the next
    frame would wait forever (its RTP task lingers until the connection closes). Handing it
    the relay's own end-of-stream marker (``None``) makes that ``recv()`` raise
    ``MediaStreamError``, which ends the sender's RTP loop at once.
    """
    proxy.stop()
    if isinstance(proxy, RelayStreamTrack) and proxy._new_frame_event is not None:
        proxy._frame = None
        proxy._new_frame_event.set()
