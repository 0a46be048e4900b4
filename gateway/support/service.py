"""The support service: conversation handlers, the bot turn, escalation and assignment.

Wires the protocol (``messages.py``) to the state owners (``ConversationStore``, ``Router``,
``RoomRegistry``) and to the automatic answerer (a ``Responder``). It decides *who is told
what*; the stores decide *what is true*. Two delivery paths: chat messages are handed by
this node's replica (:class:`~.events.MessageApplied`, in change-log order, on every node)
straight to this node's sessions; every other event goes through the hub's
``send_to_user``/``publish``, hence the Bus. What it did is published as typed events
(``events.py``) for the other parts to react to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from signaling import ErrorCode, Hub, ProtocolError, Request, Session, logctx
from signaling.events import (
    Events,
    SessionDetached,
    SessionExpired,
    SessionLive,
    SessionResumed,
)
from signaling.inbound import clean_text

from ..attachments import AttachmentRefused, AttachmentService, Caller
from .backend import SupportBackend, too_many_open
from .churn import ChurnGuard
from .conversation import Author, Conversation, StoredMessage, server_text
from .events import (
    AgentAssigned,
    AgentContextWanted,
    ConversationEscalated,
    ConversationLost,
    ConversationOpened,
    ConversationResolved,
    ConversationTruncated,
    MessageApplied,
    MessagePosted,
)
from .limits import SupportLimits
from .messages import (
    AgentState,
    AgentStatus,
    ChatMessage,
    ConversationAssigned,
    ConversationEscalate,
    ConversationGet,
    ConversationList,
    ConversationListReply,
    ConversationOpen,
    ConversationResolve,
    ConversationSnapshot,
    ConversationStateEvent,
    ConversationTransfer,
    MessageSend,
    QueueGet,
    QueuePosition,
    QueueUpdate,
)
from .responder import BotQuery, BotReply, Responder
from .room import RoomRegistry
from .routing import AGENT_STATUSES

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4000
BOT = Author(role="bot", user="bot", name="小助手")
# earlier viewer messages a responder sees (the offline bot reads six, an LLM prompt as
# many): bounded, so a turn costs the same in a conversation's 300th message as in its 3rd
BOT_HISTORY = 20
AGENTS_TOPIC = "agents"


def _earlier_viewer_texts(messages: list[StoredMessage], m: StoredMessage,
                          limit: int) -> list[str] | None:
    """The texts of up to ``limit`` viewer messages before ``m``, oldest first; ``None`` if
    ``m`` is not in ``messages`` (any more). Scans from the end by identity: ``m`` was just
    appended, and ``list.index`` would compare every message field by field (it was the
    burst's largest cost in long conversations)."""
    i = len(messages) - 1
    while i >= 0 and messages[i] is not m:
        i -= 1
    if i < 0:
        return None
    out: list[str] = []
    i -= 1
    while i >= 0 and len(out) < limit:
        x = messages[i]
        if x.author.role == "viewer" and not x.kind:
            out.append(x.text)
        i -= 1
    out.reverse()
    return out


@dataclass
class SupportConfig:
    agent_capacity: int = 5
    bot_timeout_s: float = 0.8  # a viewer gets an answer within 1 s, whatever the responder does
    resolved_retention_s: float = 7 * 86400.0  # forget resolved conversations after this; 0: never
    greeting_zh: str = "您好，我是直播间小助手，商品、尺码、优惠、物流、售后都可以问我；需要人工请点「转人工」。"
    limits: SupportLimits = field(default_factory=SupportLimits)  # what a client may
    # An agent whose last socket on this node dropped (tab closed, laptop lid shut) and did
    # not come back within this many seconds is shown ``offline`` to everyone (the agent list,
    # the dashboard), instead of "available 0/5" until its session expires (``retain_s``,
    # minutes). Assignment never waited for this: it already needs a live socket. The console
    # re-sends its chosen status when it resumes or reconnects. 0 disables.
    agent_offline_after_s: float = 10.0


CHURN_ZH = "您近期转人工的次数较多，请稍后再试；我会继续为您解答。"


def _origin(req: Request) -> str:
    """Who asked for a change: the session and request id, carried through the change log."""
    return req.session.id + "|" + json.dumps(req.id)


SKIP = "!"  # origin marker: the origin session already has this message (e.g. in a snapshot)


def _parse_origin(origin: str | None) -> tuple[str | None, object]:
    if not origin or "|" not in origin:
        return origin or None, SKIP
    sid, _, rid = origin.partition("|")
    return sid, (SKIP if rid == SKIP else json.loads(rid))


class SupportService:
    """``backend`` holds the state (memory or Redis, chosen by the composition root);
    ``events`` is the node's event mechanism, on which the backend's replica publishes
    and this service publishes what it did; ``agent_info(user)`` adds fields to
    ``agent.state`` (the workspace's compensation authority)."""

    def __init__(self, hub: Hub, rooms: RoomRegistry, responder: Responder,
                 backend: SupportBackend, events: Events,
                 config: SupportConfig | None = None, metrics: Any = None,
                 agent_info: Callable[[str], dict] | None = None,
                 attachments: AttachmentService | None = None):
        self.hub = hub
        self.rooms = rooms
        self.responder = responder
        self.config = config or SupportConfig()
        self.metrics = metrics
        self.backend = backend
        self.events = events
        self.limits = self.config.limits
        self.churn = ChurnGuard(backend, self.limits)
        self.store = backend.store
        self.router = backend.router
        self.agent_info = agent_info
        self.attachments = attachments  # message.send and actions resolve their ids here
        self._bot_locks: dict[str, asyncio.Lock] = {}
        self._sent_positions: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()
        events.subscribe(MessageApplied,
                         lambda e: self._deliver_message(e.conversation, e.message, e.origin))
        events.subscribe(ConversationLost, lambda e: self._conversation_lost(e.conversation))
        events.subscribe(ConversationTruncated,
                         lambda e: self._conversation_truncated(e.conversation, e.kept))

        hub.handle(ConversationOpen, self.on_open)
        hub.handle(MessageSend, self.on_message)
        hub.handle(ConversationEscalate, self.on_escalate)
        hub.handle(ConversationResolve, self.on_resolve)
        hub.handle(ConversationTransfer, self.on_transfer)
        hub.handle(ConversationList, self.on_list)
        hub.handle(ConversationGet, self.on_get)
        hub.handle(AgentStatus, self.on_agent_status)
        hub.handle(QueueGet, self.on_queue_get)
        events.subscribe(SessionLive, lambda e: self._on_session_live(e.session))
        events.subscribe(SessionResumed, lambda e: self._on_session_live(e.session))
        events.subscribe(SessionExpired, lambda e: self._on_session_expired(e.session))
        events.subscribe(SessionDetached, lambda e: self._on_session_detached(e.session))

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    def start(self) -> None:
        """Background work of the service (called once the loop runs)."""
        if self.config.resolved_retention_s > 0:
            self._spawn(self.run_retention(self.config.resolved_retention_s))

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()

    # --- retention -------------------------------------------------------------------------
    def prune(self, retention_s: float, now: float | None = None) -> int:
        """Forget conversations resolved more than ``retention_s`` ago on this node (the
        state store expires its copy by itself: see the backends; the records that belong
        to them expire with their TTL)."""
        now = time.time() if now is None else now
        gone = self.store.prune(now - retention_s)
        for conv in gone:
            self._bot_locks.pop(conv.id, None)
            self._sent_positions.pop(conv.id, None)
        return len(gone)

    @property
    def record_ttl_s(self) -> float | None:
        """The TTL for replicated records that belong to a conversation or a viewer's
        recent activity (CSAT, outcomes, conversions, browsing): the retention; ``None``
        (kept) when retention is off."""
        r = self.config.resolved_retention_s
        return r if r > 0 else None

    async def run_retention(self, retention_s: float) -> None:
        interval = max(0.05, min(300.0, retention_s / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                n = self.prune(retention_s)
                if n:
                    log.info("retention: forgot %d conversations resolved over %.0f s ago",
                             n, retention_s)
                n = await self.backend.expire_records()
                if n:
                    log.info("retention: forgot %d records past their TTL", n)
            except Exception:
                log.exception("retention sweep failed")

    # --- helpers ---------------------------------------------------------------------------
    async def conversation_for(self, req: Request, conv_id: str, *,
                               allow_admin: bool = True) -> Conversation:
        conv = self.store.get(conv_id)
        if conv is None or not (conv.is_member(req.user) or req.role == "admin"):
            await self.backend.sync()  # another node may have just changed it
            conv = self.store.get(conv_id)
        if conv is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"unknown conversation {conv_id!r}")
        if conv.is_member(req.user) or (allow_admin and req.role == "admin"):
            logctx.bind(conversation=conv.id)  # this request's log lines name it
            return conv
        raise ProtocolError(ErrorCode.NOT_MEMBER, f"you are not a member of conversation {conv_id!r}")

    async def tell_members(self, conv: Conversation, event, exclude_session: str | None = None) -> None:
        for user in conv.members():
            await self.hub.send_to_user(user, event, exclude_session=exclude_session)

    def _conversation_lost(self, conv: Conversation) -> None:
        """The state store lost ``conv`` (Redis came back without its data) and the backend
        closed it on this node: tell this node's sessions of its members, since no other
        node knows of it to announce it."""
        ev = ConversationStateEvent(conv.id, "resolved", agent=conv.agent_ref(),
                                    reason="state_lost").to_wire()
        for user in conv.members():
            for s in self.hub.user_sessions(user):
                s.send(ev)

    def _conversation_truncated(self, conv: Conversation, kept: int) -> None:
        """The state store lost the messages after ``kept``; the next ones take those
        numbers again, so this node's sessions must not take them for ones already sent."""
        members = set(conv.members())
        for s in list(self.hub.sessions.values()):
            if s.user in members and s.cursors.get(conv.id, 0) > kept:
                s.cursors[conv.id] = kept

    def _deliver_message(self, conv: Conversation, m: StoredMessage, origin: str | None) -> None:
        """Called by the replica, in log order, on every node: hand the message to this
        node's sessions of the conversation's members (the origin socket gets it as its
        copy, in the same place in the order, carrying its request id)."""
        ev = self._chat_event(m).to_wire()
        ev["_cursor"] = [conv.id, m.n]
        origin_sid, origin_id = _parse_origin(origin)
        for user in conv.members():
            for s in self.hub.user_sessions(user):
                if s.id == origin_sid:
                    if origin_id is SKIP:
                        continue
                    s.send(ev if origin_id is None else dict(ev, id=origin_id))  # its reply
                else:
                    s.send(ev)

    async def open_conversation(self, room: str, viewer: str, name: str,
                                origin: str | None = None,
                                max_open: int = 0) -> tuple[Conversation, bool]:
        """The viewer's open conversation in ``room`` (started, with the greeting, if none;
        ``max_open`` > 0: not while the viewer has that many open)."""
        conv, created = await self.backend.open(room, viewer, name, (BOT, self.config.greeting_zh),
                                                origin=origin, max_open=max_open)
        r = self.rooms.get(room)
        if created and r is not None and r.announcements:
            await self.backend.set_fields(conv, pinned=list(r.announcements[-3:]))
        return conv, created

    def _chat_event(self, m: StoredMessage) -> ChatMessage:
        return ChatMessage(conversation=m.conversation, message_id=m.message_id,
                           from_=m.author.to_wire(), text=m.text, client_msg_id=m.client_msg_id,
                           ts=m.ts, kind=m.kind, attachments=m.meta.get("attachments"),
                           **m.text_key_fields())

    async def attachment_refs(self, req: Request, conv: Conversation, ids: list[str],
                              what: str, own_only: bool = True) -> list[dict[str, Any]]:
        """``ids`` checked as attachments of ``conv`` (the attachment service's rule), as
        the ``[{attachment, content_type, width, height}]`` that messages and the audit
        carry; a refusal is the service's typed error."""
        if self.attachments is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE,
                                f"{what}: this gateway keeps no attachments")
        try:
            recs = await self.attachments.resolve(Caller(req.user, req.role), conv.id, ids,
                                                  what, own_only=own_only)
        except AttachmentRefused as e:
            raise ProtocolError(ErrorCode(e.code), e.message) from None
        return [r.ref() for r in recs]

    def history(self, conv: Conversation) -> tuple[list[StoredMessage], int]:
        """The latest ``conversation_history`` messages and how many earlier ones are left
        out. Why: every snapshot and every assignment carried the whole log (17.6 MB after
        300 large messages, pushed to the agent too); what a client receives is bounded."""
        keep = self.limits.conversation_history
        msgs = conv.messages
        if keep > 0 and len(msgs) > keep:
            return msgs[-keep:], len(msgs) - keep
        return msgs, 0

    def snapshot(self, conv: Conversation) -> ConversationSnapshot:
        msgs, omitted = self.history(conv)
        return ConversationSnapshot(
            conversation=conv.id, room=conv.room, state=conv.state,
            messages=[m.to_history() for m in msgs], agent=conv.agent_ref(),
            viewer=conv.viewer_ref(), pinned=list(conv.pinned) or None,
            omitted=omitted or None, read_marks=conv.read_wire() or None)

    def context(self, conv: Conversation) -> dict[str, Any]:
        """What an agent sees on assignment; other parts add to it on
        :class:`~.events.AgentContextWanted` (browsing, orders, earlier conversations)."""
        msgs, omitted = self.history(conv)
        ctx: dict[str, Any] = {
            "messages": [dict(m.to_history(), bot=m.author.role == "bot") for m in msgs],
            "omitted": omitted,
            "viewer": conv.viewer_ref(),
            "room": conv.room,
            "mood": conv.mood,
            "reason": conv.escalation_reason,
            "intents": [m.meta.get("intent") for m in msgs if m.meta.get("intent")],
        }
        self.events.publish(AgentContextWanted(conv, ctx))
        return ctx

    async def post(self, conv: Conversation, author: Author, text: str,
                   kind: str | None = None, meta: dict | None = None) -> StoredMessage:
        """Store a server-authored message (bot, notice, announcement) and fan it out."""
        m, _ = await self.backend.append(conv, author, text, None, kind=kind, meta=meta)
        self.events.publish(MessagePosted(conv, m))
        return m

    # --- viewer: open ----------------------------------------------------------------------
    async def on_open(self, req: Request):
        msg: ConversationOpen = req.msg
        self.rooms.for_claims(req.claims, msg.room)
        # the display name is the token's; what the viewer typed is only ever a nickname
        name = req.claims.display_name
        nickname = (clean_text(msg.name, "name", self.limits.nickname_max_chars).strip()
                    if msg.name else "") or None
        if self.store.open_for(msg.room, req.user) is None:  # a new one: counted, bounded
            n_open = self.store.open_count(req.user)
            if 0 < self.limits.open_conversations_per_viewer <= n_open:
                raise too_many_open(n_open)
            await self.churn.admit_open(req.user)
        conv, created = await self.open_conversation(
            msg.room, req.user, name, origin=req.session.id + "|" + SKIP,
            max_open=self.limits.open_conversations_per_viewer)
        logctx.bind(conversation=conv.id)
        if not created and conv.viewer_name == conv.viewer and name != conv.viewer:
            await self.backend.set_fields(conv, viewer_name=name)  # opened by a notice
        if nickname != conv.viewer_nickname and (created or msg.name is not None):
            await self.backend.set_fields(conv, viewer_nickname=nickname or "")
        if created:
            self.events.publish(ConversationOpened(conv))
        self.hub.watch(req.session, f"room:{msg.room}")
        return self.snapshot(conv)

    # --- messages --------------------------------------------------------------------------
    async def on_message(self, req: Request):
        msg: MessageSend = req.msg
        conv = await self.conversation_for(req, msg.conversation, allow_admin=False)
        if not msg.text.strip() and not msg.attachments:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "message.send: field 'text' is empty")
        if len(msg.text) > MAX_TEXT_CHARS:
            raise ProtocolError(ErrorCode.TOO_LARGE,
                                f"message.send: 'text' is {len(msg.text)} characters; "
                                f"the limit is {MAX_TEXT_CHARS}")
        if not msg.client_msg_id:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "message.send: 'client_msg_id' is empty")
        prev = conv.by_client_id.get(f"{req.user}:{msg.client_msg_id}")
        if prev is not None:  # duplicate: the sender alone gets the original again
            return self._chat_event(prev)
        text = msg.text
        if msg.template:
            if req.role == "viewer":
                raise ProtocolError(ErrorCode.FORBIDDEN, "only agents may send templates")
            from .replies import fill
            room = self.rooms.get(conv.room)
            if room is None:  # the room was dropped from the configuration since it opened
                raise ProtocolError(ErrorCode.NOT_FOUND,
                                    f"room {conv.room!r} is not served here any more")
            text = fill(text, room)
        meta = None
        if msg.attachments:
            refs = await self.attachment_refs(req, conv, msg.attachments, "message.send")
            meta = {"attachments": refs}
        author = Author(role=req.role, user=req.user, name=req.claims.name)
        m, dup = await self.backend.append(conv, author, text, msg.client_msg_id,
                                           meta=meta, origin=_origin(req),
                                           cap=(self.limits.conversation_max_messages,
                                                self.limits.conversation_max_bytes))
        ev = self._chat_event(m)
        if dup:
            return ev
        req.replied = True  # delivered by the replica, in log order, with our id
        if self.metrics:
            self.metrics.messages.labels(role=req.role).inc()
        self.events.publish(MessagePosted(conv, m))
        if req.role in ("agent", "admin") and conv.first_agent_reply_at is None \
                and conv.escalated_at is not None:
            first = time.time()
            await self.backend.set_fields(conv, first_agent_reply_at=first)
            if self.metrics:
                self.metrics.first_response.observe(first - conv.escalated_at)
        if req.role == "viewer" and conv.state == "bot":
            self._spawn(self._bot_turn(conv, m))
        return None

    async def _bot_turn(self, conv: Conversation, m: StoredMessage) -> None:
        """Answer one viewer message. Turns of one conversation run one at a time, in order."""
        lock = self._bot_locks.setdefault(conv.id, asyncio.Lock())
        async with lock:
            if conv.state != "bot":
                return
            room = self.rooms.get(conv.room)
            if room is None:
                return  # the room left the configuration: nothing to answer from
            history = _earlier_viewer_texts(conv.messages, m, BOT_HISTORY)
            if history is None:
                return  # the message is gone (a resync dropped what Redis lost): no answer
            t0 = time.perf_counter()
            query = BotQuery(text=m.text, history=history, knowledge=room.knowledge,
                             user=conv.viewer, context={"conversation": conv.id})
            spent: list[float] = []

            async def timed() -> BotReply:
                # timed from inside the task wait_for makes: the loop's queue before it
                # starts is not the responder's time
                t = time.perf_counter()
                try:
                    return await self.responder.respond(query)
                finally:
                    spent.append(time.perf_counter() - t)

            try:
                reply = await asyncio.wait_for(timed(), self.config.bot_timeout_s)
                t_reply = spent[0]
            except Exception:
                log.exception("responder failed; escalating")
                reply = None
            if reply is None:
                await self.post(conv, BOT, "抱歉，我暂时无法回答，正在为您转接人工客服。", meta={"intent": "other"})
                await self._bot_escalate(conv, "bot_error")
                return
            if reply.mood and reply.mood != conv.mood:
                await self.backend.set_fields(conv, mood=reply.mood)
            await self.post(conv, BOT, reply.text,
                            meta={"intent": reply.intent, "mood": reply.mood,
                                  "escalate": reply.escalate})
            if self.metrics:
                self.metrics.bot_reply.observe(t_reply)
                self.metrics.bot_replies.labels(intent=reply.intent).inc()
                if len(history) == 0:
                    self.metrics.bot_first_response.observe(time.perf_counter() - t0)
            if reply.escalate and conv.state == "bot":
                await self._bot_escalate(conv, f"bot:{reply.intent}")

    # --- escalation and assignment ---------------------------------------------------------
    async def on_escalate(self, req: Request):
        msg: ConversationEscalate = req.msg
        conv = await self.conversation_for(req, msg.conversation, allow_admin=False)
        if conv.state == "resolved":
            raise ProtocolError(ErrorCode.BAD_STATE, "conversation is resolved; open a new one")
        if conv.state == "bot":  # one that would reach an agent: counted, maybe slowed
            delay = await self.churn.admit_escalation(conv.viewer)
            if delay > 0:
                await asyncio.sleep(delay)  # this session's next frame waits too
                if conv.state == "resolved":
                    raise ProtocolError(ErrorCode.BAD_STATE,
                                        "conversation is resolved; open a new one")
        req.reply({"type": "ack"})
        await self.escalate(conv, msg.reason or "viewer_request", source="viewer")

    async def _bot_escalate(self, conv: Conversation, reason: str) -> None:
        """The bot hands ``conv`` to a person, within the viewer's churn allowance: a
        viewer asking for a person in conversation after conversation is slowed the same way
        as one pressing the button, and then answered by the bot that it cannot now."""
        try:
            delay = await self.churn.admit_escalation(conv.viewer)
        except ProtocolError as e:
            if e.code != ErrorCode.RATE_LIMITED:
                raise
            log.info("escalation of %s refused: %s", conv.id, e.message)
            await self.post(conv, BOT, CHURN_ZH, meta={"intent": "other", **server_text("churn.limited")})
            return
        if delay > 0:
            await asyncio.sleep(delay)
        if conv.state == "bot":
            await self.escalate(conv, reason, source="bot")

    async def escalate(self, conv: Conversation, reason: str, source: str) -> None:
        if conv.state in ("queued", "assigned", "resolved"):
            if conv.state == "queued":
                await self._send_position(conv, force=True)
            return
        if not await self.backend.escalate(conv, reason):
            return await self.escalate(conv, reason, source)  # lost a race: state moved on
        if self.metrics:
            self.metrics.escalations.labels(source=source).inc()
        await self.tell_members(conv, ConversationStateEvent(conv.id, "queued", reason=reason))
        await self._send_position(conv, force=True)
        self.events.publish(ConversationEscalated(conv))
        await self.pump()

    async def pump(self) -> None:
        """Assign as many queued conversations as agents can take, then refresh positions."""
        while True:
            got = await self.backend.assign_next()
            if got is None:
                break
            conv, agent = got
            self._sent_positions.pop(conv.id, None)
            await self._assigned(conv)
        await self._refresh_queue()

    async def _assigned(self, conv: Conversation) -> None:
        """Announce an assignment the backend has made."""
        now = time.time()
        if conv.escalated_at is not None and not conv.__dict__.get("_wait_observed"):
            conv.__dict__["_wait_observed"] = True
            self.router.note_wait(now - conv.escalated_at)
            if self.metrics:
                self.metrics.queue_wait.observe(now - conv.escalated_at)
        agent = conv.agent_ref()
        assert agent is not None  # announced only once the backend has attached an agent
        ev = ConversationAssigned(conversation=conv.id, agent=agent,
                                  context=self.context(conv), room=conv.room)
        await self.tell_members(conv, ev)
        await self.tell_members(conv, ConversationStateEvent(conv.id, "assigned",
                                                             agent=conv.agent_ref()))
        self.events.publish(AgentAssigned(conv))

    async def _send_position(self, conv: Conversation, force: bool = False) -> None:
        pos = self.router.position(conv.id)
        if pos is None:
            return
        if not force and self._sent_positions.get(conv.id) == pos:
            return
        self._sent_positions[conv.id] = pos
        await self.hub.send_to_user(conv.viewer, QueuePosition(
            conversation=conv.id, position=pos,
            estimated_wait_s=self.router.estimated_wait_s(pos)))

    async def _refresh_queue(self) -> None:
        for e in list(self.router.queue):
            conv = self.store.get(e.conversation)
            if conv is not None:
                await self._send_position(conv)
        if self.metrics:
            self.metrics.queue_length.set(len(self.router.queue))
            for st in AGENT_STATUSES:
                self.metrics.agents.labels(status=st).set(
                    sum(1 for a in self.router.agents.values() if a.status == st))
        await self.hub.publish(AGENTS_TOPIC, QueueUpdate(
            queue=self.router.snapshot(), agents=[a.to_wire() for a in self.router.agents.values()]))

    # --- agent actions ---------------------------------------------------------------------
    async def on_resolve(self, req: Request):
        msg: ConversationResolve = req.msg
        conv = await self.conversation_for(req, msg.conversation)
        if conv.state == "resolved":
            raise ProtocolError(ErrorCode.BAD_STATE, "conversation is already resolved")
        await self.resolve(conv, outcome="resolved_by_agent", by="agent")
        return None

    async def resolve(self, conv: Conversation, outcome: str, by: str = "system") -> None:
        """End ``conv``; ``by`` (viewer, agent, system) is kept as its ``resolved_by``."""
        if not await self.backend.resolve(conv, by=by):
            return
        if self.metrics:
            self.metrics.conversations.labels(outcome=outcome).inc()
        await self.tell_members(conv, ConversationStateEvent(conv.id, "resolved",
                                                             agent=conv.agent_ref()))
        self.events.publish(ConversationResolved(conv))
        await self.pump()

    async def on_transfer(self, req: Request):
        msg: ConversationTransfer = req.msg
        conv = await self.conversation_for(req, msg.conversation)
        if conv.state != "assigned":
            raise ProtocolError(ErrorCode.BAD_STATE,
                                f"only an assigned conversation can be transferred (it is {conv.state})")
        old = await self.backend.transfer(conv, msg.agent, "transferred")
        req.reply({"type": "ack"})
        if msg.agent:
            await self._assigned(conv)
            if old:
                await self.hub.send_to_user(old, ConversationStateEvent(
                    conv.id, "assigned", agent=conv.agent_ref(), reason="transferred"))
        else:
            await self.tell_members(conv, ConversationStateEvent(conv.id, "queued",
                                                                 reason="transferred"))
            if old:
                await self.hub.send_to_user(old, ConversationStateEvent(
                    conv.id, "queued", reason="transferred"))
            await self._send_position(conv, force=True)
            await self.pump()
        await self._refresh_queue()

    async def requeue(self, conv: Conversation, reason: str) -> None:
        """Put an assigned conversation back at the head of the queue (missed call, agent gone)."""
        if conv.state != "assigned":
            return
        old = await self.backend.transfer(conv, None, reason)
        await self.tell_members(conv, ConversationStateEvent(conv.id, "queued", reason=reason))
        if old:
            await self.hub.send_to_user(old, ConversationStateEvent(conv.id, "queued", reason=reason))
        await self._send_position(conv, force=True)
        await self.pump()

    async def on_agent_status(self, req: Request):
        msg: AgentStatus = req.msg
        a = await self.backend.set_status(req.user, msg.status, req.claims.name)
        req.reply({"type": "ack"})
        info = self.agent_info(req.user) if self.agent_info else {}
        await self.hub.send_to_user(req.user, AgentState(a.user, a.status, a.since, a.load,
                                                         a.capacity, info.get("max_compensation")))
        await self.pump()

    async def on_list(self, req: Request):
        if req.role == "viewer":
            convs = self.store.for_viewer(req.user)
        elif req.role == "admin":
            convs = [c for c in self.store.all() if c.state != "resolved"]
        else:
            convs = self.store.for_agent(req.user)
        return ConversationListReply(conversations=[c.summary() for c in convs])

    async def on_get(self, req: Request):
        msg: ConversationGet = req.msg
        conv = await self.conversation_for(req, msg.conversation)
        snap = self.snapshot(conv).to_wire()
        if req.role in ("agent", "admin"):
            snap["context"] = self.context(conv)
        return snap

    async def on_queue_get(self, req: Request):
        return QueueUpdate(queue=self.router.snapshot(),
                           agents=[a.to_wire() for a in self.router.agents.values()])

    # --- session lifecycle -----------------------------------------------------------------
    def _on_session_live(self, session: Session) -> None:
        if session.attrs.pop("restored_from", None) is not None:
            self._catch_up(session)
        if session.role in ("agent", "admin"):
            self.hub.watch(session, AGENTS_TOPIC)
            self.router.agent(session.user, session.claims.name) if session.role == "agent" else None
            self._spawn(self.pump())

    def _catch_up(self, session: Session) -> None:
        """A session taken over from a dead node: deliver what no node could deliver while
        it had no holder — messages after its per-conversation cursor (from this node's
        replica, synchronously, so nothing live can overtake them) and current states."""
        if session.role == "viewer":
            convs = [c for c in self.store.for_viewer(session.user) if c.state != "resolved"]
        else:
            convs = self.store.for_agent(session.user)
        for conv in convs:
            seen = session.cursors.get(conv.id, 0)
            for m in conv.messages[seen:]:
                ev = self._chat_event(m).to_wire()
                ev["_cursor"] = [conv.id, m.n]
                session.send(ev)
            session.send(ConversationStateEvent(conv.id, conv.state,
                                                agent=conv.agent_ref()).to_wire())

    def _on_session_detached(self, session: Session) -> None:
        """An agent's socket dropped: unless one of its sockets is back within
        ``agent_offline_after_s``, its status becomes ``offline`` (see SupportConfig)."""
        after = self.config.agent_offline_after_s
        if session.role != "agent" or after <= 0:
            return

        async def later() -> None:
            await asyncio.sleep(after)
            await self._offline_if_gone(session.user)
        self._spawn(later())

    async def _offline_if_gone(self, user: str) -> None:
        if self.hub.online(user):
            return
        # with Redis, a tab on another node keeps the agent as it is (presence lists nodes;
        # a detached session there still counts until it expires: the safe side)
        others = [p for p in await self.hub.presence_of(user)
                  if p.get("node") != self.hub.node_id and p.get("role") == "agent"]
        a = self.router.agents.get(user)
        if others or a is None or a.status == "offline":
            return
        a = await self.backend.set_status(user, "offline", a.name)
        log.info("agent %s offline: no socket for %.0f s", user, self.config.agent_offline_after_s)
        await self.hub.send_to_user(user, AgentState(a.user, a.status, a.since, a.load, a.capacity))
        await self._refresh_queue()

    def _on_session_expired(self, session: Session) -> None:
        if session.role == "agent" and not self.hub.user_sessions(session.user):
            a = self.router.agents.get(session.user)
            if a is not None:
                async def offline():
                    await self.backend.set_status(a.user, "offline", a.name)
                    await self._refresh_queue()
                self._spawn(offline())
