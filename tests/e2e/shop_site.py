"""A plain "shop" site for the embed tests: its own aiohttp server on another loopback port
(another origin than the gateway's), serving a stream page with the widget snippet and a
backend endpoint that signs the viewer's identity with the shop's secret, as a real shop's
backend does (docs/embedding.md). Loopback only.

The page is reached as ``http://localhost:<port>`` and the gateway as
``http://127.0.0.1:<port>``: two *sites*, not only two origins, so the widget's iframe is a
cross-site frame (its cookies are third-party), as on a real shop. Both hosts are loopback,
which Chromium treats as secure contexts (camera, microphone, ``Secure`` cookies).
"""

from __future__ import annotations

import html
import json
import time

import jwt
from aiohttp import web

from tests.conftest import free_port

# the stub of docs/embedding.md: calls before widget.js loaded are queued
STUB = """window.LiveDesk = window.LiveDesk || { q: [] };
["configure", "identify", "track", "onScreen", "open", "close", "on"].forEach(function (k) {
  LiveDesk[k] = LiveDesk[k] || function () { LiveDesk.q.push([k, [].slice.call(arguments)]); };
});"""

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Acme live</title>
<style>body{{margin:0;font-family:sans-serif}} #player{{width:640px;height:360px;background:#222}}</style>
<script>{stub}</script>
<script>
  window.shopEvents = [];
  LiveDesk.on("status", function (s) {{ window.shopEvents.push(["status", s.identity]); }});
  LiveDesk.on("identity_expired", function () {{ window.shopEvents.push(["identity_expired"]); }});
  LiveDesk.on("error", function (e) {{ window.shopEvents.push(["error", e.error]); }});
  LiveDesk.on("ready", function () {{ window.shopEvents.push(["ready"]); }});
  {identify}
  LiveDesk.onScreen("{on_screen}");
</script>
<script src="{gateway}/widget.js" data-room="{room}" {extra} async></script>
</head><body>
<div id="player" data-testid="player">the shop's own stream player</div>
{body}
</body></html>"""

IDENTIFY = """fetch("/identity?{query}", {{cache: "no-store"}}).then(function (r) {{ return r.json(); }})
    .then(function (b) {{ LiveDesk.identify({{token: b.token}}); }});"""

# a third party's frame on the shop's page (an ad, say), from an origin the shop did not
# register: it forges the widget iframe's messages to the shop's page
AD = """<!doctype html><html><head><meta charset="utf-8"></head><body>ad
<script>
  setInterval(function () {
    parent.postMessage({livedesk: 1, type: "ready"}, "*");
    parent.postMessage({livedesk: 1, type: "status", identity: "forged"}, "*");
    parent.postMessage({livedesk: 1, type: "close"}, "*");
    window.sent = (window.sent || 0) + 1;
  }, 200);
</script></body></html>"""

# a page of a foreign origin that opens the embed page in a window of its own (no
# frame-ancestors applies to a top-level window) and tries to push an identity of its
# choosing into it: the viewer would then chat as the attacker's identity
OPENER = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<button id="go">open</button>
<script>
  var token = {token};
  document.getElementById("go").onclick = function () {{
    var w = window.open({embed}, "_blank");
    setInterval(function () {{
      try {{
        w.postMessage({{livedesk: 1, type: "init", token: token}}, "*");
        w.postMessage({{livedesk: 1, type: "identify", token: token}}, "*");
        window.sent = (window.sent || 0) + 1;
      }} catch (e) {{}}
    }}, 200);
  }};
</script></body></html>"""


class ShopSite:
    """``/`` the stream page (query: ``sub``, ``identify=0``, ``ad=1``, ``room``, ``kid``,
    ``position``); ``/identity`` the shop backend's signed identity; ``/ad`` a foreign frame; ``/opener`` (to be loaded from
    the foreign origin) opens the embed page in a window and posts to it;
    ``/frame-embed`` a page that frames the gateway's embed page directly."""

    def __init__(self, gateway: str, shop_id: str, secret: str, room: str) -> None:
        self.gateway = gateway
        self.shop_id = shop_id
        self.secret = secret
        self.room = room
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"  # what the shop registers
        self.foreign = f"http://127.0.0.1:{self.port}"  # same server, another origin
        self.runner: web.AppRunner | None = None
        self.signed: list[str] = []

    def sign(self, sub: str, room: str | None = None, secret: str | None = None,
             kid: str | None = None, exp_in: int = 600) -> str:
        token = jwt.encode({"sub": sub, "room": room or self.room, "name": sub.title(),
                            "exp": int(time.time()) + exp_in}, secret or self.secret,
                           algorithm="HS256", headers={"kid": kid or self.shop_id})
        self.signed.append(token)
        return token

    async def start(self) -> ShopSite:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/identity", self.identity)
        app.router.add_get("/ad", self.ad)
        app.router.add_get("/opener", self.opener)
        app.router.add_get("/frame-embed", self.frame_embed)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def page(self, request: web.Request) -> web.Response:
        q = request.query
        ident = "" if q.get("identify") == "0" else IDENTIFY.format(query=request.query_string)
        extra = f'data-position="{html.escape(q["position"])}"' if "position" in q else ""
        body = f'<iframe src="{self.foreign}/ad" width="300" height="80"></iframe>' \
            if q.get("ad") == "1" else ""
        text = PAGE.format(stub=STUB, identify=ident, gateway=self.gateway,
                           room=html.escape(q.get("room", self.room)), extra=extra, body=body,
                           on_screen="D001")
        return web.Response(text=text, content_type="text/html")

    async def identity(self, request: web.Request) -> web.Response:
        """The shop's backend: who the signed-in shopper is (here: ``?sub=``)."""
        q = request.query
        token = self.sign(q.get("sub", "alice"), room=q.get("room"), kid=q.get("kid"))
        return web.json_response({"token": token}, headers={"Cache-Control": "no-store"})

    async def ad(self, request: web.Request) -> web.Response:
        return web.Response(text=AD, content_type="text/html")

    async def opener(self, request: web.Request) -> web.Response:
        embed = json.dumps(f"{self.gateway}/embed?room={self.room}")
        return web.Response(text=OPENER.format(token=json.dumps(self.sign("mallory")),
                                               embed=embed), content_type="text/html")

    async def frame_embed(self, request: web.Request) -> web.Response:
        src = html.escape(f"{self.gateway}/embed?room={self.room}", quote=True)
        return web.Response(text=f'<!doctype html><iframe id="f" src="{src}" width="400" '
                                 f'height="600"></iframe>', content_type="text/html")
