"""The composition root: builds one node from one :class:`~gateway.config.Config`.

Everything a node runs is built here, once, in dependency order, and every collaborator
is passed into the constructor of whatever needs it: no part reaches into another to set
a callback or swap a collaborator after construction. Parts hear of each other through the
node's one :class:`~signaling.events.Events` (typed events, ``subscribe``/``publish``).

Where shared state lives is chosen once: :func:`backends_for` returns
:class:`MemoryBackends` (one process, nothing shared) or :class:`RedisBackends` (many
nodes), and every state-holding collaborator (bus, session mirror, presence, support
backend, order ledger, room sync, call directory) comes from that one object. No other
module asks whether Redis is configured.

What needs starting and closing is listed in :attr:`Gateway.resources`, in dependency
order; ``app.py`` gives each its own aiohttp cleanup context, so a start that fails closes
exactly the resources that had started, in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signaling import Hub, MemoryBus, ProtocolError, TokenAuthority
from signaling.bus import Bus
from signaling.clientaddr import ClientAddress, parse_networks
from signaling.errors import ErrorCode
from signaling.events import Events
from signaling.hub import HubConfig
from signaling.protocol import Message
from signaling.server import EdgeConfig, SocketEndpoint
from signaling.session import Session

from .attachments import (
    AttachmentLimits,
    AttachmentService,
    ConversationAccess,
    DatabaseAttachmentStorage,
    LocalAttachmentStorage,
)
from .auth.events import AccountRevoked
from .auth.plane import AuthPlane, build_auth
from .config import Config
from .durable import Durable, ViewerEraser, attach_store
from .ice import IceProvider
from .media.messages import CallInvite, CallRequest
from .metrics import Metrics
from .restore import restore_node
from .support.actions import Authority
from .support.aftersale import AfterSaleResponder
from .support.anomaly import AnomalyDetector, AnomalyRule, AnomalyService
from .support.backend import MemoryBackend, SupportBackend
from .support.call_port import SupportCallPort
from .support.chat_signals import ChatSignals
from .support.commerce import ViewerOrders, make_adapter
from .support.conversation import ConversationStore
from .support.knowledge import Knowledge, demo_room_path
from .support.limits import SupportLimits
from .support.radar import Radar, RadarService
from .support.replies import load_team_replies
from .support.responder import ObservedResponder, Responder
from .support.room import MemoryOrderLedger, OrderLedger, RoomRegistry
from .support.room_service import RoomService
from .support.routing import Router
from .support.service import SupportConfig, SupportService
from .support.surge import NOTICE_ZH, Surge, SurgeRule, SurgeService
from .support.workspace import Workspace
from .tracing import configure as configure_tracing
from .webhooks import WebhookConfig, WebhookEvents, Webhooks

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from signaling.directory import RedisPresence, RedisSessionMirror

    from .archiver import Archiver
    from .media.directory import CallDirectory
    from .media.service import MediaService
    from .support.redis_room import RoomSync

log = logging.getLogger(__name__)


# --- where state lives: chosen once ----------------------------------------------------------

class MemoryBackends:
    """One process: an in-memory bus and backend, local directories, nothing to share."""

    unavailable_errors: tuple[type[BaseException], ...] = ()
    store_feed = True  # the node's store records what the node applies (it is the only one)

    def __init__(self, config: Config) -> None:
        self.config = config

    def bus(self) -> Bus:
        return MemoryBus()

    def session_mirror(self, events: Events) -> RedisSessionMirror | None:
        return None  # sessions live and die with this process

    def presence(self, info: Callable[[], dict]) -> RedisPresence | None:
        return None  # the hub's session table is the whole truth

    durable_steps = True  # with a store, each step waits for its commit (docs/storage.md)

    def support_backend(self, hub: Hub, metrics: Metrics, events: Events,
                        durable: Durable | None = None) -> SupportBackend:
        cap = self.config.agent_capacity
        return MemoryBackend(ConversationStore(), Router(cap, reachable=hub.online),
                             default_capacity=cap,
                             capacities=dict(self.config.agent_capacities or {}),
                             events=events,
                             durability=durable.feed if durable is not None else None)

    def order_ledger(self, durable: Durable | None = None) -> OrderLedger:
        return MemoryOrderLedger(retention_s=self.config.order_retention_s,
                                 journal=durable.feed if durable is not None else None)

    def room_sync(self, ledger: OrderLedger, rooms: RoomRegistry, bus: Bus) -> RoomSync | None:
        return None  # one node: nobody else changes the rooms

    def call_directory(self, presence: RedisPresence | None) -> CallDirectory:
        from .media.directory import LocalCallDirectory

        return LocalCallDirectory()

    def archiver(self, durable: Durable | None, metrics: Metrics,
                 rooms: RoomRegistry) -> Archiver | None:
        return None  # the store feed writes each change as the node applies it

    def repopulation(self, backend: SupportBackend, ledger: OrderLedger,
                     durable: Durable | None, rooms: RoomRegistry, metrics: Metrics) -> None:
        return None  # one node restores from its store before it serves (restore_node)

    def order_eraser(self, ledger: OrderLedger, rooms: RoomRegistry
                     ) -> Callable[[str], Awaitable[int]] | None:
        return None  # the memory ledger's order ids end with the process


class RedisBackends:
    """Many nodes: every shared piece of state in Redis (``config.redis_url``), one pool."""

    def __init__(self, config: Config) -> None:
        import redis.asyncio as aioredis
        import redis.exceptions as rexc

        from signaling.redis_bus import make_pool

        assert config.redis_url
        self.config = config
        self.url: str = config.redis_url
        self.redis: aioredis.Redis = aioredis.Redis(connection_pool=make_pool(self.url))
        # a request that meets one of these answers ``unavailable`` (not ``internal``)
        self.unavailable_errors: tuple[type[BaseException], ...] = (
            rexc.ConnectionError, rexc.TimeoutError, rexc.OutOfMemoryError)
        # with a database, the change log is archived by one node (the lease holder), not
        # written by every node from what it applies: docs/storage.md
        self.archived = bool(config.database_url)
        self.store_feed = not self.archived

    def bus(self) -> Bus:
        from signaling.redis_bus import RedisBus

        return RedisBus(self.url, node_id=self.config.node_id, redis=self.redis)

    def session_mirror(self, events: Events) -> RedisSessionMirror | None:
        from signaling.directory import RedisSessionMirror

        return RedisSessionMirror(self.redis, self.config.node_id,
                                  ttl_s=int(self.config.retain_s) + 60, events=events)

    def presence(self, info: Callable[[], dict]) -> RedisPresence | None:
        from signaling.directory import RedisPresence

        return RedisPresence(self.redis, self.config.node_id, info=info)

    # each node records what it applies, as it applies it (one archiver is the next step)
    durable_steps = False

    def support_backend(self, hub: Hub, metrics: Metrics, events: Events,
                        durable: Durable | None = None) -> SupportBackend:
        from .support.redis_backend import RedisBackend

        cfg = self.config
        return RedisBackend(
            self.redis, ConversationStore(), Router(cfg.agent_capacity, reachable=hub.online),
            default_capacity=cfg.agent_capacity, capacities=dict(cfg.agent_capacities or {}),
            # the agents whose heartbeat this node writes: those with a socket here
            local_agents=lambda: {s.user for s in hub.sessions.values()
                                  if s.role == "agent" and s.attached},
            url=self.url, metrics=metrics, retention_s=cfg.resolved_retention_s, events=events,
            archived=self.archived and durable is not None)

    def order_ledger(self, durable: Durable | None = None) -> OrderLedger:
        from .support.redis_room import RedisRoomStore

        return RedisRoomStore(self.redis, order_retention_s=self.config.order_retention_s,
                              change_log=self.archived)

    def room_sync(self, ledger: OrderLedger, rooms: RoomRegistry, bus: Bus) -> RoomSync | None:
        from .support.redis_room import RedisRoomStore, RoomSync

        assert isinstance(ledger, RedisRoomStore)
        return RoomSync(ledger, rooms, bus, self.config.node_id)

    def call_directory(self, presence: RedisPresence | None) -> CallDirectory:
        from .media.directory import RedisCallDirectory

        return RedisCallDirectory(self.redis, presence)

    def archiver(self, durable: Durable | None, metrics: Metrics,
                 rooms: RoomRegistry) -> Archiver | None:
        """This node's archiver candidate (one of them leads), with a store and a database."""
        if durable is None or not self.archived:
            return None
        from .archiver import SUPPORT_STREAM, Archiver, ArchiverConfig, room_stream

        cfg = self.config
        return Archiver(self.redis, durable.store,
                        lambda: [SUPPORT_STREAM, *(room_stream(r) for r in rooms.ids())],
                        cfg.node_id,
                        ArchiverConfig(lease_ttl_s=cfg.archiver_lease_ttl_s,
                                       keep_s=cfg.archiver_keep_s), metrics=metrics)

    def repopulation(self, backend: SupportBackend, ledger: OrderLedger,
                     durable: Durable | None, rooms: RoomRegistry, metrics: Metrics) -> None:
        """With the archive (a database): a Redis that restarted empty is repopulated from
        it before the nodes read it again (docs/operations.md#redis-restarted-empty)."""
        if durable is None or not self.archived:
            return
        from .restore import RedisRepopulation
        from .support.redis_backend import RedisBackend
        from .support.redis_room import RedisRoomStore

        assert isinstance(backend, RedisBackend) and isinstance(ledger, RedisRoomStore)
        backend.repopulate = RedisRepopulation(durable.store, rooms, ledger,
                                               self.config.order_retention_s, metrics)

    def order_eraser(self, ledger: OrderLedger, rooms: RoomRegistry
                     ) -> Callable[[str], Awaitable[int]] | None:
        """Erasure: the viewer's order ids leave the rooms' Redis order records too."""
        from .support.redis_room import RedisRoomStore

        assert isinstance(ledger, RedisRoomStore)
        return lambda viewer: ledger.erase_viewer(rooms.ids(), viewer)


