"""The app factory: one node (built by ``wiring.py``) served as one aiohttp application.

The node is stored under a typed ``web.AppKey``; each resource that needs starting and
closing gets its own cleanup context, in dependency order, so if one fails to start, the
ones already started are closed (in reverse order) and the rest never start. No
module-level state: two apps in one process do not share anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from signaling import logctx
from signaling.bus import Bus

from .attachments_api import setup_attachment_routes
from .auth.routes import setup_auth_routes
from .config import Config
from .embed_api import setup_embed_routes
from .history_api import setup_history_routes
from .http_api import setup_routes
from .radar_api import setup_radar_routes
from .specs_api import setup_spec_routes
from .support.responder import Responder
from .wiring import Gateway, Resource, build_gateway

__all__ = ["GATEWAY", "Gateway", "create_app"]

GATEWAY = web.AppKey("gateway", Gateway)


def cleanup_context(resource: Resource,
                    node_id: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        # the node's name on every log line of the tasks a resource starts (the ops tail,
        # the bus listener, heartbeats): two nodes in one process stay apart
        with logctx.bound(node=node_id):
            await resource.start()
        yield
        with logctx.bound(node=node_id):
            await resource.close()

    run.__qualname__ = f"cleanup_context[{resource.name}]"
    return run


async def _close_sockets(app: web.Application) -> None:
    """Shutdown's first step: the sockets go (1001) so their handlers return at once; the
    resources close after (cleanup_ctx)."""
    app[GATEWAY].hub.detach_all()


def create_app(config: Config, responder: Responder | None = None,
               bus: Bus | None = None) -> web.Application:
    gw = build_gateway(config, responder=responder, bus=bus)
    app = web.Application()
    app[GATEWAY] = gw
    for resource in gw.resources:
        app.cleanup_ctx.append(cleanup_context(resource, config.node_id))
    app.on_shutdown.append(_close_sockets)
    setup_routes(app, gw)
    setup_history_routes(app, gw)  # history, export, erasure (the durable store)
    setup_attachment_routes(app, gw)  # photos, stills, recordings (docs/protocol.md)
    setup_auth_routes(app, gw)  # sign-in, socket tokens, JWKS, accounts (docs/accounts.md)
    setup_embed_routes(app, gw)  # widget.js, /embed, anonymous viewers (docs/embedding.md)
    setup_radar_routes(app, gw)  # radar, its report, webhook deliveries (docs/webhooks.md)
    setup_spec_routes(app, gw)  # OpenAPI, protocol JSON Schema, the JS SDK (docs/sdk.md)
    return app
