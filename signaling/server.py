"""The edge: one aiohttp WebSocket per client, validated frame by frame.

Order of checks for every frame: size → rate limit → JSON (within limits, valid Unicode) →
object → correlation ``id`` → known type → fields (types and lengths) → authenticated →
role (in the hub) → handler. Each failure is a typed ``error`` to this socket only; the
socket stays usable except for an oversized frame (closed 1009) and a bad token (closed
4401). Messages on one socket are handled strictly in order: the next frame is read only
after the previous request has been answered.

Before any frame, the socket is counted against its client address (``max_sockets_per_ip``;
behind a reverse proxy the address comes from the forwarding headers only when the peer is
a trusted proxy, see :mod:`signaling.clientaddr`), and it has ``hello_timeout_s`` to
authenticate; an authenticated socket is counted against its user (``max_sockets_per_user``).
Each refusal is a typed ``error`` and a close code of its own (docs/protocol.md), because
a socket that never says hello, or a thousand of them from one place, would otherwise hold
memory and a file descriptor for ever.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from opentelemetry.trace import SpanKind

from .auth import Claims, TokenAuthority
from .clientaddr import ClientAddress
from .errors import ErrorCode, ProtocolError
from .hub import Hub
from .logctx import bind, bound
from .protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Auth,
    Hello,
    Ping,
    Pong,
    Reauthenticated,
    Resume,
    Resumed,
    Welcome,
    decode_frame,
    dumps,
    parse_json_frame,
    request_id,
)
from .ratelimit import TokenBucket
from .session import Session
from .tracing import span
from .wsdeflate import DeflateResponse

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_HELLO_TIMEOUT = 4408
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_TOO_LARGE = 1009
CLOSE_TRY_AGAIN = 1013


@dataclass
class EdgeConfig:
    rate_per_s: float = 20.0
    burst: int = 40
    heartbeat_s: float = 20.0
    # aiohttp refuses frames above this by itself; ours (64 KiB) is checked below it so the
    # sender gets a typed error first.
    transport_max_bytes: int = 4 * 1024 * 1024
    hello_timeout_s: float = 10.0  # a socket that has not authenticated by then is closed
    max_sockets_per_user: int = 16  # authenticated sockets of one user on this node; 0: no cap
    max_sockets_per_ip: int = 256  # sockets from one client address on this node; 0: no cap
    client_address: ClientAddress = field(default_factory=ClientAddress)


class SocketEndpoint:
    def __init__(self, hub: Hub, tokens: TokenAuthority,
                 ice_servers: Callable[[Claims], list[dict[str, Any]]],
                 ready: Callable[[], Awaitable[bool]] | None = None,
                 config: EdgeConfig | None = None,
                 metrics: Any = None):
        self.hub = hub
        self.tokens = tokens
        self.ice_servers = ice_servers
        self.ready = ready
        self.config = config or EdgeConfig()
        self.metrics = metrics
        self.open_sockets = 0
        self.sockets_by_ip: Counter[str] = Counter()  # client address → open sockets
        self.sockets_by_user: Counter[str] = Counter()  # user → authenticated sockets

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        # permessage-deflate as signaling/wsdeflate.py negotiates it: no context takeover
        # server-side, so a broadcast is compressed once for every socket
        ws = DeflateResponse(max_msg_size=self.config.transport_max_bytes,
                             heartbeat=self.config.heartbeat_s)
        await ws.prepare(request)
        bind(node=self.hub.node_id)  # this handler's task: every line it logs names the node
        self.open_sockets += 1
        addr = self.config.client_address(request.remote, request.headers)
        self.sockets_by_ip[addr] += 1
        user: str | None = None  # counted in sockets_by_user once authenticated
        session: Session | None = None
        expect_resume = False
        bucket = TokenBucket(self.config.rate_per_s, self.config.burst)
        hello_deadline = time.monotonic() + self.config.hello_timeout_s

        async def error(err: ProtocolError, req_id: Any = None) -> None:
            if self.metrics is not None:
                self.metrics.protocol_errors.labels(code=err.code.value).inc()
            if session is not None:
                session.send(err.to_wire(req_id))
            else:
                await ws.send_str(dumps(err.to_wire(req_id)))

        async def refuse(err: ProtocolError, code: int, reason: str) -> None:
            if self.metrics is not None:
                self.metrics.sockets_refused.labels(reason=reason).inc()
            await error(err)
            await ws.close(code=code, message=reason.encode())

        try:
            cap = self.config.max_sockets_per_ip
            if cap and self.sockets_by_ip[addr] > cap:
                await refuse(ProtocolError(
                    ErrorCode.RATE_LIMITED,
                    f"more than {cap} sockets from your address; close some and retry later"),
                    CLOSE_TOO_MANY_SOCKETS, "too many sockets from this address")
                return ws
            while True:
                if session is None:
                    # no hello yet: wait only until the deadline (frames before it don't
                    # extend it)
                    left = hello_deadline - time.monotonic()
                    try:
                        frame = await ws.receive(timeout=max(left, 0.001))
                    except TimeoutError:
                        await refuse(ProtocolError(
                            ErrorCode.UNAUTHENTICATED,
                            f"no hello within {self.config.hello_timeout_s:g} s"),
                            CLOSE_HELLO_TIMEOUT, "hello timeout")
                        break
                else:
                    frame = await ws.receive()
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                data = frame.data
                size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) \
                    else len(data)
                if size > MAX_FRAME_BYTES:
                    await error(ProtocolError(
                        ErrorCode.TOO_LARGE,
                        f"frame is {size} bytes; the limit is {MAX_FRAME_BYTES} bytes"))
                    if session is not None:
                        await session.flush()
                    await ws.close(code=CLOSE_TOO_LARGE, message=b"frame too large")
                    break
                if not bucket.take():
                    await error(ProtocolError(
                        ErrorCode.RATE_LIMITED,
                        f"more than {self.config.rate_per_s:g} messages/s "
                        f"(burst {self.config.burst}); slow down"))
                    continue
                req_id = None
                try:
                    obj = parse_json_frame(data)
                    req_id = request_id(obj)
                    msg = decode_frame(obj)
                except ProtocolError as e:
                    if session is None and e.code == ErrorCode.UNKNOWN_TYPE:
                        e = ProtocolError(ErrorCode.UNAUTHENTICATED,
                                          "send hello {token, protocol: 1} first")
                    await error(e, req_id)
                    continue

                if session is None:
                    if not isinstance(msg, Hello):
                        await error(ProtocolError(ErrorCode.UNAUTHENTICATED,
                                                  "send hello {token, protocol: 1} first"), req_id)
                        continue
                    if msg.protocol != PROTOCOL_VERSION:
                        await error(ProtocolError(
                            ErrorCode.BAD_REQUEST,
                            f"protocol {msg.protocol} is not supported; use {PROTOCOL_VERSION}"),
                            req_id)
                        continue
                    try:
                        claims = self.tokens.verify(msg.token)
                    except ProtocolError as e:
                        await error(e, req_id)
                        await ws.close(code=CLOSE_UNAUTHORIZED, message=e.message.encode()[:120])
                        break
                    cap = self.config.max_sockets_per_user
                    if cap and self.sockets_by_user[claims.user] >= cap:
                        if self.metrics is not None:
                            self.metrics.sockets_refused.labels(reason="too many sockets").inc()
                        await error(ProtocolError(
                            ErrorCode.RATE_LIMITED,
                            f"user {claims.user!r} already has {cap} sockets open on this "
                            f"node; close some and retry later"), req_id)
                        await ws.close(code=CLOSE_TOO_MANY_SOCKETS,
                                       message=b"too many sockets for this user")
                        break
                    if self.ready is not None and not await self.ready():
                        await error(ProtocolError(ErrorCode.UNAVAILABLE,
                                                  "this gateway is not taking new connections "
                                                  "(state store unreachable or draining); retry, "
                                                  "another node may take you"), req_id)
                        await ws.close(code=CLOSE_TRY_AGAIN, message=b"unavailable")
                        break
                    user = claims.user
                    self.sockets_by_user[user] += 1
                    session = self.hub.new_session(claims, ws)
                    bind(session=session.id, user=user)
                    welcome = Welcome(session=session.id, user=claims.user, role=claims.role,
                                      protocol=PROTOCOL_VERSION, ice_servers=self.ice_servers(claims),
                                      name=claims.name, room=claims.room).to_wire()
                    if req_id is not None:
                        welcome["id"] = req_id
                    session.send(welcome)
                    expect_resume = True
                    continue

                if isinstance(msg, Hello):
                    await error(ProtocolError(ErrorCode.BAD_STATE,
                                              "already authenticated on this socket"), req_id)
                    continue
                if isinstance(msg, Resume):
                    if not expect_resume:
                        await error(ProtocolError(ErrorCode.BAD_STATE,
                                                  "resume must be the first message after hello"),
                                    req_id)
                        continue
                    expect_resume = False
                    resumed = await self._resume(session, msg, ws, req_id)
                    if resumed is None:
                        continue  # error sent; the fresh session goes on
                    session = resumed
                    bind(session=session.id)
                    continue
                expect_resume = False
                if not session.live:
                    self.hub.make_live(session)
                    await self.hub.bus.settle()
                if isinstance(msg, Auth):
                    try:
                        out = self._reauth(session, msg)
                    except ProtocolError as e:
                        await error(e, req_id)
                        continue
                    if req_id is not None:
                        out["id"] = req_id
                    session.send(out)
                    continue
                if isinstance(msg, Ping):
                    out = Pong(ts=time.time()).to_wire()
                    if req_id is not None:
                        out["id"] = req_id
                    session.send(out)
                    continue
                # one span per request, a trace of its own; its request id on every line
                with bound(request_id=req_id, conversation=None, call=None), \
                        span(f"ws {msg.TYPE}", kind=SpanKind.SERVER,
                             parent=self.hub.trace_parent(msg),
                             attributes={"livedesk.message": msg.TYPE,
                                         "livedesk.node": self.hub.node_id}):
                    t0 = time.perf_counter()
                    await self.hub.dispatch(session, msg, req_id)
                    log.debug("%s handled in %.1f ms", msg.TYPE,
                              (time.perf_counter() - t0) * 1000)
                if msg.SETTLE:
                    await self.hub.bus.settle()
        except Exception:
            log.exception("socket handler failed")
        finally:
            self.open_sockets -= 1
            _uncount(self.sockets_by_ip, addr)
            if user is not None:
                _uncount(self.sockets_by_user, user)
            if session is not None and session.detach_if(ws):
                self.hub.detached(session)
        return ws

    def _reauth(self, session: Session, msg: Auth) -> dict[str, Any]:
        """``auth {token}``: the socket's identity is renewed with a fresh token of the same
        user, role and room (a token for someone else needs a socket of its own: the
        session's subscriptions and conversations are that identity's). A refused token
        leaves the socket as it was: the page may retry, and a revoked identity is closed by
        the revocation itself, not here."""
        claims = self.tokens.verify(msg.token)
        old = session.claims
        if (claims.user, claims.role, claims.room) != (old.user, old.role, old.room):
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                "auth: the token must be for this socket's user, role and room "
                                "(open another socket for another identity)")
        session.claims = claims
        return Reauthenticated(expires_at=claims.exp).to_wire()

    async def _resume(self, fresh: Session, msg: Resume, ws: web.WebSocketResponse,
                      req_id: Any) -> Session | None:
        old = self.hub.sessions.get(msg.session)
        reason = None
        if old is None and self.hub.mirror is not None:
            try:
                got = await self.hub.restore(msg.session, fresh.user)
            except Exception as e:
                got = None
                log.warning("restore of %s failed: %s", msg.session, e)
            if isinstance(got, str):
                reason = got
            else:
                old = got
        if reason is not None:
            pass
        elif old is None:
            reason = "unknown session (it may have expired)"
        elif old.user != fresh.user:
            reason = "that session belongs to another user"
        elif old is fresh:
            reason = "cannot resume the session this socket just created"
        frames = None
        if reason is None and old is not None:  # (no reason: old was found)
            frames = old.frames_after(msg.last_seq)
            if frames is None:
                reason = (f"last_seq {msg.last_seq} is outside what is retained "
                          f"(seq now {old.seq}); start afresh")
        if reason is not None or old is None:
            err = ProtocolError(ErrorCode.RESUME_FAILED,
                                reason or "unknown session").to_wire(req_id)
            fresh.send(err)
            return None
        await self.hub.retire(fresh)
        # From here on nothing awaits until the replay is queued, so no event produced
        # meanwhile can overtake the frames being replayed.
        frames = old.frames_after(msg.last_seq) or []
        old.attach(ws)
        old.replay(frames)
        out = Resumed(session=old.id, last_seq=msg.last_seq).to_wire()
        if req_id is not None:
            out["id"] = req_id
        old.send(out)
        self.hub.make_live(old)
        self.hub.resumed(old)
        await self.hub.bus.settle()
        return old


def _uncount(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
