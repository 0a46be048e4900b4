"""The hub: sessions on this node, request dispatch, and delivery to users and topics.

Owns the table of sessions held by this node and the handler table. Domain code registers
a handler per message class and talks back through three calls only:

* ``Request.reply(event)`` — the one direct reply (carries the request ``id``);
* ``hub.send_to_user(user, event)`` — every live session of a user, on any node;
* ``hub.publish(topic, event)`` — every session that watches a topic (a room, say).

Both deliveries go through the :class:`~signaling.bus.Bus`, so the same code works on one
node and on many. Sessions subscribe lazily: a node listens to ``user:<id>`` only while it
holds a live session of that user.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from .auth import Claims
from .bus import Bus, Callback
from .errors import ErrorCode, ProtocolError
from .events import (
    Events,
    SessionDetached,
    SessionExpired,
    SessionFenced,
    SessionLive,
    SessionResumed,
)
from .protocol import Ack, Event, Message
from .session import Prepared, Session, Transport
from .wsdeflate import Deflater

if TYPE_CHECKING:  # only the Redis deployment builds them (and imports redis)
    from .directory import RedisPresence, RedisSessionMirror

if TYPE_CHECKING:  # a handler's trace parent (signaling/tracing.py opens the spans)
    from opentelemetry.context import Context

log = logging.getLogger(__name__)

# close code of a socket whose identity was revoked (signed out, account disabled or changed)
CLOSE_REVOKED = 4403
CLOSE_USER_TOPIC = "hub:close-user"

_M = TypeVar("_M", bound=Message)
Reply = Event | dict[str, Any] | None
Handler = Callable[["Request[Any]"], Awaitable[Reply]]


class Forward(Exception):
    """Raised by a handler whose work belongs to another node (e.g. the node hosting a call).

    The hub ships the request to that node over the Bus, runs the same handler there with a
    proxy session, relays every frame it sends back to the real session, and only then reads
    the next frame of the socket, so per-socket ordering holds across nodes.
    """

    def __init__(self, node: str):
        super().__init__(node)
        self.node = node


# a check run before any handler, e.g. "no new calls while draining": an error refuses
Gate = Callable[[Session, Message], ProtocolError | None]


def _wire(event: Event | dict[str, Any]) -> dict[str, Any]:
    return event.to_wire() if isinstance(event, Event) else event


@dataclass
class Request(Generic[_M]):
    """One validated client request on its way through a handler. A handler takes a
    ``Request[ItsMessage]``, so ``req.msg`` is typed as the message it registered for."""

    hub: Hub
    session: Session
    msg: _M
    id: Any = None
    replied: bool = False

    @property
    def claims(self) -> Claims:
        return self.session.claims

    @property
    def user(self) -> str:
        return self.session.user

    @property
    def role(self) -> str:
        return self.session.role

    def reply(self, event: Event | dict[str, Any]) -> None:
        """Send the direct reply now (it carries the request id). Only the first counts."""
        if self.replied:
            return
        self.replied = True
        out = dict(_wire(event))
        if self.id is not None:
            out["id"] = self.id
        self.session.send(out)


@dataclass
class HubConfig:
    retain_frames: int = 1000
    retain_s: float = 600.0
    reap_interval_s: float = 5.0


class Hub:
    """``events`` carries the session lifecycle (``SessionLive``, ``SessionDetached``,
    ``SessionResumed``, ``SessionExpired``) to whoever subscribed; ``gates`` run before
    every handler; ``unavailable_errors`` (beyond ``ConnectionError``/``TimeoutError``)
    are the exceptions meaning "the state store is unreachable", answered ``unavailable``."""

    def __init__(self, bus: Bus, node_id: str | None = None, config: HubConfig | None = None,
                 mirror: RedisSessionMirror | None = None, presence: RedisPresence | None = None,
                 metrics: Any = None, events: Events | None = None, gates: Sequence[Gate] = (),
                 unavailable_errors: tuple[type[BaseException], ...] = (),
                 deflater: Deflater | None = None):
        self.bus = bus
        # compresses for every permessage-deflate socket of this node (one per event loop:
        # a broadcast is compressed once, whatever the number of sockets; signaling.wsdeflate)
        self.deflater = deflater or Deflater()
        self.metrics = metrics  # gateway.metrics.Metrics (frames dropped), optional
        self.mirror = mirror  # RedisSessionMirror: sessions survive this node
        self.presence = presence  # RedisPresence: user → nodes registry
        self.events = events or Events()
        self._rpcs: dict[str, asyncio.Future[bool]] = {}
        self.unavailable_errors: tuple[type[BaseException], ...] = (
            (ConnectionError, TimeoutError) + tuple(unavailable_errors))
        self.gates: tuple[Gate, ...] = tuple(gates)
        self.node_id = node_id or secrets.token_hex(4)
        self.config = config or HubConfig()
        self.sessions: dict[str, Session] = {}
        self._by_user: dict[str, set[str]] = defaultdict(set)
        # topic → its watching session ids, in the order they started watching (a dict as an
        # ordered set): a broadcast reaches sockets in join order, deterministic and fair,
        # and consecutive writes go to neighbouring connections
        self._topic_members: dict[str, dict[str, None]] = defaultdict(dict)
        self._handlers: dict[str, Handler] = {}
        self._trace_parents: dict[str, Callable[[Any], Context | None]] = {}
        self._user_cbs: dict[str, Callback] = {}
        self._topic_cbs: dict[str, Callback] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.events.subscribe(SessionFenced, lambda e: self._fenced(e.session))

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())
        self.bus.subscribe(f"node:{self.node_id}", self._on_node_message)
        self.bus.subscribe(CLOSE_USER_TOPIC, self._on_close_user)

    # --- closing a user's sockets (revocation) --------------------------------------------
    async def close_user_everywhere(self, user: str, reason: str, sid: str | None = None,
                                    code: int = CLOSE_REVOKED) -> None:
        """Close ``user``'s sockets on every node (only those of sign-in session ``sid``
        when given), end their sessions (no ``resume``) and tell each why. Generic: whoever
        decides that a user's identity no longer holds (the gateway's auth plane, on
        ``AccountRevoked``) calls it; signaling knows nothing of accounts. Every node
        listens on one topic, so it costs one bus message however many nodes hold them."""
        await self.bus.publish(CLOSE_USER_TOPIC, {"user": user, "sid": sid, "reason": reason,
                                                  "code": code})

    def _on_close_user(self, payload: dict[str, Any]) -> None:
        user, sid = payload.get("user"), payload.get("sid")
        code = payload.get("code")
        if type(user) is not str or (sid is not None and type(sid) is not str):
            return
        self.close_user(user, str(payload.get("reason") or "revoked"), sid,
                        code if type(code) is int else CLOSE_REVOKED)

    def close_user(self, user: str, reason: str, sid: str | None = None,
                   code: int = CLOSE_REVOKED) -> int:
        """This node's part of :meth:`close_user_everywhere`; how many sessions it ended.

        Every session of the node is looked at, not only live ones (a socket between
        ``hello`` and its first request is not live yet): revocations are rare. Each gets a
        numbered ``revoked {reason}`` frame, then its socket is closed with ``code`` and the
        session ended, so nothing can resume it."""
        n = 0
        for s in list(self.sessions.values()):
            if s.user != user or (sid is not None and s.claims.sid != sid):
                continue
            if s.attached:
                s.send({"type": "revoked", "reason": reason})
            s.detach(close_code=code, reason=reason)
            self.end_session(s)
            n += 1
        if n:
            log.info("closed %d session(s) of %s: %s", n, user, reason)
        return n

    async def tell_all_to_reconnect(self, reason: str, close_code: int = 1012) -> int:
        """Drain: every attached socket gets a numbered ``reconnect`` frame (so it is also in
        the session's replay) and is closed; clients resume on another node."""
        n = 0
        for s in list(self.sessions.values()):
            if s.attached:
                s.send({"type": "reconnect", "reason": reason})
                s.detach(close_code=close_code, reason=reason)
                n += 1
        await asyncio.sleep(0.1)
        return n

    def detach_all(self, reason: str = "server shutting down") -> None:
        """Close every attached socket with 1001 (going away); the sessions stay resumable.
        Called when the web server starts shutting down (aiohttp's ``on_shutdown``), before
        it waits for its handlers: an open socket's handler only returns once its socket
        closes, so without this every shutdown with a connected browser waited out the
        server's shutdown timeout."""
        for s in list(self.sessions.values()):
            if s.attached:
                s.detach(close_code=1001, reason=reason)

    async def close(self) -> None:
        if self._reaper:
            self._reaper.cancel()
        self.detach_all()

    # --- handlers ------------------------------------------------------------------------
    def handle(self, msg_cls: type[_M],
               handler: Callable[[Request[_M]], Awaitable[Reply]],
               trace_parent: Callable[[_M], Context | None] | None = None) -> None:
        """``trace_parent``: for a request that is one step of a longer piece of work (a
        call's setup), the trace it belongs to; the edge opens the request's span there
        instead of starting a trace of its own."""
        if msg_cls.TYPE in self._handlers:
            raise ValueError(f"handler for {msg_cls.TYPE} already registered")
        self._handlers[msg_cls.TYPE] = handler
        if trace_parent is not None:
            self._trace_parents[msg_cls.TYPE] = trace_parent

    def trace_parent(self, msg: Message) -> Context | None:
        """The context the span of request ``msg`` continues (None: a trace of its own)."""
        find = self._trace_parents.get(msg.TYPE)
        return find(msg) if find is not None else None

    async def dispatch(self, session: Session, msg: Message, req_id: Any = None) -> None:
        """Run one request to completion; exactly one reply or error reaches the requester."""
        req = Request(self, session, msg, req_id)
        try:
            if session.role not in msg.ROLES:
                raise ProtocolError(ErrorCode.FORBIDDEN,
                                    f"role {session.role!r} may not send {msg.TYPE!r}")
            for gate in self.gates:
                err = gate(session, msg)
                if err is not None:
                    raise err
            handler = self._handlers.get(msg.TYPE)
            if handler is None:
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"no handler for {msg.TYPE!r}")
            result = await handler(req)
            if not req.replied:
                req.reply(result if result is not None else Ack())
        except Forward as f:
            if f.node == self.node_id or isinstance(session, RemoteSession):
                log.error("forward loop for %s to %s", msg.TYPE, f.node)
                if not req.replied:
                    req.replied = True
                    session.send(ProtocolError(ErrorCode.UNAVAILABLE,
                                               "request could not be routed").to_wire(req_id))
            else:
                await self._forward(session, msg, req_id, f.node)
        except ProtocolError as e:
            if not req.replied:
                req.replied = True
                session.send(e.to_wire(req_id))
        except self.unavailable_errors as e:
            log.warning("%s: state store unavailable (%s)", msg.TYPE, e)
            if not req.replied:
                req.replied = True
                session.send(ProtocolError(ErrorCode.UNAVAILABLE,
                                           f"{msg.TYPE}: state store unavailable; retry shortly")
                             .to_wire(req_id))
        except Exception:
            log.exception("handler for %s failed", msg.TYPE)
            if not req.replied:
                req.replied = True
                session.send(ProtocolError(ErrorCode.INTERNAL,
                                           f"internal error while handling {msg.TYPE!r}")
                             .to_wire(req_id))

    # --- forwarding between nodes -------------------------------------------------------------
    async def _forward(self, session: Session, msg: Message, req_id: Any, node: str,
                       timeout: float = 10.0) -> None:
        rpc = secrets.token_hex(8)
        fut = asyncio.get_running_loop().create_future()
        self._rpcs[rpc] = fut
        c = session.claims
        body = {"type": msg.TYPE, **{k: v for k, v in dataclasses.asdict(msg).items()}}
        try:
            await self.bus.publish(f"node:{node}", {
                "k": "rpc", "rpc": rpc, "from": self.node_id, "session": session.id,
                "claims": {"user": c.user, "role": c.role, "room": c.room, "name": c.name},
                "msg": body, "id": req_id})
            await asyncio.wait_for(fut, timeout)
        except (TimeoutError, Exception) as e:
            if not isinstance(e, asyncio.TimeoutError):
                log.warning("forward to %s failed: %s", node, e)
            session.send(ProtocolError(ErrorCode.UNAVAILABLE,
                                       f"node {node} did not answer; retry").to_wire(req_id))
        finally:
            self._rpcs.pop(rpc, None)

    def _on_node_message(self, payload: dict[str, Any]) -> None:
        k = payload.get("k")
        if k == "rpc":
            asyncio.get_running_loop().create_task(self._serve_rpc(payload))
        elif k == "frame":
            s = self.sessions.get(payload["session"])
            if s is not None:
                s.send(payload["frame"])
        elif k == "done":
            s = self.sessions.get(payload.get("session", ""))
            if s is not None:
                for frame in payload.get("frames", ()):
                    s.send(frame)
            fut = self._rpcs.get(payload["rpc"])
            if fut is not None and not fut.done():
                fut.set_result(True)
        elif k == "takeover":
            s = self.sessions.get(payload["session"])
            if s is not None and payload.get("node") != self.node_id:
                self._fenced(s)

    async def _serve_rpc(self, p: dict[str, Any]) -> None:
        from .protocol import decode_frame

        c = p["claims"]
        proxy = RemoteSession(self, p["session"], p["from"],
                              Claims(user=c["user"], role=c["role"], room=c.get("room"),
                                     name=c.get("name")))
        try:
            msg = decode_frame(p["msg"])
            # the stand-in has what a handler reads of a session (id, user, role, claims,
            # attrs, send); dispatch tells the two apart where it matters
            await self.dispatch(cast(Session, proxy), msg, p.get("id"))
        except ProtocolError as e:
            proxy.send(e.to_wire(p.get("id")))
        finally:
            await self.bus.publish(f"node:{p['from']}", {"k": "done", "rpc": p["rpc"],
                                                         "session": p["session"],
                                                         "frames": proxy.frames})

    # --- sessions ------------------------------------------------------------------------
    def new_session(self, claims: Claims, transport: Transport) -> Session:
        s = Session(id="s_" + secrets.token_urlsafe(12), claims=claims,
                    retain_frames=self.config.retain_frames, retain_s=self.config.retain_s,
                    mirror=self.mirror, on_drop=self._frame_dropped,
                    deflater=self.deflater)
        self.sessions[s.id] = s
        s.attach(transport)
        return s

    def _frame_dropped(self) -> None:
        """A session dropped a frame it could not encode (``livedesk_frames_dropped_total``)."""
        if self.metrics is not None:
            self.metrics.frames_dropped.inc()

    async def restore(self, session_id: str, user: str) -> Session | None | str:
        """Resume of a session this node does not hold: take it over from the mirror.

        The claim fences the previous holder (its mirror writes are refused from now on) and
        a ``takeover`` tells it to close its socket if it is still alive.
        """
        if self.mirror is None:
            return None
        rec = await self.mirror.load(session_id)
        if rec is None:
            return None
        if rec.claims.user != user:
            return "that session belongs to another user"
        # claim first: from here the old holder's mirror writes are refused, so the frames
        # read next are all there will ever be from it
        await self.mirror.claim(session_id)
        frames = await self.mirror.frames_after(session_id, 0) or []
        rec = await self.mirror.load(session_id) or rec
        if rec.node and rec.node != self.node_id:
            await self.bus.publish(f"node:{rec.node}", {"k": "takeover", "session": session_id,
                                                         "node": self.node_id})
        s = Session(id=session_id, claims=rec.claims, retain_frames=self.config.retain_frames,
                    retain_s=self.config.retain_s, mirror=self.mirror,
                    on_drop=self._frame_dropped, deflater=self.deflater)
        s.seq = max([rec.seq] + [f.seq for f in frames])
        s.cursors = dict(rec.cursors)
        for f in frames:
            s.retain(f)
        s.attrs["restored_from"] = rec.node
        s.detached_at = time.monotonic()  # reaped like any detached session if never resumed
        self.mirror._mirrored[session_id] = s.seq
        self.mirror._created.add(session_id)
        self.sessions[s.id] = s
        return s

    def _fenced(self, session: Session) -> None:
        """Another node took this session over: close our socket, forget it quietly."""
        session.detach(close_code=4000, reason="session taken over on another node")
        self._drop(session)
        if self.mirror is not None:
            self.mirror.forget(session.id)

    def make_live(self, session: Session) -> None:
        """From now on the session receives events (first request after ``hello``)."""
        if session.live:
            return
        session.live = True
        user = session.user
        first = not self._by_user[user]
        self._by_user[user].add(session.id)
        if self.presence is not None:
            c = session.claims
            self.presence.set_local(user, {"role": c.role, "room": c.room, "name": c.name})
        if first:
            cb = lambda payload, u=user: self._deliver_user(u, payload)  # noqa: E731
            self._user_cbs[user] = cb
            self.bus.subscribe(f"user:{user}", cb)
        self.events.publish(SessionLive(session))

    async def retire(self, new: Session) -> None:
        """``resume``: the socket of ``new`` is about to continue an older session, so
        ``new`` is discarded unseen. Its writer is drained first so its ``welcome`` reaches
        the socket before anything the resumed session replays; the socket stays open.
        """
        writer = new._writer  # only there while frames are waiting to be written
        new._transport = new._out = new._writer = None
        if writer is not None:
            try:
                await asyncio.wait_for(writer, 2.0)
            except Exception:
                pass
        self._drop(new)
        if self.mirror is not None:
            self.mirror.forget(new.id)
            await self.mirror.delete(new.id)

    def detached(self, session: Session) -> None:
        """Socket gone. A live session stays (retaining frames) until it expires."""
        if session.attached:
            return
        if not session.live:
            self._drop(session)
            return
        self.events.publish(SessionDetached(session))

    def resumed(self, session: Session) -> None:
        self.events.publish(SessionResumed(session))

    def end_session(self, session: Session) -> None:
        """Explicit end (logout, or expiry): forget the session everywhere."""
        session.detach()
        was_live = session.live
        self._drop(session)
        if self.mirror is not None:
            self.mirror.forget(session.id)
            asyncio.get_running_loop().create_task(self.mirror.delete(session.id))
        if was_live:
            self.events.publish(SessionExpired(session))

    def _drop(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        ids = self._by_user.get(session.user)
        if ids is not None:
            ids.discard(session.id)
            if not ids:
                del self._by_user[session.user]
                if self.presence is not None:
                    self.presence.set_local(session.user, None)
                cb = self._user_cbs.pop(session.user, None)
                if cb:
                    self.bus.unsubscribe(f"user:{session.user}", cb)
        for topic in list(session.attrs.get("topics", ())):
            self.unwatch(session, topic)

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval_s)
            self.reap()

    def reap(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for s in list(self.sessions.values()):
            if s.detached_at is not None and now - s.detached_at > self.config.retain_s:
                self.end_session(s)

    def user_sessions(self, user: str) -> list[Session]:
        """Live sessions of ``user`` held by this node."""
        return [self.sessions[i] for i in self._by_user.get(user, ()) if i in self.sessions]

    def online(self, user: str) -> bool:
        return any(s.attached for s in self.user_sessions(user))

    async def presence_of(self, user: str) -> list[dict[str, Any]]:
        """Where ``user`` is connected: ``[{role, room, name, node}]`` across all nodes."""
        if self.presence is not None:
            try:
                return await self.presence.users_online(user)
            except Exception:
                pass
        return [{"role": s.role, "room": s.claims.room, "name": s.claims.name,
                 "node": self.node_id} for s in self.user_sessions(user) if s.attached]

    # --- delivery ------------------------------------------------------------------------
    async def send_to_user(self, user: str, event: Event | dict[str, Any],
                           exclude_session: str | None = None) -> None:
        payload: dict[str, Any] = {"e": _wire(event)}
        if exclude_session:
            payload["x"] = exclude_session
        await self.bus.publish(f"user:{user}", payload)

    def _deliver_user(self, user: str, payload: dict[str, Any]) -> None:
        x = payload.get("x")
        targets = [s for s in self.user_sessions(user) if s.id != x]
        if len(targets) > 1:
            frame = Prepared(payload["e"])  # serialized once for all of them
            for s in targets:
                s.send(frame)
        elif targets:
            targets[0].send(payload["e"])

    def watch(self, session: Session, topic: str) -> None:
        """Let a session receive everything published on ``topic`` (e.g. ``room:<id>``)."""
        members = self._topic_members[topic]
        if session.id in members:
            return
        first = not members
        members[session.id] = None
        session.attrs.setdefault("topics", set()).add(topic)
        if first:
            cb = lambda payload, t=topic: self._deliver_topic(t, payload)  # noqa: E731
            self._topic_cbs[topic] = cb
            self.bus.subscribe(topic, cb)

    def unwatch(self, session: Session, topic: str) -> None:
        members = self._topic_members.get(topic)
        session.attrs.get("topics", set()).discard(topic)
        if not members:
            return
        members.pop(session.id, None)
        if not members:
            del self._topic_members[topic]
            cb = self._topic_cbs.pop(topic, None)
            if cb:
                self.bus.unsubscribe(topic, cb)

    async def publish(self, topic: str, event: Event | dict[str, Any]) -> None:
        await self.bus.publish(topic, {"e": _wire(event)})

    def publish_local(self, topic: str, event: Event | dict[str, Any]) -> None:
        """To this node's watchers of ``topic`` only: for figures every node computes alike
        from replicated state (each node pushes to its own; through the bus every watcher
        would get one copy per node)."""
        self._deliver_topic(topic, {"e": _wire(event)})

    def _deliver_topic(self, topic: str, payload: dict[str, Any]) -> None:
        members = self._topic_members.get(topic)
        if not members:
            return
        frame = Prepared(payload["e"])  # serialized once; each session splices its seq
        sessions = self.sessions
        for sid in list(members):
            s = sessions.get(sid)
            if s is not None:
                s.send(frame)


class RemoteSession:
    """Stands in for a session held by another node while a forwarded request runs here.

    Frames it is asked to send go back to the holding node, which numbers and delivers them.
    """

    live = True
    attached = True

    def __init__(self, hub: Hub, session_id: str, node: str, claims: Claims):
        self.hub = hub
        self.id = session_id
        self.node = node
        self.claims = claims
        self.attrs: dict[str, Any] = {}
        self.frames: list[dict[str, Any]] = []  # shipped back in order with the completion

    @property
    def user(self) -> str:
        return self.claims.user

    @property
    def role(self) -> str:
        return self.claims.role

    def send(self, event: dict[str, Any]) -> int:
        self.frames.append(event)
        return 0