Backends = MemoryBackends | RedisBackends


def backends_for(config: Config) -> Backends:
    """The one place that decides memory or Redis."""
    return RedisBackends(config) if config.redis_url else MemoryBackends(config)


# --- what the node runs ---------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    """Something with a start and a close; one aiohttp cleanup context each."""

    name: str
    start: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


@dataclass
class NodeState:
    """This node's own run state, read by the readiness probe, the call gate and presence."""

    draining: bool = False


@dataclass
class Gateway:
    """Everything one node runs; handy for tests that want to reach inside."""

    config: Config
    events: Events
    bus: Bus
    hub: Hub
    tokens: TokenAuthority
    rooms: RoomRegistry
    support: SupportService
    rooms_service: RoomService
    workspace: Workspace
    media: MediaService
    metrics: Metrics
    ice: IceProvider
    endpoint: SocketEndpoint
    node: NodeState
    presence: RedisPresence | None
    auth: AuthPlane
    radar: RadarService  # question radar, pins, room.radar (docs/protocol.md)
    anomaly: AnomalyService  # anomaly flags (docs/webhooks.md: the rule)
    surge: SurgeService  # surge mode
    webhooks: Webhooks  # signed webhooks out and their delivery log (docs/webhooks.md)
    durable: Durable | None = None  # the durable store, when configured (docs/storage.md)
    eraser: ViewerEraser | None = None  # erases a viewer everywhere (with a store)
    attachments: AttachmentService | None = None  # photos, stills, recordings (with a store)
    archiver: Archiver | None = None  # with Redis and PostgreSQL: this node's candidate
    resources: list[Resource] = field(default_factory=list)

    @property
    def draining(self) -> bool:
        return self.node.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self.node.draining = value

    async def drain(self) -> None:
        """SIGTERM: become unready, refuse new calls, give active calls up to ``drain_s``,
        then tell every socket to reconnect elsewhere (resume keeps their sessions)."""
        self.node.draining = True
        if self.presence is not None:
            await self.presence.beat()  # other nodes stop picking us for new calls at once
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.drain_s
        while self.media.calls.all() and loop.time() < deadline:
            await asyncio.sleep(0.2)
        n = await self.hub.tell_all_to_reconnect("draining")
        log.info("drained: %d sockets told to reconnect", n)


