"""One participant's RTCPeerConnection with the gateway, and its negotiation state machine.

A :class:`Peer` owns exactly one aiortc connection and the rules for talking SDP over it:

* the **client offers first** (``rtc.offer``); the gateway's answer takes the client's own
  media on the client's m-lines and, on those same m-lines (``sendrecv``), already sends
  the sources published at that moment, one per kind (:meth:`answer`'s ``forward_now``).
  Why: a callee who offers after the caller then sees the caller at the end of *one*
  offer/answer round; the second round (a gateway offer, the browser applying it and
  answering) was most of the extra set-up time of a call through the gateway
  (docs/media.md, "Call set-up time"). Everything else — a second source of the same kind,
  whoever joins later — travels on m-lines the gateway creates (``sendonly``) and offers
  right after the answer;
* afterwards **only the gateway offers** (participants joining or leaving), with at most
  one offer outstanding; more changes while one is outstanding are folded into the next
  offer, sent when the answer arrives (``wanted``). Every gateway offer keeps the payload
  types and header-extension ids the client chose in its first offer
  (:func:`~gateway.media.compat.offer_numbering.renumber_offer`);
* a client offer while a gateway offer is outstanding is *glare*: aiortc cannot roll back,
  so the gateway is the impolite peer and the client gets ``error`` ``glare``;
* a send slot (transceiver) whose forwarded track ended is never reused: aiortc's sender
  task ends with its track, so a participant who leaves turns its slots ``inactive`` (a
  client's own m-line goes back to ``recvonly``: it still carries the client's media) and a
  newcomer gets fresh m-lines.

aiortc has no ICE restart: a participant that comes back after a network drop gets a new
``Peer`` (a new *generation*), see ``service.py``. The connection is always built with an
explicit ``RTCConfiguration`` so aiortc never falls back to its default public STUN server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as sdp_module
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.sdp import candidate_from_sdp

from signaling.errors import ErrorCode, ProtocolError

from .candidates import CandidatePolicy
from .compat.answer_codecs import negotiated_codec, prefer_codec_in_answer
from .compat.offer_numbering import Numbering, create_offer
from .compat.red_fec import accept_red_fec
from .forward.seam import Forwarder, SourceKey
from .ice_policy import IcePolicy, applied

log = logging.getLogger(__name__)

OfferSink = Callable[["Peer", str, list], Awaitable[None]]
# what the answer to a first offer sends on the client's own m-lines: (owner, kind, the
# published source or None if that owner has not published it yet)
ToSend = Callable[[], Iterable[tuple[str, str, "SourceKey | None"]]]


@dataclass
class Slot:
    """One transceiver of the connection, as the gateway uses it to send."""

    transceiver: RTCRtpTransceiver
    own: bool  # created from the client's offer (the client's media), else sendonly
    key: SourceKey | None = None  # the forwarded source it carries now
    receives: bool = False  # own m-line the client offered to receive on (sendrecv/recvonly)
    # (owner, kind) of a source not published yet that this slot will carry (reserved)
    pending: tuple[str, str] | None = None
    spent: bool = False  # carried a track that ended: never reused


@dataclass
class Received:
    key: SourceKey
    track: MediaStreamTrack
    receiver: RTCRtpReceiver
    transceiver: RTCRtpTransceiver | None = None

    @property
    def codec(self):
        """The codec the client sends this track with (first of the gateway's answer)."""
        return negotiated_codec(self.transceiver) if self.transceiver is not None else None


def _offered_codecs(parsed: sdp_module.SessionDescription, mid: str | None) -> list:
    """The codecs the client offered on the m-line ``mid`` (all of them: aiortc's
    transceiver keeps only those it knows)."""
    return next((m.rtp.codecs for m in parsed.media if m.rtp.muxId == mid), [])


def _check_sdp(sdp: str, what: str) -> sdp_module.SessionDescription:
    """What aiortc lets through but we cannot use: not SDP at all, or no audio/video.
    Returns the parsed description (parsing a browser's offer costs ~1 ms in Python, and
    the answer's critical path reads it several times).

    (aiortc's parser skips unknown lines, so ``"v=0\r\ngarbage"`` parses as an empty
    session and would be answered with an empty answer.)
    """
    try:
        parsed = sdp_module.SessionDescription.parse(sdp)
    except Exception as e:
        raise ProtocolError(ErrorCode.BAD_SDP, f"{what}: the SDP does not parse: "
                                               f"{type(e).__name__}: {e}"[:300]) from None
    if not sdp.lstrip().startswith("v=0") or not any(
            m.kind in ("audio", "video") for m in parsed.media):
        raise ProtocolError(ErrorCode.BAD_SDP, f"{what}: the SDP has no audio or video m-line")
    return parsed


def _client_receives(parsed: sdp_module.SessionDescription) -> set[str]:
    """mids of the offer's m-lines on which the client is ready to receive."""
    return {m.rtp.muxId for m in parsed.media
            if m.direction in ("sendrecv", "recvonly") and m.rtp.muxId}


def ice_servers_for_gateway(urls: list[str]) -> list[RTCIceServer]:
    """The gateway's own ICE servers: STUN only (it has no use for TURN credentials)."""
    return [RTCIceServer(urls=list(urls))] if urls else []


class Peer:
    def __init__(self, owner: str, gen: int, forwarder: Forwarder, on_offer: OfferSink,
                 ice_servers: list[RTCIceServer] | None = None, video_codec: str = "VP8",
                 on_state: Callable[[Peer], None] | None = None,
                 ice_policy: IcePolicy | None = None,
                 candidates: CandidatePolicy | None = None):
        self.owner = owner
        self.gen = gen
        self.forwarder = forwarder
        self.on_offer = on_offer
        self.video_codec = video_codec
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers or [])))
        self.lock = asyncio.Lock()
        self.negotiated = False  # the client's first offer has been answered
        self.offering = False  # a gateway offer is outstanding
        self.wanted = False  # another gateway offer is needed
        self.closed = False
        self.slots: list[Slot] = []
        self.received: list[Received] = []
        self.numbering: Numbering | None = None  # the client's payload types / extmap ids
        self._on_state = on_state
        self.ice_policy = ice_policy
        # which remote candidates the ICE agent may be given; None: any (in-process tests)
        self.candidates = candidates
        self.ignored_candidates = 0  # dropped by that policy (then end-of-candidates too)

        @self.pc.on("connectionstatechange")
        def _changed() -> None:
            if self._on_state is not None:
                self._on_state(self)

    # --- state -----------------------------------------------------------------------------
    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    @property
    def connected(self) -> bool:
        return self.pc.connectionState == "connected"

    def forwarded(self) -> set[SourceKey]:
        return {s.key for s in self.slots if s.key is not None}

    def tracks(self) -> list[dict]:
        """``[{mid, user, kind}]`` for every forwarded (or reserved) track on this connection."""
        out = []
        for s in self.slots:
            owner_kind = (s.key.owner, s.key.kind) if s.key is not None else s.pending
            if owner_kind is not None and s.transceiver.mid is not None:
                out.append({"mid": s.transceiver.mid, "user": owner_kind[0],
                            "kind": owner_kind[1]})
        return out

    # --- the client's (first) offer -------------------------------------------------------
    async def answer(self, sdp: str, to_send: ToSend | None = None) -> str:
        """Apply the client's offer and answer it: the client's media in, and out on the
        same m-lines what ``to_send()`` lists (asked *after* the offer is applied, so a
        source published meanwhile is included; at most one source per kind, on an m-line
        the client offered to receive on). A source not published yet is *reserved*: the
        m-line carries it from the moment it is (:meth:`forward`), with no new offer.

        Other forwarded tracks follow in a gateway offer (:meth:`forward`,
        :meth:`renegotiate`). Raises ``bad_sdp`` if aiortc refuses the offer; the caller
        then discards this peer (a half-applied remote description cannot be rolled back).
        """
        async with self.lock:
            if self.negotiated:
                raise ProtocolError(ErrorCode.BAD_STATE,
                                    "this connection is negotiated; the gateway offers now")
            parsed = _check_sdp(sdp, "rtc.offer")
            sdp = self._filter_sdp(sdp)
            log.debug("offer from %s:\n%s", self.owner, sdp)
            got: list[MediaStreamTrack] = []
            self.pc.on("track", got.append)
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except Exception as e:  # aiortc raises ValueError, AssertionError, OperationError…
                raise ProtocolError(ErrorCode.BAD_SDP, f"rtc.offer: the SDP was refused: "
                                                       f"{type(e).__name__}: {e}"[:300]) from None
            finally:
                self.pc.remove_listener("track", got.append)
            self.numbering = Numbering.from_description(parsed)  # candidates play no part
            receives = _client_receives(parsed)
            for t in self.pc.getTransceivers():
                self._prefer_codec(t, reorder=True)
                if t.kind == "video" and self.forwarder.repairs_fec:
                    accept_red_fec(t, _offered_codecs(parsed, t.mid))  # docs/media.md
                t.direction = "recvonly"
                self.slots.append(Slot(t, own=True, receives=t.mid in receives))
                if t.receiver.track is not None and t.receiver.track in got:
                    self.forwarder.prepare(t.receiver, t.kind)  # before DTLS can start it
                    self.received.append(Received(SourceKey(self.owner, t.kind, t.mid, self.gen),
                                                  t.receiver.track, t.receiver, t))
            if to_send is not None:
                for owner, kind, key in to_send():
                    if key is not None:
                        self._forward_on_own(key)
                    else:
                        self._reserve_on_own(owner, kind)
            try:
                with applied(self.ice_policy):  # gathering happens here
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
            except Exception as e:
                raise ProtocolError(ErrorCode.BAD_SDP, f"rtc.offer: cannot answer this offer: "
                                                       f"{type(e).__name__}: {e}"[:300]) from None
            self.negotiated = True
            log.debug("gateway answer to %s:\n%s", self.owner, self.pc.localDescription.sdp)
            return self.pc.localDescription.sdp

    def _filter_sdp(self, sdp: str) -> str:
        """The remote SDP without the candidates the policy refuses (before aiortc sees it)."""
        if self.candidates is None:
            return sdp
        sdp, dropped = self.candidates.filter_sdp(sdp)
        self.ignored_candidates += dropped
        return sdp

    # --- forwarding changes ---------------------------------------------------------------
    def forward(self, key: SourceKey) -> None:
        """Send ``key`` to this participant: on the slot reserved for it if there is one
        (nothing to negotiate), else on a new m-line (needs :meth:`renegotiate`)."""
        if self.closed or key in self.forwarded() or key not in self.forwarder.sources():
            return
        accepts = self.numbering.codecs.get(key.kind) if self.numbering is not None else None
        for s in self.slots:
            if s.pending == (key.owner, key.kind):
                s.pending = None
                if self.forwarder.adopt(key, self.owner, accepts=accepts):
                    s.key = key
                    return
                s.spent = True  # cannot pass (codec): a new m-line with the fallback below
                s.transceiver.direction = "recvonly"
                self.wanted = True
                break
        accepts = self.numbering.codecs.get(key.kind) if self.numbering is not None else None
        track = self.forwarder.subscribe(key, self.owner, accepts=accepts)
        t = self.pc.addTransceiver(track, direction="sendonly")
        only = self.forwarder.send_codec(key, self.owner)
        if only is not None:
            self._only_codec(t, only)  # encoded forwarding: the source's codec, nothing else
        else:
            self._prefer_codec(t)
        self.forwarder.bind(key, self.owner, t.sender)
        self.slots.append(Slot(t, own=False, key=key))
        self.wanted = True

    def _free_own(self, kind: str) -> Slot | None:
        return next((s for s in self.slots if s.own and s.receives and s.key is None
                     and s.pending is None and not s.spent and s.transceiver.kind == kind),
                    None)

    def _reserve_on_own(self, owner: str, kind: str) -> bool:
        """Reserve a free own m-line of ``kind`` for ``owner``'s coming source."""
        if self.closed:
            return False
        slot = self._free_own(kind)
        if slot is None:
            return False
        track = self.forwarder.reserve(owner, kind, self.owner)
        if track is None:
            return False
        t = slot.transceiver
        t.sender.replaceTrack(track)
        t.direction = "sendrecv"
        self.forwarder.bind_reserved(owner, kind, self.owner, t.sender)
        slot.pending = (owner, kind)
        return True

    def pending_owners(self) -> set[str]:
        return {s.pending[0] for s in self.slots if s.pending is not None}

    def settle(self, owner: str) -> None:
        """``owner`` will not publish what its reserved slots wait for (it sends no such
        track, or left): they go back to receiving only (needs :meth:`renegotiate`)."""
        for s in self.slots:
            if s.pending is not None and s.pending[0] == owner:
                self.forwarder.release(owner, s.pending[1], self.owner)
                s.pending = None
                s.spent = True  # its sender's track ended: never reused
                if not self.closed:
                    s.transceiver.direction = "recvonly"
                self.wanted = True

    def _forward_on_own(self, key: SourceKey) -> bool:
        """Send ``key`` on a free own m-line of its kind, in the answer being built."""
        if self.closed or key in self.forwarded() or key not in self.forwarder.sources():
            return False
        slot = self._free_own(key.kind)
        if slot is None:
            return False
        accepts = self.numbering.codecs.get(key.kind) if self.numbering is not None else None
        track = self.forwarder.subscribe(key, self.owner, accepts=accepts)
        t = slot.transceiver
        t.sender.replaceTrack(track)
        t.direction = "sendrecv"
        # the answer's codecs are the negotiated ones (video_codec first); a passthrough sink
        # writes with the payload type of the source's codec among them
        self.forwarder.bind(key, self.owner, t.sender)
        slot.key = key
        return True

    def unforward(self, key: SourceKey) -> None:
        """Stop sending ``key``; its slot goes quiet for good (needs :meth:`renegotiate`)."""
        for s in self.slots:
            if s.key == key:
                self.forwarder.unsubscribe(key, self.owner)
                s.key = None
                s.spent = True
                if not self.closed:  # an own m-line still brings the client's media
                    s.transceiver.direction = "recvonly" if s.own else "inactive"
                self.wanted = True

    def _prefer_codec(self, t: RTCRtpTransceiver, reorder: bool = False) -> None:
        if t.kind != "video" or not self.video_codec:
            return
        want = f"video/{self.video_codec}".lower()
        caps = RTCRtpSender.getCapabilities("video").codecs
        first = [c for c in caps if c.mimeType.lower() == want]
        if not first:
            return
        t.setCodecPreferences(first + [c for c in caps if c not in first])
        if reorder:  # the answer is built from the codecs negotiated in setRemoteDescription
            prefer_codec_in_answer(t, want)

    @staticmethod
    def _only_codec(t: RTCRtpTransceiver, codec) -> None:
        """Offer only ``codec`` (and RTX) on ``t``: the sender then packs what it is given."""
        caps = RTCRtpSender.getCapabilities(t.kind).codecs
        # aiortc annotates RTCRtpCodecParameters but reads only what a capability has too
        # (mimeType, clockRate, parameters)
        same = [c for c in caps if is_codec_compatible(c, codec)]  # type: ignore[arg-type]
        if not same:
            return
        exact = [c for c in same if c.parameters == codec.parameters]
        t.setCodecPreferences((exact or same)[:1] + [c for c in caps
                                                     if c.mimeType.lower().endswith("/rtx")])

    # --- gateway offers --------------------------------------------------------------------
    async def renegotiate(self) -> None:
        """Offer the current set of forwarded tracks if anything changed (one at a time)."""
        async with self.lock:
            await self._offer_if_wanted()

    async def _offer_if_wanted(self) -> None:
        if not self.wanted or self.offering or not self.negotiated or self.closed:
            return
        self.wanted = False
        sdp = await create_offer(self.pc, self.numbering)  # the client's PTs and extmap ids
        with applied(self.ice_policy):
            await self.pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self.offering = True
        log.debug("gateway offer to %s:\n%s", self.owner, self.pc.localDescription.sdp)
        await self.on_offer(self, self.pc.localDescription.sdp, self.tracks())

    async def accept_answer(self, sdp: str) -> None:
        async with self.lock:
            if not self.offering:
                raise ProtocolError(ErrorCode.BAD_STATE,
                                    "rtc.answer: the gateway has no offer outstanding")
            _check_sdp(sdp, "rtc.answer")
            sdp = self._filter_sdp(sdp)
            log.debug("answer from %s:\n%s", self.owner, sdp)
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as e:
                raise ProtocolError(ErrorCode.BAD_SDP, f"rtc.answer: the SDP was refused: "
                                                       f"{type(e).__name__}: {e}"[:300]) from None
            self.offering = False
            await self._offer_if_wanted()

    async def add_candidate(self, candidate: str, sdp_mid: str | None,
                            sdp_mline_index: int | None) -> None:
        """A trickled browser candidate; ``""`` marks the end of candidates."""
        if self.closed or self.pc.remoteDescription is None:
            return  # nothing to add it to (stale, or before the offer): harmless
        if not candidate:
            if not self.ignored_candidates:  # else aioice would give up before prflx pairs
                await self.pc.addIceCandidate(None)
            return
        text = candidate[len("candidate:"):] if candidate.startswith("candidate:") else candidate
        try:
            c = candidate_from_sdp(text)
        except Exception:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                "rtc.candidate: 'candidate' is not an ICE candidate line") from None
        if self.candidates is not None and not self.candidates.allows(c.ip):
            self.ignored_candidates += 1
            log.debug("ignored a remote ICE candidate of %s: %s", self.owner, text[:200])
            return
        c.sdpMid = sdp_mid
        c.sdpMLineIndex = sdp_mline_index
        if c.sdpMid is None and c.sdpMLineIndex is None:
            c.sdpMLineIndex = 0
        await self.pc.addIceCandidate(c)

    # --- end -------------------------------------------------------------------------------
    async def close(self) -> None:
        """Close the connection and end everything it sent or subscribed to."""
        if self.closed:
            return
        self.closed = True
        for s in self.slots:
            if s.key is not None:
                self.forwarder.unsubscribe(s.key, self.owner)
                s.key = None
            if s.pending is not None:
                self.forwarder.release(s.pending[0], s.pending[1], self.owner)
                s.pending = None
        try:
            await self.pc.close()
        except Exception:
            log.exception("closing peer connection of %s failed", self.owner)
        self.slots.clear()
        self.received.clear()
        self._on_state = None
