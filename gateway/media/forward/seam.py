"""The forwarding seam: how one participant's received track reaches the others.

A :class:`Forwarder` knows *sources* (one per received track: a participant's audio or
video, published with the :class:`~aiortc.RTCRtpReceiver` that produced it) and
*subscriptions* (one per source and destination participant). ``subscribe`` returns the
:class:`~aiortc.MediaStreamTrack` the destination's peer connection sends; the peer code
never looks inside it. That is the whole contract between negotiation (``peer.py``) and
forwarding, so the decoded relay here and the encoded passthrough are
interchangeable:

* :class:`RelayForwarder` (this issue, ``media_mode=transcode``): aiortc's ``MediaRelay``
  with ``buffered=False``; every subscriber gets the *latest decoded* frame (a slow
  encoder drops frames instead of queueing them) and its sender re-encodes. Decoding runs
  in the receiver's own thread, encoding in the loop's default thread pool (aiortc 1.16,
  ``RTCRtpSender._next_encoded_frame``), so neither blocks the event loop.
* :class:`~gateway.media.passthrough.PassthroughForwarder` (``media_mode=passthrough``)
  taps the receiver's encoded frames (:meth:`Forwarder.prepare`, before the
  receiver starts) and hands subscribers tracks that yield ``av.Packet`` (the sender's
  ``pack()`` path). It restricts a destination's m-line to the source's codec
  (:meth:`Forwarder.send_codec`), relays keyframe requests upstream (:meth:`Forwarder.bind`,
  :meth:`Forwarder.request_keyframe`), and falls back to decode + encode for a pair whose
  codecs differ. The relay forwarder needs none of that: each subscriber has its own
  encoder, which starts on a keyframe and answers the subscriber's PLI/FIR by itself.

:func:`make_forwarder` picks one from ``Config.media_mode``.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from dataclasses import dataclass, field

from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceKey:
    """One published track: ``owner``'s ``kind`` track on m-line ``mid`` of that owner's
    connection generation ``gen`` (a rebuilt connection publishes new keys)."""

    owner: str
    kind: str
    mid: str
    gen: int = 0


class Forwarder(abc.ABC):
    """Per-source publish, per-destination subscribe, keyframe requests upstream."""

    mode = "transcode"

    def prepare(self, receiver: RTCRtpReceiver, kind: str) -> None:
        """A new receiver, before its connection is up (encoded forwarding taps it here)."""

    @abc.abstractmethod
    def publish(self, key: SourceKey, track: MediaStreamTrack,
                receiver: RTCRtpReceiver | None = None, codec=None) -> None:
        """A participant's connection received ``track`` (sent with ``codec``, an
        ``RTCRtpCodecParameters`` when known); make it available to others."""

    @abc.abstractmethod
    def unpublish(self, key: SourceKey) -> None:
        """The source is gone: end every subscription to it (their tracks end)."""

    @abc.abstractmethod
    def subscribe(self, key: SourceKey, dest: str, accepts=None) -> MediaStreamTrack:
        """A track carrying ``key`` for participant ``dest`` (one per pair). ``accepts``:
        the codecs ``dest`` can receive for that kind (from its offer), when known."""

    def send_codec(self, key: SourceKey, dest: str):
        """The codec ``dest``'s m-line for ``key`` must be limited to, or None (any)."""
        return None

    def bind(self, key: SourceKey, dest: str, sender) -> None:
        """The ``RTCRtpSender`` that sends ``dest``'s copy of ``key`` (hook PLI/FIR here)."""

    def pair_mode(self, key: SourceKey, dest: str) -> str | None:
        """``"passthrough"`` / ``"transcode"`` for a subscribed pair, else None."""
        src = key in self.sources()
        return self.mode if src else None

    @abc.abstractmethod
    def unsubscribe(self, key: SourceKey, dest: str) -> None:
        """End ``dest``'s copy of ``key``; the track it got ends (its sender stops reading)."""

    def request_keyframe(self, key: SourceKey) -> None:
        """Ask the source for a keyframe (PLI). Only encoded forwarding needs it."""

    @abc.abstractmethod
    def sources(self) -> list[SourceKey]: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


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
            self._drain(sink), name=f"media-drain-{key.owner}-{key.kind}")
        src.subs["\0drain"] = sink
        self._sources[key] = src

    @staticmethod
    async def _drain(sink: MediaStreamTrack) -> None:
        try:
            while True:
                await sink.recv()
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def unpublish(self, key: SourceKey) -> None:
        src = self._sources.pop(key, None)
        if src is None:
            return
        for proxy in src.subs.values():
            _end(proxy)
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
            _end(proxy)

    def sources(self) -> list[SourceKey]:
        return list(self._sources)

    async def close(self) -> None:
        for key in list(self._sources):
            self.unpublish(key)


def make_forwarder(mode: str) -> Forwarder:
    """The forwarder for ``Config.media_mode`` (``passthrough`` | ``transcode``)."""
    if mode == "passthrough":
        from .passthrough import PassthroughForwarder
        return PassthroughForwarder()
    if mode == "transcode":
        return RelayForwarder()
    raise ValueError(f"unknown media mode {mode!r}")


def _end(proxy: MediaStreamTrack) -> None:
    """Stop a relay proxy *and* wake a reader blocked in its ``recv()``.

    ``RelayStreamTrack.stop()`` only unregisters the proxy, so a sender awaiting the next
    frame would wait forever (its RTP task lingers until the connection closes). Handing it
    the relay's own end-of-stream marker (``None``) makes that ``recv()`` raise
    ``MediaStreamError``, which ends the sender's RTP loop at once.
    """
    proxy.stop()
    event = getattr(proxy, "_new_frame_event", None)
    if event is not None:
        proxy._frame = None
        event.set()