def default_responder(config: Config) -> Responder:
    from .support.bot import OfflineBot

    bot = OfflineBot()
    if config.llm_url:
        from .support.bot.llm import LLMResponder

        return LLMResponder(config.llm_url, config.llm_model, api_key=config.llm_api_key,
                            timeout=config.llm_timeout_s, fallback=bot)
    return bot


def load_rooms(config: Config) -> RoomRegistry:
    rooms = RoomRegistry()
    paths = config.rooms or [demo_room_path()]
    limits = SupportLimits.from_config(config)
    for p in paths:
        rooms.add(Knowledge.load(p, limits))
    return rooms


def no_new_calls_while(node: NodeState) -> Callable[[Session, Message], ProtocolError | None]:
    """The hub gate that refuses to start calls on a draining node."""

    def gate(session: Session, msg: Message) -> ProtocolError | None:
        if node.draining and isinstance(msg, CallRequest | CallInvite):
            return ProtocolError(ErrorCode.UNAVAILABLE,
                                 "this node is shutting down; reconnect and try again")
        return None

    return gate


class AttachmentAccess:
    """The attachment service's :class:`~gateway.attachments.AccessPort`: who a
    conversation's members are, from the support plane's live conversations (else the
    durable store's row), the store's ``handled`` table (every agent ever assigned) and the
    media plane's live call on this node. The planes are read through the callables the
    composition root passes, bound once the planes exist."""

    def __init__(self, conversation: Callable[[str], Any], sync: Callable[[], Awaitable[Any]],
                 call_participants: Callable[[str], list[str]], durable: Durable | None):
        self.conversation = conversation
        self.sync = sync
        self.call_participants = call_participants
        self.durable = durable

    async def access(self, conversation: str) -> ConversationAccess | None:
        conv = self.conversation(conversation)
        if conv is None:
            await self.sync()  # another node may have just opened it
            conv = self.conversation(conversation)
        viewer, agent = (conv.viewer, conv.agent) if conv is not None else (None, None)
        handled: tuple[str, ...] = ()
        if self.durable is not None:
            db = self.durable.store.db
            if conv is None:
                rows = await db.fetch("SELECT viewer, agent FROM conversations WHERE id = ?",
                                      (conversation,))
                if rows:
                    viewer, agent = rows[0]
            handled = tuple(r[0] for r in await db.fetch(
                "SELECT agent FROM handled WHERE conversation = ?", (conversation,)))
        if viewer is None:
            return None
        return ConversationAccess(conversation, viewer, agent, handled,
                                  tuple(self.call_participants(conversation)))


