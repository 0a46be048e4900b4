"""The media service: call handlers, who is told what, timers, and the peers behind a call.

Wires the ``call.*``/``rtc.*`` protocol (``messages.py``) to the call state
(``call.py``), one :class:`~gateway.media.peer.Peer` per participant (``peer.py``) and the
:class:`~gateway.media.forwarder.Forwarder` that carries every participant's tracks to the
others. It owns the call lifecycle rules:

* early media: the requester may offer while its call rings; its media then reaches the
  gateway before anyone answers (forwarded to nobody, recorded by nobody), its answer
  reserves m-lines for the callee, and an accepting callee's first frame needs only the
  callee's own connection (a connection set-up, ~150 ms, off the path to the first frame).
  TURN credentials still come only with ``connecting``; an early connection not up by then
  is re-offered;
* ringing times out after ``ring_timeout_s`` → ``ended``/``missed``, and the conversation
  port is told (the support plane posts a system line and requeues a viewer's missed ring);
* a call lasts at most ``max_call_s`` (→ ``ended``/``max_duration``);
* the viewer or the agent hanging up ends the call for everyone (``hangup``); the host
  hanging up removes only the host; a resolved conversation ends its call (``resolved``);
* a participant whose socket drops keeps its place for ``call_grace_s``: when it comes
  back (resume, or any new live session of the same user) its next ``rtc.offer`` rebuilds
  its peer connection (aiortc has no ICE restart) and the others are renegotiated; after
  the grace period it leaves (a host is removed, the viewer or agent ends the call with
  ``left``).

Conversations are read, and missed rings reported, only through the
:class:`~gateway.media.port.ConversationPort` passed in: media does not know the support plane.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from signaling import ErrorCode, Hub, ProtocolError, Request, Session, logctx
from signaling.events import SessionDetached, SessionLive, SessionResumed
from signaling.hub import Forward, RemoteSession

from .call import Call, CallRegistry, Participant
from .candidates import CandidatePolicy
from .directory import CallDirectory, LocalCallDirectory
from .forwarder import Forwarder, SourceKey, make_forwarder
from .ice_policy import IcePolicy
from .ice_policy import install as install_ice_policy
from .messages import (
    CallAccept,
    CallCallback,
    CallDecline,
    CallHangup,
    CallIncoming,
    CallInvite,
    CallJoin,
    CallMute,
    CallRecord,
    CallRecordConsent,
    CallRequest,
    CallStateEvent,
    RtcAnswer,
    RtcAnswerEvent,
    RtcCandidate,
    RtcOffer,
    RtcOfferEvent,
)
from .peer import Peer, ice_servers_for_gateway
from .port import ConversationPort
from .recording import RecordingControl
from .setup_trace import CallSetupTraces

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)


def _forwarded(req: Request) -> bool:
    """True when this request was forwarded here by another node (never forward it again)."""
    return isinstance(req.session, RemoteSession)

ENDED_KEEP = 1000  # ended call ids remembered, so late messages get bad_state, not not_found
PRESENCE_TOPIC = "media:presence"  # participants' sockets dropping/returning, for every node


class MediaService:
    def __init__(self, hub: Hub, conversations: ConversationPort, config: Config, ice: Any,
                 metrics: Any = None, forwarder: Forwarder | None = None,
                 directory: CallDirectory | None = None, attachments: Any = None):
        self.hub = hub
        self.conversations = conversations
        self.config = config
        self.ice = ice
        self.metrics = metrics
        self.forwarder = forwarder or make_forwarder(config.media_mode,
                                                     config.playout_delay == "auto",
                                                     config.fec == "on")
        self.calls = CallRegistry()
        # RedisCallDirectory with several nodes
        self.directory: CallDirectory = directory or LocalCallDirectory()
        self._watch: asyncio.Task | None = None
        self._ended: OrderedDict[str, str] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._gateway_ice = ice_servers_for_gateway(list(config.stun_urls))
        self.ice_policy = IcePolicy.from_config(list(config.media_address),
                                                config.udp_port_min,
                                                config.udp_port_max)
        if self.ice_policy.active:
            install_ice_policy()
        self.candidates = CandidatePolicy.from_config(config)  # remote candidates kept
        # call.record / call.record.consent: consent, the recorder, storing the files
        self.setup_traces = CallSetupTraces()  # call.request → media flowing, one trace each
        self.recordings = RecordingControl(self, attachments,
                                           config.recording_consent_timeout_s,
                                           config.recording_max_s)

        hub.handle(CallRequest, self.on_request)
        in_setup = self.setup_traces.parent_of  # their spans join the call's setup trace
        hub.handle(CallAccept, self.on_accept, trace_parent=in_setup)
        hub.handle(CallDecline, self.on_decline, trace_parent=in_setup)
        hub.handle(CallHangup, self.on_hangup, trace_parent=in_setup)
        hub.handle(CallInvite, self.on_invite)
        hub.handle(CallJoin, self.on_join)
        hub.handle(CallMute, self.on_mute)
        hub.handle(RtcOffer, self.on_offer, trace_parent=in_setup)
        hub.handle(RtcAnswer, self.on_answer, trace_parent=in_setup)
        hub.handle(RtcCandidate, self.on_candidate, trace_parent=in_setup)
        hub.handle(CallRecord, self.recordings.on_record)
        hub.handle(CallRecordConsent, self.recordings.on_consent)
        hub.events.subscribe(SessionDetached, lambda e: self._on_detached(e.session))
        hub.events.subscribe(SessionLive, lambda e: self._on_back(e.session))
        hub.events.subscribe(SessionResumed, lambda e: self._on_back(e.session))
        conversations.on_resolved(self._on_resolved)

    # --- plumbing --------------------------------------------------------------------------
    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._task_done)
        return t

    def _task_done(self, t: asyncio.Task) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("media task failed", exc_info=t.exception())

    def _later(self, delay: float, coro_fn, *args) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, lambda: self._spawn(coro_fn(*args)))

    def _members(self, call: Call) -> list[str]:
        return self.conversations.members(call.conversation)

    async def _call_for(self, req: Request, call_id: str) -> Call:
        logctx.bind(call=call_id)  # this request's log lines name the call
        call = self.calls.get(call_id)
        if call is None and not _forwarded(req):
            rec = await self.directory.lookup(call_id)
            if rec is not None and rec["node"] != self.hub.node_id:
                raise Forward(rec["node"])  # the call lives on another node: run it there
        if call is None:
            if call_id in self._ended:
                raise ProtocolError(ErrorCode.BAD_STATE, f"call {call_id!r} has ended")
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown call {call_id!r}")
        if not call.may_touch(req.user, self._members(call)):
            raise ProtocolError(ErrorCode.NOT_MEMBER, f"you are not part of call {call_id!r}")
        return call

    def _participant(self, req: Request, call: Call, what: str) -> Participant:
        if call.state == "ringing" and not (req.user == call.requester
                                            and what.startswith("rtc.")):
            raise ProtocolError(ErrorCode.BAD_STATE,
                                f"{what}: the call is ringing; wait for call.state connecting")
        p = call.participants.get(req.user)
        if p is None:
            raise ProtocolError(ErrorCode.BAD_STATE, f"{what}: accept or join the call first")
        return p

    def _state_for(self, call: Call, user: str) -> CallStateEvent:
        ev = CallStateEvent(call=call.id, state=call.state,
                            participants=[p.to_wire() for p in call.participants.values()],
                            reason=call.reason, conversation=call.conversation,
                            video=call.video, started_at=call.started_at,
                            invited=list(call.invited) or None, node=self.hub.node_id,
                            recording=self.recordings.state_of(call.id))
        p = call.participants.get(user)
        if (call.live and call.state != "ringing" and p is not None
                and (p.peer is None or not p.peer.negotiated or p.restart
                     or (p.early and not p.peer.connected))):
            # it has an rtc.offer to send (or may: an early connection not up yet): the only
            # place TURN credentials are handed out, to a participant of a started call,
            # expiring with the call
            until = call.deadline or time.time() + self.config.max_call_s
            ev.ice_servers = self.ice.for_call(user, until=until)
        return ev

    async def _announce(self, call: Call, req: Request | None = None,
                        extra: Sequence[str] = ()) -> None:
        """``call.state`` to everyone concerned; the requester's copy is its reply."""
        users = call.audience(self._members(call))
        users += [u for u in extra if u not in users]
        for user in users:
            ev = self._state_for(call, user)
            if req is not None and user == req.user:
                req.reply(ev)
                await self.hub.send_to_user(user, ev, exclude_session=req.session.id)
            else:
                await self.hub.send_to_user(user, ev)

    # --- call.request / accept / decline ---------------------------------------------------
    async def on_request(self, req: Request[CallRequest]):
        msg: CallRequest = req.msg
        conv = await self.conversations.conversation(msg.conversation, req.user)
        if conv is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown conversation {msg.conversation!r}")
        if req.user not in conv.members:
            raise ProtocolError(ErrorCode.NOT_MEMBER,
                                f"you are not a member of conversation {msg.conversation!r}")
        if req.role == "viewer" and not _forwarded(req):  # surge: a callback slot, no ring
            offer = await self.conversations.callback_instead(conv.id)
            if offer is not None:
                return CallCallback(conversation=conv.id, at=offer.at, position=offer.position,
                                    text=offer.text)
        if conv.state != "assigned" or not conv.agent:
            raise ProtocolError(ErrorCode.BAD_STATE,
                                f"call.request: the conversation is {conv.state}; a call needs "
                                f"an assigned agent")
        if self.calls.for_conversation(conv.id) is not None:
            raise ProtocolError(ErrorCode.CONFLICT, "the conversation already has a call")
        if not _forwarded(req):
            if req.role == "viewer":  # one ring per viewer per ring_interval_s
                await self.conversations.admit_ring(req.user)
            node = await self.directory.pick_node(self.hub.node_id)
            if node != self.hub.node_id:
                raise Forward(node)  # least-loaded node hosts the call's peers
        callee = conv.agent if req.user == conv.viewer else conv.viewer
        call = self.calls.create(conv.id, conv.room, msg.video, req.user, req.role, callee,
                                 req.claims.name)
        self.setup_traces.started(call.id, self.hub.node_id)
        await self.directory.record(call.id, self.hub.node_id, conv.id, [conv.viewer, conv.agent])
        call.timers["ring"] = self._later(self.config.ring_timeout_s, self._ring_timeout, call)
        await self._announce(call, req)
        await self.hub.send_to_user(callee, CallIncoming(
            call=call.id, conversation=conv.id, video=msg.video,
            from_={"user": req.user, "role": req.role, "name": req.claims.name or req.user}))

    async def _ring_timeout(self, call: Call) -> None:
        if call.state == "ringing":
            await self._end(call, "missed")

    async def on_accept(self, req: Request[CallAccept]):
        call = await self._call_for(req, req.msg.call)
        if req.user in call.invited:
            return await self._join(req, call)
        if call.state != "ringing":
            raise ProtocolError(ErrorCode.BAD_STATE, f"call.accept: the call is {call.state}")
        if req.user != call.callee:
            raise ProtocolError(ErrorCode.BAD_STATE, "call.accept: you placed this call")
        call.cancel_timer("ring")
        call.add(req.user, req.role, req.claims.name)
        call.state = "connecting"
        call.deadline = time.time() + self.config.max_call_s
        call.timers["max"] = self._later(self.config.max_call_s, self._max_length, call)
        await self._announce(call, req)
        await self.conversations.call_answered(call.requester)

    async def _max_length(self, call: Call) -> None:
        if call.live:
            await self._end(call, "max_duration")

    async def on_decline(self, req: Request[CallDecline]):
        call = await self._call_for(req, req.msg.call)
        if req.user in call.invited:
            del call.invited[req.user]
            await self._announce(call, req, extra=[req.user])
            return None
        if call.state == "ringing" and req.user == call.callee:
            await self._end(call, "declined", req)
            return None
        raise ProtocolError(ErrorCode.BAD_STATE, "call.decline: nothing to decline")

    # --- hangup, invite, join, mute --------------------------------------------------------
    async def on_hangup(self, req: Request[CallHangup]):
        call = await self._call_for(req, req.msg.call)
        if not call.live:
            raise ProtocolError(ErrorCode.BAD_STATE, "the call has ended")
        p = call.participants.get(req.user)
        if p is None:
            if call.state == "ringing" and req.user == call.callee:
                await self._end(call, "declined", req)
                return None
            if req.user in call.invited:
                del call.invited[req.user]
                await self._announce(call, req, extra=[req.user])
                return None
            raise ProtocolError(ErrorCode.BAD_STATE, "call.hangup: you are not in the call")
        await self._leave(call, p, "hangup", req)
        return None

    async def on_invite(self, req: Request[CallInvite]):
        msg: CallInvite = req.msg
        call = await self._call_for(req, msg.call)
        if req.user not in call.participants or call.state not in ("connecting", "active"):
            raise ProtocolError(ErrorCode.BAD_STATE,
                                "call.invite: only an agent in a connected call can invite")
        if msg.user in call.participants:
            raise ProtocolError(ErrorCode.CONFLICT, f"{msg.user!r} is already in the call")
        where = await self._presence(msg.user)
        if not where:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"{msg.user!r} is not connected")
        if not any(w["role"] == "host" for w in where):
            raise ProtocolError(ErrorCode.FORBIDDEN, f"{msg.user!r} is not a host")
        if not any(w["role"] == "host" and w["room"] == call.room for w in where):
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"{msg.user!r} is not the host of room {call.room!r}")
        call.invited[msg.user] = req.user
        await self.directory.record(call.id, self.hub.node_id, call.conversation,
                                    self._members(call) + list(call.invited))
        await self._announce(call, req)
        conv = await self.conversations.conversation(call.conversation, req.user)
        about = ({"viewer": {"user": conv.viewer, "name": conv.viewer_name or conv.viewer},
                  "reason": conv.reason} if conv is not None else None)
        await self.hub.send_to_user(msg.user, CallIncoming(
            call=call.id, conversation=call.conversation, video=call.video,
            from_={"user": req.user, "role": req.role, "name": req.claims.name or req.user},
            about=about))

    async def _presence(self, user: str) -> list[dict]:
        """Connected (live, attached) sessions of ``user``: ``[{role, room, …}]``."""
        presence_of = getattr(self.hub, "presence_of", None)
        if presence_of is not None:
            return await presence_of(user)
        return [{"role": s.role, "room": s.claims.room}
                for s in self.hub.user_sessions(user) if s.attached]

    async def on_join(self, req: Request[CallJoin]):
        call = await self._call_for(req, req.msg.call)
        if req.user not in call.invited:
            raise ProtocolError(ErrorCode.BAD_STATE, "call.join: you have not been invited")
        return await self._join(req, call)

    async def _join(self, req: Request, call: Call):
        if call.state not in ("connecting", "active"):
            raise ProtocolError(ErrorCode.BAD_STATE, f"call.join: the call is {call.state}")
        call.add(req.user, req.role, req.claims.name)
        await self._announce(call, req)

    async def on_mute(self, req: Request[CallMute]):
        msg: CallMute = req.msg
        call = await self._call_for(req, msg.call)
        p = self._participant(req, call, "call.mute")
        if msg.audio is not None:
            p.audio = msg.audio
        if msg.video is not None:
            p.video = msg.video
        await self._announce(call, req)

    # --- rtc.* -----------------------------------------------------------------------------
    async def on_offer(self, req: Request[RtcOffer]):
        msg: RtcOffer = req.msg
        call = await self._call_for(req, msg.call)
        p = self._participant(req, call, "rtc.offer")
        early = call.state == "ringing"  # as it arrived: the callee may accept meanwhile
        if p.peer is not None and p.peer.negotiated:
            if (p.restart or p.peer.connection_state in ("failed", "closed")
                    or (p.early and not p.peer.connected and not p.peer.offering)):
                # rebuild: aiortc has no ICE restart (an early connection that is not up
                # yet comes back with the TURN servers of call.state connecting)
                await self._retire_peer(call, p)
            elif p.peer.offering:
                raise ProtocolError(ErrorCode.GLARE, "rtc.offer: the gateway has an offer "
                                                     "outstanding; answer it instead")
            else:
                raise ProtocolError(ErrorCode.BAD_STATE, "rtc.offer: already negotiated; "
                                                         "renegotiation is offered by the gateway")
        if p.peer is None:
            p.gen += 1
            p.peer = self._new_peer(call, p)
        peer = p.peer

        def to_send() -> list[tuple[str, str, SourceKey | None]]:
            # the answer itself sends the others' media on the client's own m-lines: what is
            # published by now, and what a participant who has not offered yet will publish
            # (reserved): one offer/answer round per participant instead of two
            published = [k for k in self.forwarder.sources() if self._forwardable(call, p, k)]
            out: list[tuple[str, str, SourceKey | None]] = []
            kinds = ("audio", "video") if call.video else ("audio",)
            for q in call.participants.values():
                if q is p or q.dropped:
                    continue
                for kind in kinds:
                    key = next((k for k in published if k.owner == q.user and k.kind == kind),
                               None)
                    if key is not None or q.peer is None or not q.peer.negotiated:
                        out.append((q.user, kind, key))
            if call.state == "ringing":  # early media: the callee's slots, for when it accepts
                out += [(call.callee, kind, None) for kind in kinds]
            return out

        try:
            sdp = await peer.answer(msg.sdp, to_send)
        except ProtocolError as e:
            if e.code == ErrorCode.BAD_SDP and p.peer is peer:  # discard the half-applied peer
                p.peer = None
                self._spawn(peer.close())
            raise
        p.restart = False
        p.early = early
        req.reply(RtcAnswerEvent(call=call.id, sdp=sdp, tracks=peer.tracks()))
        if p.peer is not peer or not call.live:
            return None  # replaced or ended while answering
        # From here to the end of the distribution there is no await: this participant's
        # tracks go to everyone already negotiated, and everything published so far —
        # computed *now*, after the answer, so two first offers answered concurrently still
        # see each other — comes to it in a gateway offer (never inside its own m-lines).
        for r in peer.received:
            self.forwarder.publish(r.key, r.track, r.receiver, codec=r.codec)
        self.recordings.published(call, [r.key for r in peer.received])
        for key in self.forwarder.sources():
            if self._forwardable(call, p, key):
                peer.forward(key)
        touched = [peer]
        for q in call.participants.values():
            if q is p or q.peer is None or not q.peer.negotiated:
                continue
            for r in peer.received:
                q.peer.forward(r.key)
            touched.append(q.peer)
        for x in touched:
            for owner in x.pending_owners():  # reserved for a source that will not come
                o = call.participants.get(owner)
                if call.state == "ringing" and owner == call.callee:
                    continue  # early media: kept for the callee until it accepts or not
                if o is None or (o.peer is not None and o.peer.negotiated):
                    x.settle(owner)
            self._spawn(x.renegotiate())
        await self._announce(call)

    @staticmethod
    def _forwardable(call: Call, p: Participant, key: SourceKey) -> bool:
        """``key`` is another participant's current source in this call."""
        q = call.participants.get(key.owner)
        return key.owner != p.user and q is not None and q.peer is not None and key.gen == q.gen

    def _new_peer(self, call: Call, p: Participant) -> Peer:
        async def send_offer(peer: Peer, sdp: str, tracks: list) -> None:
            if p.peer is peer and call.live:
                await self.hub.send_to_user(p.user, RtcOfferEvent(call=call.id, sdp=sdp,
                                                                  tracks=tracks))

        def state_changed(peer: Peer) -> None:
            if p.peer is peer and call.live:
                self._spawn(self._peer_state(call, p, peer))

        return Peer(p.user, p.gen, self.forwarder, send_offer, ice_servers=self._gateway_ice,
                    video_codec=self.config.video_codec,
                    on_state=state_changed, ice_policy=self.ice_policy,
                    candidates=self.candidates)

    async def _peer_state(self, call: Call, p: Participant, peer: Peer) -> None:
        if not call.live or p.peer is not peer:
            return
        connected = [q for q in call.participants.values() if q.peer is not None and q.peer.connected]
        if peer.connected:
            self.setup_traces.connected(call.id, p.user)
        if call.state == "connecting" and len(connected) >= 2:
            call.state = "active"
            call.started_at = time.time()
            self.setup_traces.active(call.id)
        await self._announce(call)

    async def on_answer(self, req: Request[RtcAnswer]):
        msg: RtcAnswer = req.msg
        call = await self._call_for(req, msg.call)
        p = self._participant(req, call, "rtc.answer")
        if p.peer is None:
            raise ProtocolError(ErrorCode.BAD_STATE, "rtc.answer: send your rtc.offer first")
        await p.peer.accept_answer(msg.sdp)

    async def on_candidate(self, req: Request[RtcCandidate]):
        msg: RtcCandidate = req.msg
        call = await self._call_for(req, msg.call)
        p = self._participant(req, call, "rtc.candidate")
        if p.peer is not None:
            await p.peer.add_candidate(msg.candidate, msg.sdpMid, msg.sdpMLineIndex)

    # --- leaving and ending ----------------------------------------------------------------
    async def _retire_peer(self, call: Call, p: Participant, renegotiate: bool = True) -> None:
        """Close ``p``'s connection: its tracks stop reaching the others, who are re-offered."""
        peer, p.peer = p.peer, None
        touched = []
        for q in call.participants.values():
            if q is p or q.peer is None:
                continue
            q.peer.settle(p.user)  # slots reserved for what it never published
            if peer is not None:
                for r in peer.received:
                    q.peer.unforward(r.key)
            touched.append(q.peer)
        if peer is None:
            if renegotiate:
                for x in touched:
                    self._spawn(x.renegotiate())
            return
        keys = [r.key for r in peer.received]
        self.recordings.unpublished(call, keys)
        for k in keys:
            self.forwarder.unpublish(k)
        await peer.close()
        if renegotiate:
            for x in touched:
                self._spawn(x.renegotiate())

    async def _leave(self, call: Call, p: Participant, reason: str,
                     req: Request | None = None) -> None:
        """``p`` is out (hangup, or grace over). The viewer or agent leaving ends the call."""
        if p.role in ("viewer", "agent"):
            await self._end(call, reason, req)
            return
        if p.grace is not None:
            p.grace.cancel()
            p.grace = None
        call.participants.pop(p.user, None)
        await self._retire_peer(call, p)
        await self._announce(call, req, extra=[p.user])

    async def _end(self, call: Call, reason: str, req: Request | None = None) -> None:
        if not call.live:
            return
        call.end(reason)
        self.setup_traces.ended(call.id, reason)
        self.calls.remove(call)
        try:
            await self.directory.remove(call.id, self.hub.node_id)
        except Exception as e:
            log.warning("call directory remove failed: %s", e)
        self._ended[call.id] = call.conversation
        while len(self._ended) > ENDED_KEEP:
            self._ended.popitem(last=False)
        if self.metrics is not None:
            self.metrics.calls.labels(outcome=reason).inc()
        await self._announce(call, req)
        await self.recordings.call_ended(call)  # its files are saved in a task
        for p in list(call.participants.values()):
            await self._retire_peer(call, p, renegotiate=False)
        if reason == "missed":
            await self.conversations.missed_call(call.conversation, call.requester)

    def _on_resolved(self, conversation: str) -> None:
        call = self.calls.for_conversation(conversation)
        if call is not None:
            self._spawn(self._end(call, "resolved"))
        elif not isinstance(self.directory, LocalCallDirectory):
            # resolved here, but its call (if any) may live on another node
            self._spawn(self.hub.bus.publish(PRESENCE_TOPIC, {
                "what": "resolved", "conversation": conversation, "node": self.hub.node_id}))

    # --- sockets dropping and coming back --------------------------------------------------
    def _on_detached(self, session: Session) -> None:
        if self.hub.online(session.user):
            return  # another socket of the same user is still there
        self._tell_nodes(session.user, "detached")
        self._dropped(session.user)

    def _tell_nodes(self, user: str, what: str) -> None:
        """A participant's socket comes and goes on its own node; calls may live elsewhere."""
        if not isinstance(self.directory, LocalCallDirectory):
            self._spawn(self.hub.bus.publish(PRESENCE_TOPIC, {"user": user, "what": what,
                                                              "node": self.hub.node_id}))

    def _on_remote_presence(self, payload: dict) -> None:
        if payload.get("node") == self.hub.node_id:
            return
        if payload.get("what") == "resolved":
            call = self.calls.for_conversation(payload["conversation"])
            if call is not None:
                self._spawn(self._end(call, "resolved"))
        elif payload.get("what") == "detached":
            self._dropped(payload["user"])
        else:
            self._came_back(payload["user"])

    def _dropped(self, user: str) -> None:
        for call in self.calls.with_participant(user):
            p = call.participants[user]
            if p.dropped:
                continue
            p.dropped = True
            p.grace = self._later(self.config.call_grace_s, self._grace_over, call, p)
            self._spawn(self._announce(call))

    def _on_back(self, session: Session) -> None:
        self._tell_nodes(session.user, "back")
        self._came_back(session.user)

    def _came_back(self, user: str) -> None:
        for call in self.calls.with_participant(user):
            p = call.participants[user]
            if not p.dropped:
                continue
            p.dropped = False
            if p.grace is not None:
                p.grace.cancel()
                p.grace = None
            p.restart = p.peer is not None and p.peer.negotiated
            self._spawn(self._announce(call))

    async def _grace_over(self, call: Call, p: Participant) -> None:
        p.grace = None
        if call.live and p.dropped and call.participants.get(p.user) is p:
            await self._leave(call, p, "left")

    # --- shutdown --------------------------------------------------------------------------
    async def start(self) -> None:
        if not isinstance(self.directory, LocalCallDirectory):
            self._watch = asyncio.get_running_loop().create_task(self._watch_nodes())
            self.hub.bus.subscribe(PRESENCE_TOPIC, self._on_remote_presence)

    async def _watch_nodes(self, interval_s: float = 2.0) -> None:
        """End the calls of nodes that died (their presence expired): reason ``node_lost``."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                for node in await self.directory.dead_nodes_with_calls():
                    for rec in await self.directory.claim_dead(node):
                        if self.metrics is not None:
                            self.metrics.calls.labels(outcome="node_lost").inc()
                        ev = CallStateEvent(call=rec["call"], state="ended", participants=[],
                                            reason="node_lost", conversation=rec["conversation"])
                        for user in rec.get("users", []):
                            await self.hub.send_to_user(user, ev)
                        log.warning("call %s ended: node %s lost", rec["call"], node)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.debug("node watch failed: %s", e)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        for call in self.calls.all():
            await self._end(call, "shutdown")
        await self.recordings.drain()  # files being stored: not cut off mid-way
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.forwarder.close()

    # --- introspection (tests, metrics) ----------------------------------------------------
    def peers(self) -> list[Peer]:
        return [p.peer for c in self.calls.all() for p in c.participants.values()
                if p.peer is not None]
