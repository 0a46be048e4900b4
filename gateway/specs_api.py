"""``GET /api/openapi.json``, ``GET /api/protocol.schema.json`` and the SDK's modules at
``/sdk/``.

The documents are generated from the running code on first request (the same functions
``python -m gateway.specs`` writes docs/spec/ with), so what a server says about itself is
what it does. ``/sdk/`` serves ``sdk/js/src``: the pages import the SDK from there (through
``/static/js/client.js``, a re-export), so they run the SDK's code, not a copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .wiring import Gateway

SDK_SRC = Path(__file__).resolve().parent.parent / "sdk" / "js" / "src"


def setup_spec_routes(app: web.Application, gw: Gateway) -> None:
    cache: dict[str, bytes] = {}

    def document(name: str) -> bytes:
        body = cache.get(name)
        if body is None:
            from .specs import openapi_document, protocol_document

            doc: dict[str, Any] = (openapi_document() if name == "openapi"
                                   else protocol_document())
            body = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
            cache[name] = body
        return body

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=document("openapi"), content_type="application/json",
                            charset="utf-8", headers={"Cache-Control": "no-cache"})

    async def protocol(request: web.Request) -> web.Response:
        return web.Response(body=document("protocol"), content_type="application/json",
                            charset="utf-8", headers={"Cache-Control": "no-cache"})

    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/api/protocol.schema.json", protocol)
    sdk = gw.config.web_root.parent / "sdk" / "js" / "src"
    if not sdk.exists():
        sdk = SDK_SRC
    if sdk.exists():
        app.router.add_static("/sdk/", sdk, show_index=False)