def build_attachments(config: Config, durable: Durable | None,
                      access: AttachmentAccess) -> AttachmentService | None:
    """Attachments need a store (its retention and erasure are theirs): none without one.
    ``attachment_storage``: ``database`` keeps them in the store (what several nodes share),
    ``local`` under ``<data_dir>/attachments``; ``auto`` picks the database with PostgreSQL."""
    if durable is None:
        return None
    mode = config.attachment_storage
    if mode == "auto":
        mode = "database" if config.database_url or not config.data_dir else "local"
    storage = (DatabaseAttachmentStorage(durable.store.db) if mode == "database"
               else LocalAttachmentStorage((config.data_dir or Path(".")) / "attachments"))
    store = durable.store

    async def exists(conversation: str) -> bool:
        return await store.conversation(conversation) is not None

    return AttachmentService(storage, access, AttachmentLimits.from_config(config),
                             exists=exists)


def build_gateway(config: Config, responder: Responder | None = None,
                  bus: Bus | None = None) -> Gateway:
    """Build one node. ``responder`` replaces the default bot (tests); ``bus`` replaces the
    backends' bus (tests)."""
    config.validate()
    # spans: an OTLP exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set (gateway/tracing.py)
    tracing = configure_tracing(os.environ, config.node_id)
    backends = backends_for(config)
    metrics = Metrics()
    events = Events()
    node = NodeState()
    bus = bus or backends.bus()

    def node_info() -> dict[str, Any]:
        # read at each presence heartbeat, which starts after every name below is bound
        return {"url": config.public_url, "media_address": config.media_address,
                "sessions": len(hub.sessions), "calls": len(media.calls.all()),
                "draining": node.draining}

    presence = backends.presence(node_info)
    hub = Hub(bus, node_id=config.node_id,
              config=HubConfig(retain_frames=config.retain_frames, retain_s=config.retain_s),
              mirror=backends.session_mirror(events), presence=presence, metrics=metrics,
              events=events, gates=[no_new_calls_while(node)],
              unavailable_errors=backends.unavailable_errors)
    # the store first (the auth plane reads accounts, keys and shops from it; a single node's
    # backend and ledger commit every step to it)
    durable = attach_store(config, events, metrics,
                           follow_events=backends.store_feed and not backends.durable_steps)
    auth = build_auth(config, events, durable.store.db if durable else None)
    # verifies the operator's secret, the gateway's keys and the shops' secrets; the
    # issuer rules (gateway/auth/issuers.py) decide what each may claim
    tokens = TokenAuthority(config.secret, keys=auth.state, policy=auth.rules)

    # revocation: a signed-out session, a disabled account or a changed role closes the
    # user's live sockets on every node (the hub's generic operation, over the bus)
    def close_revoked(e: AccountRevoked) -> Coroutine[Any, Any, None]:
        return hub.close_user_everywhere(e.user, e.reason, sid=e.session)

    events.subscribe(AccountRevoked, close_revoked)
    rooms = load_rooms(config)

    # the workspace's shop side, built first: the bot's after-sale answers read the viewer's
    # orders, and ``agent.state`` carries the agent's compensation authority
    adapter = make_adapter(config.commerce_url, config.commerce_token, config.commerce_timeout_s)
    orders = ViewerOrders(adapter)
    authority = Authority(config.max_compensation_default, config.compensation_limits)
    bot = responder or default_responder(config)

    # the question radar first: the responder wrapper shares the bot's decision with it
    # (QuestionClassified) and asks it for pinned answers
    radar = Radar(rooms)
    anomaly = AnomalyService(
        AnomalyDetector(AnomalyRule(
            window_s=config.anomaly_window_s, history_s=config.anomaly_history_s,
            min_count=config.anomaly_min_count, ratio=config.anomaly_ratio,
            p_raise=config.anomaly_p_raise, p_clear=config.anomaly_p_clear,
            floor_ratio=config.anomaly_floor_ratio,
            floor_per_hour=config.anomaly_floor_per_hour)),
        events, metrics, tick_s=config.radar_tick_s)

    backend = backends.support_backend(hub, metrics, events, durable)

    def call_participants(conversation: str) -> list[str]:
        call = media.calls.for_conversation(conversation)  # bound below, read per request
        return list(call.participants) if call is not None else []

    attachments = build_attachments(config, durable, AttachmentAccess(
        backend.store.get, backend.sync, call_participants, durable))
    support = SupportService(
        hub, rooms, ObservedResponder(AfterSaleResponder(bot, orders), radar, events),
        backend, events,
        SupportConfig(agent_capacity=config.agent_capacity, bot_timeout_s=config.bot_timeout_s,
                      resolved_retention_s=config.resolved_retention_s,
                      limits=SupportLimits.from_config(config)),
        metrics=metrics,
        agent_info=lambda user: {"max_compensation": authority.limit_for(user)},
        attachments=attachments)
    # typing indicators and read marks, relayed to the conversation's other members; the
    # latest read mark of each member kept in the conversation's state (backend.mark_read)
    ChatSignals(hub, support.conversation_for, backend.mark_read)
    ledger = backends.order_ledger(durable)
    room_sync = backends.room_sync(ledger, rooms, bus)
    backends.repopulation(backend, ledger, durable, rooms, metrics)
    rooms_service = RoomService(hub, rooms, support, ledger=ledger,
                                team_replies=load_team_replies(config.replies_file),
                                metrics=metrics, sync=room_sync)
    workspace = Workspace(config, hub, rooms, support, events, metrics, adapter, orders,
                          authority)
    router = support.router

    async def claim_surge(key: str) -> bool:
        """One node announces a shared surge transition: the first to write its record."""
        written, _ = await backend.put("surge", key, {"node": config.node_id}, if_absent=True,
                                       ttl_s=7 * 86400.0)
        return written

    surge = SurgeService(
        Surge(rooms, lambda room: sum(1 for e in router.queue if e.room == room),
              SurgeRule(enter_messages_per_min=config.surge_enter_messages_per_min,
                        exit_messages_per_min=config.surge_exit_messages_per_min,
                        enter_queue=config.surge_enter_queue,
                        exit_queue=config.surge_exit_queue, calm_s=config.surge_calm_s,
                        warn_before_s=config.surge_warn_before_s,
                        callback_slot_s=config.surge_callback_slot_s,
                        callbacks_per_slot=config.surge_callbacks_per_slot,
                        callback_delay_s=config.surge_callback_delay_s)),
        hub, events, rooms_service, metrics, tick_s=config.radar_tick_s,
        notice=config.surge_notice or NOTICE_ZH, claim=claim_surge)
    radar_service = RadarService(hub, rooms, radar, anomaly.detector, surge.surge,
                                 rooms_service, events)
    webhooks = Webhooks(WebhookConfig(
        urls=tuple(config.webhook_urls), secret=config.webhook_secret,
        key_id=config.webhook_key_id, events=tuple(config.webhook_events),
        timeout_s=config.webhook_timeout_s, retry_base_s=config.webhook_retry_base_s,
        retry_max_s=config.webhook_retry_max_s, max_attempts=config.webhook_max_attempts),
        metrics)
    WebhookEvents(webhooks, events, outcome_of=workspace.outcomes.outcome_of)
    ice = IceProvider(config.stun_urls, config.turn_urls, config.turn_secret, config.turn_ttl_s)

    from .media.service import MediaService  # here, not at the top: it loads aiortc

    media = MediaService(hub, SupportCallPort(support, surge), config, ice, metrics,
                         directory=backends.call_directory(presence), attachments=attachments)

    async def ready() -> bool:
        if node.draining:
            return False  # a draining node takes no new sockets: they go to another node
        try:
            return await asyncio.wait_for(bus.ping(), 1.0)
        except Exception:
            return False

    # welcome: STUN only; TURN credentials go to a call's participants (gateway/ice.py)
    endpoint = SocketEndpoint(hub, tokens, ice_servers=lambda c: ice.stun_servers(),
                              ready=ready,
                              config=EdgeConfig(
                                  rate_per_s=config.rate_per_s, burst=config.rate_burst,
                                  hello_timeout_s=config.hello_timeout_s,
                                  max_sockets_per_user=config.max_sockets_per_user,
                                  max_sockets_per_ip=config.max_sockets_per_ip,
                                  client_address=ClientAddress(
                                      parse_networks(config.trusted_proxies))),
                              metrics=metrics)

    async def start_support() -> None:
        support.start()

    async def warm_up() -> None:
        warm = getattr(bot, "warm_up", None)
        if warm is not None:  # the offline bot's tables: built off the loop, before serving
            await asyncio.get_running_loop().run_in_executor(None, warm)

    async def close_adapter() -> None:
        close = getattr(adapter, "close", None)
        if close is not None:
            await close()

    async def restore() -> None:
        # one node: its live state back from the store before anything serves
        assert durable is not None
        assert isinstance(backend, MemoryBackend) and isinstance(ledger, MemoryOrderLedger)
        await restore_node(durable.store, backend, ledger, rooms, config.order_retention_s,
                           metrics)

    # dependency order: each starts after, and closes before, what it uses; the store first
    # (it records what everything else changes) and closed last (after its feed drained)
    archiver = backends.archiver(durable, metrics, rooms)
    # first in, last out: spans of everything else's shutdown are flushed
    resources = [Resource("tracing", _nothing, tracing.close)]
    if durable:
        resources.append(Resource("store", durable.start, durable.close))
    if archiver is not None:  # it reads Redis and writes the store: closed before the store
        resources.append(Resource("archiver", archiver.start, archiver.close))
    resources.append(Resource("auth", auth.start, auth.close))  # keys before any socket
    if durable is not None and backends.durable_steps:
        resources.append(Resource("restore", restore, _nothing))
    eraser = (ViewerEraser(durable.store, backend, hub, metrics,
                           forget_orders=backends.order_eraser(ledger, rooms))
              if durable is not None else None)
    if attachments is not None:  # after the store (its table), before anything serves
        resources.append(Resource("attachments", attachments.start, attachments.close))
    resources.append(Resource("bus", bus.start, bus.close))
    if presence is not None:
        resources.append(Resource("presence", presence.start, presence.close))
    resources += [Resource("hub", hub.start, hub.close),
                  Resource("support backend", backend.start, backend.close),
                  Resource("support", start_support, support.close),
                  Resource("media", media.start, media.close)]
    if room_sync is not None:
        resources.append(Resource("room sync", room_sync.start, room_sync.close))
    if eraser is not None:  # polls the store for `livedesk erase` requests
        resources.append(Resource("erase requests", eraser.start, eraser.close))
    # radar, anomaly flags, surge: their loops use the hub and the support service; the
    # webhooks' deliveries are cancelled (and the HTTP client closed) before them
    resources += [Resource("anomaly flags", anomaly.start, anomaly.close),
                  Resource("surge", surge.start, surge.close),
                  Resource("radar", radar_service.start, radar_service.close),
                  Resource("webhooks", webhooks.start, webhooks.close)]
    # handlers' tasks use the hub, the backend and the bus: cancelled before those close
    resources += [Resource("event handler tasks", _nothing, events.close),
                  Resource("shop adapter", _nothing, close_adapter),
                  Resource("workspace", workspace.start, workspace.close),
                  Resource("bot warm-up", warm_up, _nothing)]
    return Gateway(config=config, events=events, bus=bus, hub=hub, tokens=tokens, rooms=rooms,
                   support=support, rooms_service=rooms_service, workspace=workspace,
                   media=media, metrics=metrics, ice=ice, endpoint=endpoint, node=node,
                   presence=presence, auth=auth, radar=radar_service, anomaly=anomaly,
                   surge=surge, webhooks=webhooks, durable=durable, eraser=eraser,
                   attachments=attachments,
                   archiver=archiver,
                   resources=resources)
