"""The app factory: wires signaling, support and media into one aiohttp application.

Everything is built from one :class:`~gateway.config.Config` and stored under typed
``web.AppKey``s; resources that need closing (bus, hub tasks, peer connections) live in a
cleanup context. No module-level state: two apps in one process do not share anything.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from signaling import Hub, MemoryBus, TokenAuthority
from signaling.bus import Bus
from signaling.clientaddr import ClientAddress, parse_networks
from signaling.hub import HubConfig
from signaling.server import EdgeConfig, SocketEndpoint

from .config import Config
from .ice import IceProvider
from .metrics import Metrics
from .support.knowledge import Knowledge, demo_room_path
from .support.limits import SupportLimits
from .support.responder import Responder
from .support.room import RoomRegistry
from .support.service import SupportConfig, SupportService

if TYPE_CHECKING:
    from .durable import Durable
    from .media.service import MediaService
    from .support.room_service import RoomService
    from .support.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    """Everything one node runs; handy for tests that want to reach inside."""

    config: Config
    bus: Bus
    hub: Hub
    tokens: TokenAuthority
    rooms: RoomRegistry
    support: SupportService
    metrics: Metrics
    ice: IceProvider
    endpoint: SocketEndpoint
    rooms_service: RoomService | None = None
    media: MediaService | None = None
    draining: bool = False
    drain: object | None = None
    workspace: Workspace | None = None
    durable: Durable | None = None  # the durable store, when configured (docs/storage.md)


GATEWAY = web.AppKey("gateway", Gateway)


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


def create_app(config: Config, responder: Responder | None = None,
               bus: Bus | None = None) -> web.Application:
    config.validate()
    metrics = Metrics()
    redis_client = None
    if config.redis_url:
        import redis.asyncio as aioredis

        from signaling.redis_bus import RedisBus, make_pool

        redis_client = aioredis.Redis(connection_pool=make_pool(config.redis_url))
        if bus is None:
            bus = RedisBus(config.redis_url, node_id=config.node_id, redis=redis_client)
    if bus is None:
        bus = MemoryBus()
    mirror = presence = None
    if redis_client is not None:
        from signaling.directory import RedisPresence, RedisSessionMirror

        mirror = RedisSessionMirror(redis_client, config.node_id,
                                    ttl_s=int(config.retain_s) + 60)
        presence = RedisPresence(redis_client, config.node_id,
                                 info=lambda: {"url": config.public_url,
                                               "media_address": config.media_address,
                                               "sessions": len(hub.sessions)})
    hub = Hub(bus, node_id=config.node_id,
              config=HubConfig(retain_frames=config.retain_frames, retain_s=config.retain_s),
              mirror=mirror, presence=presence, metrics=metrics)
    if redis_client is not None:
        import redis.exceptions as rexc

        hub.unavailable_errors += (rexc.ConnectionError, rexc.TimeoutError,
                                   rexc.OutOfMemoryError)
    tokens = TokenAuthority(config.secret)
    rooms = load_rooms(config)
    responder = responder or default_responder(config)
    backend = None
    if redis_client is not None:
        from .support.conversation import ConversationStore
        from .support.redis_backend import RedisBackend
        from .support.routing import Router

        backend = RedisBackend(
            redis_client, ConversationStore(), Router(config.agent_capacity, reachable=hub.online),
            default_capacity=config.agent_capacity,
            capacities=dict(getattr(config, "agent_capacities", {}) or {}),
            local_agents=lambda: {s.user for s in hub.sessions.values()
                                  if s.role == "agent" and s.attached},
            url=config.redis_url, metrics=metrics, retention_s=config.resolved_retention_s)
    support = SupportService(hub, rooms, responder,
                             SupportConfig(agent_capacity=config.agent_capacity,
                                           bot_timeout_s=config.bot_timeout_s,
                                           resolved_retention_s=config.resolved_retention_s,
                                           limits=SupportLimits.from_config(config)),
                             metrics=metrics, backend=backend)
    from .support.replies import load_team_replies
    from .support.room_service import RoomService

    ledger = room_sync = None
    if redis_client is not None:
        from .support.redis_room import RedisRoomStore, RoomSync

        ledger = RedisRoomStore(redis_client, order_retention_s=config.order_retention_s)
        room_sync = RoomSync(ledger, rooms, bus, config.node_id)
    if ledger is None:
        from .support.room import MemoryOrderLedger

        ledger = MemoryOrderLedger(retention_s=config.order_retention_s)
    rooms_service = RoomService(hub, rooms, support, ledger=ledger,
                                team_replies=load_team_replies(config.replies_file),
                                metrics=metrics, sync=room_sync)
    ice = IceProvider(config.stun_urls, config.turn_urls, config.turn_secret, config.turn_ttl_s)

    gw_holder: list[Gateway] = []  # filled below; ready() runs only once the app serves

    async def ready() -> bool:
        if gw_holder and gw_holder[0].draining:
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
    gw = Gateway(config, bus, hub, tokens, rooms, support, metrics, ice, endpoint,
                 rooms_service=rooms_service)
    from .durable import attach_store

    gw.durable = attach_store(config, support.backend.replica, rooms_service.order_listeners)
    gw_holder.append(gw)

    from .support.workspace import Workspace  # context, actions, CSAT, metrics

    gw.workspace = Workspace(gw)
    support.responder = gw.workspace.aftersale(support.responder)

    app = web.Application()
    app[GATEWAY] = gw

    from .media.directory import RedisCallDirectory
    from .media.service import MediaService  # here, not at the top: it loads aiortc
    from .support.call_port import SupportCallPort

    media = gw.media = MediaService(
        hub, SupportCallPort(support), config, ice, metrics,
        directory=RedisCallDirectory(redis_client, presence) if presence is not None else None)
    if presence is not None:
        presence.info = lambda: {"url": config.public_url,
                                 "media_address": config.media_address,
                                 "sessions": len(hub.sessions),
                                 "calls": len(media.calls.all()),
                                 "draining": gw.draining}

    async def lifecycle(app: web.Application):
        if gw.durable is not None:
            await gw.durable.start()
        await bus.start()
        await hub.start()
        if presence is not None:
            await presence.start()
        await support.backend.start()
        support.start()
        await media.start()
        if room_sync is not None:
            await room_sync.start()
        warm = getattr(responder, "warm_up", None)
        if warm is not None:
            await asyncio.get_running_loop().run_in_executor(None, warm)
        yield
        await media.close()
        await support.close()
        await support.backend.close()
        await hub.close()
        if presence is not None:
            await presence.close()
        if room_sync is not None:
            await room_sync.close()
        await bus.close()
        if gw.durable is not None:
            await gw.durable.close()

    app.cleanup_ctx.append(lifecycle)
    workspace = gw.workspace

    async def workspace_tasks(app: web.Application):
        """Started after, and ended before, everything the workspace reads."""
        await workspace.start()
        yield
        await workspace.close()

    app.cleanup_ctx.append(workspace_tasks)

    def no_new_calls(session, msg):
        if gw.draining and msg.TYPE in ("call.request", "call.invite"):
            from signaling import ErrorCode, ProtocolError
            return ProtocolError(ErrorCode.UNAVAILABLE,
                                 "this node is shutting down; reconnect and try again")
        return None

    hub.gates.append(no_new_calls)

    async def drain() -> None:
        """SIGTERM: become unready, refuse new calls, give active calls up to ``drain_s``,
        then tell every socket to reconnect elsewhere (resume keeps their sessions)."""
        gw.draining = True
        if presence is not None:
            await presence.beat()  # other nodes stop picking us for new calls at once
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.drain_s
        while media.calls.all() and loop.time() < deadline:
            await asyncio.sleep(0.2)
        n = await hub.tell_all_to_reconnect("draining")
        log.info("drained: %d sockets told to reconnect", n)

    gw.drain = drain

    from .history_api import setup_history_routes
    from .http_api import setup_routes

    setup_routes(app, gw)
    setup_history_routes(app, gw)  # history, export, erasure (the durable store)
    return app
