"""The forwarding seam: how one participant's received track reaches the others.

A :class:`Forwarder` knows *sources* (one per received track: a participant's audio or
video, published with the :class:`~aiortc.RTCRtpReceiver` that produced it) and
*subscriptions* (one per source and destination participant). ``subscribe`` returns the
:class:`~aiortc.MediaStreamTrack` the destination's peer connection sends; the peer code
never looks inside it. That is the whole contract between negotiation (``peer.py``) and
forwarding, so the decoded relay and the encoded passthrough are interchangeable:

* :class:`~gateway.media.forward.relay.RelayForwarder` (``media_mode=transcode``):
  aiortc's ``MediaRelay`` with ``buffered=False``; every subscriber gets the *latest
  decoded* frame (a slow encoder drops frames instead of queueing them) and its sender
  re-encodes. Decoding runs in the receiver's own thread, encoding in the loop's default
  thread pool (aiortc 1.16, ``RTCRtpSender._next_encoded_frame``), so neither blocks the
  event loop.
* :class:`~gateway.media.forward.passthrough.PassthroughForwarder`
  (``media_mode=passthrough``) taps the receiver (:meth:`Forwarder.prepare`, before the
  receiver starts) and forwards its RTP packets to each destination as they arrive. It
  restricts a destination's m-line to the source's codec (:meth:`Forwarder.send_codec`),
  relays keyframe requests upstream (:meth:`Forwarder.bind`,
  :meth:`Forwarder.request_keyframe`), and falls back to decode + encode for a pair whose
  codecs differ. The relay forwarder needs none of that: each subscriber has its own
  encoder, which starts on a keyframe and answers the subscriber's PLI/FIR by itself.

:func:`gateway.media.forward.make_forwarder` picks one from ``Config.media_mode``.
"""

from __future__ import annotations

import abc
import fractions
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import MediaStreamTrack, RTCRtpReceiver


@dataclass(frozen=True)
class SourceKey:
    """One published track: ``owner``'s ``kind`` track on m-line ``mid`` of that owner's
    connection generation ``gen`` (a rebuilt connection publishes new keys)."""

    owner: str
    kind: str
    mid: str | None  # the transceiver's (aiortc types it optional)
    gen: int = 0


# an encoded frame: (data, pts in time_base units, keyframe, lower-case MIME type,
# time_base, arrival on the monotonic clock)
FrameConsumer = Callable[[bytes, int, bool, str, fractions.Fraction, float], None]


class Forwarder(abc.ABC):
    """Per-source publish, per-destination subscribe, keyframe requests upstream."""

    mode = "transcode"
    # the receive side unwraps RED and repairs with ULPFEC (Peer accepts them in answers)
    repairs_fec = False

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

    # --- reserved sends: an m-line that will carry a source not published yet ----------
    def reserve(self, owner: str, kind: str, dest: str) -> MediaStreamTrack | None:
        """A track for ``dest`` that will carry ``owner``'s ``kind`` source once it is
        published (:meth:`adopt`), or None if this forwarder cannot do that (then the source
        goes out on an m-line of a later gateway offer). Why: the answer to a first offer
        can then already send what the other party is about to publish, and the call needs
        one offer/answer round, not two (docs/media.md, "Call set-up time")."""
        return None

    def bind_reserved(self, owner: str, kind: str, dest: str, sender) -> None:
        """The ``RTCRtpSender`` holding the track :meth:`reserve` returned."""

    def adopt(self, key: SourceKey, dest: str, accepts=None) -> bool:
        """Start sending the published ``key`` on ``dest``'s reservation for its owner and
        kind; False (and the reservation ended) if there is none or the pair cannot pass."""
        return False

    def release(self, owner: str, kind: str, dest: str) -> None:
        """End a reservation that will not be adopted (its track ends)."""

    def pair_mode(self, key: SourceKey, dest: str) -> str | None:
        """``"passthrough"`` / ``"transcode"`` for a subscribed pair, else None."""
        src = key in self.sources()
        return self.mode if src else None

    @abc.abstractmethod
    def unsubscribe(self, key: SourceKey, dest: str) -> None:
        """End ``dest``'s copy of ``key``; the track it got ends (its sender stops reading)."""

    def request_keyframe(self, key: SourceKey) -> None:
        """Ask the source for a keyframe (PLI). Only encoded forwarding needs it."""

    def tap_frames(self, key: SourceKey, name: str, consume: FrameConsumer) -> None:
        """Also hand every *encoded* frame of ``key`` to ``consume(data, pts, keyframe,
        mime, time_base, arrival)`` until :meth:`untap_frames`; called on the event loop, so
        ``consume`` must only queue. The call recorder's seam: it muxes these frames without
        decoding them. Only encoded forwarding has them."""
        raise NotImplementedError(f"{type(self).__name__} has no encoded frames to tap")

    def untap_frames(self, key: SourceKey, name: str) -> None:
        """Stop handing ``key``'s frames to the consumer ``name`` (unknown names: no-op)."""

    @abc.abstractmethod
    def sources(self) -> list[SourceKey]: ...

    @abc.abstractmethod
    async def close(self) -> None: ...
