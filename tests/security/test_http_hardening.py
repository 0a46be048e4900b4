"""HTTP hardening (issue 13, CONFIG part): headers on every response, REST bodies as hostile
input, the dev-token endpoint, the access log, and header/body deadlines. Everything talks
to a gateway on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
PAGES = ["/", "/agent", "/host", "/dashboard", "/admin", "/history"]


@pytest.fixture
async def gw():
    r = await start_gateway()
    try:
        yield r
    finally:
        await stop_gateway(r)


async def raw_request(port: int, data: bytes, read_timeout: float = 5.0) -> bytes:
    rd, wr = await asyncio.open_connection("127.0.0.1", port)
    try:
        wr.write(data)
        await wr.drain()
        return await asyncio.wait_for(rd.read(), read_timeout)
    finally:
        wr.close()


def port_of(r) -> int:
    return int(r.url.rsplit(":", 1)[1])


def assert_security_headers(headers, where: str) -> None:
    csp = headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == ["'self'"], (where, csp)
    assert directives.get("script-src") == ["'self'"], (where, csp)
    assert directives.get("frame-ancestors") == ["'none'"], (where, csp)
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, (where, csp)
    connect = directives.get("connect-src", [])
    assert connect[0] == "'self'" and all(re.fullmatch(r"wss?://[^/\s]+", c) for c in connect[1:]), \
        (where, csp)
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") == "no-referrer", where
    server = headers.get("Server", "")
    assert not re.search(r"\d|aiohttp|python", server, re.IGNORECASE), (where, server)


async def test_every_response_carries_the_security_headers(gw):
    """Finding 10: no CSP, X-Frame-Options, nosniff; /admin could be framed; Server had the
    aiohttp version. Pages, static files, JSON, errors, 404s: all of them."""
    h = gw.http
    service = gw.token("service", "shop")
    checks = [("GET", p, {}) for p in PAGES] + [
        ("GET", "/static/js/client.js", {}), ("GET", "/static/css/common.css", {}),
        ("GET", "/sdk/client.js", {}), ("GET", "/api/openapi.json", {}),
        ("GET", "/api/protocol.schema.json", {}), ("GET", "/healthz", {}), ("GET", "/readyz", {}), ("GET", "/metrics", {}),
        ("GET", "/api/rooms", {}), ("GET", "/api/dev/token?role=viewer", {}),
        ("GET", "/no/such/page", {}), ("GET", "/api/dashboard", {}),
        ("POST", f"/api/rooms/{gw.room_id}/orders", {"Authorization": f"Bearer {service}"}),
    ]
    for method, path, headers in checks:
        async with h.request(method, gw.url + path, headers=headers, data=b"{") as r:
            assert r.status < 500, (path, r.status)
            assert_security_headers(r.headers, path)
    # the WebSocket upgrade too
    async with h.ws_connect(gw.url.replace("http", "ws") + "/ws") as ws:
        assert_security_headers(ws._response.headers, "/ws")


async def test_the_server_header_has_no_version_even_on_unparsable_requests(gw, caplog):
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    for raw in (b"GARBAGE\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n"):
        head = (await raw_request(port_of(gw), raw)).split(b"\r\n\r\n")[0].decode()
        assert head.startswith("HTTP/1.") and " 400 " in head.split("\r\n")[0], head
        server = re.search(r"^Server: (.*)$", head, re.MULTILINE | re.IGNORECASE).group(1)
        assert server == "LiveDesk", head
    # the client's mistake is one warning line, not a traceback (finding 9: log flooding)
    assert not [rec for rec in caplog.records if rec.exc_info], "traceback logged"


async def test_csp_connect_src_names_configured_gateways_and_pages_list_them():
    r = await start_gateway(Config(dev=True, port=free_port(),
                                   gateway_origins=["https://gw2.example.com"],
                                   frame_ancestors=["https://shop.example.com"]))
    try:
        async with r.http.get(r.url + "/agent") as resp:
            csp = resp.headers["Content-Security-Policy"]
            page = await resp.text()
            assert "X-Frame-Options" not in resp.headers  # a list of origins: CSP governs
        own = r.url.replace("http://", "ws://")
        assert f"connect-src 'self' {own} wss://gw2.example.com" in csp
        assert "frame-ancestors https://shop.example.com" in csp
        meta = re.search(r'<meta name="livedesk-gateways" content="([^"]*)">', page).group(1)
        assert meta.split() == [own, "wss://gw2.example.com"]
    finally:
        await stop_gateway(r)


def test_pages_hold_no_inline_script_style_or_handlers():
    """The CSP allows scripts and styles from files only: a page that relied on an inline
    one would break under it (the e2e tests then show the pages still work)."""
    from pathlib import Path
    web = Path(__file__).resolve().parents[2] / "web"
    for page in web.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), page.name
        assert "<style" not in text and not re.search(r"\sstyle=", text), page.name
        assert not re.search(r"\son[a-z]+=", text, re.IGNORECASE), page.name
    for js in (web / "js").glob("*.js"):
        text = js.read_text(encoding="utf-8")
        assert not re.search(r"\beval\(|new Function\(|setAttribute\(\s*[\"']style", text), js.name


# --- REST bodies are hostile input (finding 9) ---------------------------------------------
HOSTILE_BODIES = {
    "deep arrays": b"[" * 20_000 + b"]" * 20_000,
    "deep objects": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "huge integer": b'{"order_id": "o", "user": "u", "sku": "D001", "qty": ' + b"9" * 4_400 + b"}",
    "lone surrogate": b'{"order_id": "\\ud800", "user": "u", "sku": "D001", "qty": 1}',
    "control char": b'{"order_id": "o\\u0000", "user": "u", "sku": "D001", "qty": 1}',
    "not utf-8": b'{"order_id": "\xff\xfe", "user": "u", "sku": "D001", "qty": 1}',
    "NaN": b'{"order_id": "o", "user": "u", "sku": "D001", "qty": NaN}',
    "overflow float": b'{"order_id": "o", "user": "u", "sku": "D001", "qty": 1e999}',
    "not an object": b"[1, 2, 3]",
    "not json": b"{order_id: o}",
    "surrogate key": b'{"\\udc00": 1, "order_id": "o", "user": "u", "sku": "D001", "qty": 1}',
}


@pytest.mark.parametrize("endpoint", ["orders", "notices"])
@pytest.mark.parametrize("kind", sorted(HOSTILE_BODIES))
async def test_hostile_rest_bodies_get_a_typed_400(gw, caplog, endpoint, kind):
    """20,000 nested arrays or a 4,400-digit integer answered 500 with a traceback."""
    caplog.set_level(logging.DEBUG)
    token = gw.token("service", "shop")
    async with gw.http.post(f"{gw.url}/api/rooms/{gw.room_id}/{endpoint}", data=HOSTILE_BODIES[kind],
                            headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/json"}) as r:
        body = await r.json()
        assert r.status == 400, (r.status, body)
        assert body["error"] in ("bad_request", "bad_json") and body["message"]
    assert not [rec for rec in caplog.records if rec.exc_info], "traceback logged"
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    # nothing was stored: the room's stock is unchanged and a good order still works
    good = {"order_id": f"ok-{kind}-{endpoint}", "user": "u", "sku": "D001", "qty": 1}
    async with gw.http.post(f"{gw.url}/api/rooms/{gw.room_id}/orders", json=good,
                            headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()


async def test_oversized_body_is_413_and_dashboard_ignores_a_hostile_body(gw):
    token = gw.token("service", "shop")
    async with gw.http.post(f"{gw.url}/api/rooms/{gw.room_id}/orders", data=b" " * 70_000,
                            headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 413 and (await r.json())["error"] == "too_large"
    admin = gw.token("admin", "boss")
    async with gw.http.get(f"{gw.url}/api/dashboard", data=HOSTILE_BODIES["deep arrays"],
                           headers={"Authorization": f"Bearer {admin}"}) as r:
        assert r.status == 200
        json.loads(await r.text())
    async with gw.http.post(f"{gw.url}/api/rooms/%ED%A0%80/orders", data=b"{}",
                            headers={"Authorization": f"Bearer {token}"}) as r:
        assert 400 <= r.status < 500


# --- the dev-token endpoint ------------------------------------------------------------------
@pytest.mark.parametrize("ttl", ["abc", "-5", "0", "1e9", "99999999999999999999", "１２",
                                 "9" * 5000])
async def test_dev_token_bad_ttl_is_400(gw, ttl):
    """Finding 9: /api/dev/token?ttl=abc answered 500."""
    async with gw.http.get(gw.url + "/api/dev/token", params={"ttl": ttl}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "bad_request"


async def test_dev_token_bad_fields_are_400(gw):
    for q in ({"user": "a\u0000b"}, {"name": "x" * 500}, {"room": "\u009b"}):
        async with gw.http.get(gw.url + "/api/dev/token", params=q) as r:
            assert r.status == 400, q


@pytest.mark.parametrize("header", [("X-Forwarded-For", "203.0.113.9"),
                                    ("Forwarded", "for=203.0.113.9"),
                                    ("X-Forwarded-For", "127.0.0.1"),
                                    ("X-Real-IP", "203.0.113.9")])
async def test_dev_token_refused_when_it_came_through_a_proxy(gw, header):
    """Finding 3: a reverse proxy on the same host makes every request "loopback"."""
    async with gw.http.get(gw.url + "/api/dev/token?role=admin", headers=[header]) as r:
        body = await r.json()
        assert r.status == 403 and body["error"] == "forbidden" and "token" not in body
    async with gw.http.get(gw.url + "/api/dev/token?role=admin&ttl=60") as r:
        assert r.status == 200 and JWT.fullmatch((await r.json())["token"])


# --- the access log (finding 4) -------------------------------------------------------------
async def test_access_log_prints_no_query_string_and_no_token(gw, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    token = gw.token("admin", "boss")
    for path in ("/admin", "/", "/agent", "/static/js/client.js", "/ws", "/nope"):
        async with gw.http.get(f"{gw.url}{path}?token={token}&user=boss") as r:
            await r.read()
    async with gw.http.get(f"{gw.url}/x/{token}") as r:
        await r.read()
    async with gw.http.get(gw.url + "/healthz", headers={"User-Agent": f"ua {token}"}) as r:
        await r.read()
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "aiohttp.access"]
    assert len(lines) >= 8, lines
    text = "\n".join(lines)
    assert not JWT.search(text), text
    assert "?" not in text.replace('"-"', ""), text  # no query string at all
    assert '"GET /admin HTTP/1.1" 200' in text


# --- header and body deadlines (build 3, finding 7) --------------------------------------------
async def test_slow_header_connections_are_dropped():
    """A client that sends its request head a byte at a time (slowloris) is closed after
    http_header_timeout_s; before, such connections were never dropped."""
    config = Config(dev=True, port=free_port())
    config.http_header_timeout_s = 1.0
    r = await start_gateway(config)
    try:
        rd, wr = await asyncio.open_connection("127.0.0.1", config.port)
        wr.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await wr.drain()
        t0 = time.monotonic()
        closed_after = None
        for i in range(40):  # up to 8 s: one header line every 0.2 s
            await asyncio.sleep(0.2)
            if rd.at_eof() or wr.is_closing():
                closed_after = time.monotonic() - t0
                break
            try:
                wr.write(f"X-Slow-{i}: a\r\n".encode())
                await wr.drain()
            except (ConnectionError, OSError):
                closed_after = time.monotonic() - t0
                break
            try:
                data = await asyncio.wait_for(rd.read(1), 0.01)
            except TimeoutError:
                continue
            if data == b"":
                closed_after = time.monotonic() - t0
                break
        wr.close()
        assert closed_after is not None, "slow-header connection still open after 8 s"
        assert closed_after < 4.0, closed_after
        # a normal client on a fresh connection is unaffected
        async with r.http.get(r.url + "/healthz") as resp:
            assert resp.status == 200
    finally:
        await stop_gateway(r)


async def test_connection_that_sends_nothing_is_dropped():
    config = Config(dev=True, port=free_port())
    config.http_header_timeout_s = 1.0
    r = await start_gateway(config)
    try:
        rd, wr = await asyncio.open_connection("127.0.0.1", config.port)
        try:
            data = await asyncio.wait_for(rd.read(), 5.0)
        except TimeoutError:
            pytest.fail("an idle connection that never sent a request was kept open")
        finally:
            wr.close()
        assert data == b""
    finally:
        await stop_gateway(r)


async def test_slow_body_is_refused_with_408():
    config = Config(dev=True, port=free_port())
    config.http_body_timeout_s = 1.0
    r = await start_gateway(config)
    try:
        token = r.token("service", "shop")
        rd, wr = await asyncio.open_connection("127.0.0.1", config.port)
        wr.write((f"POST /api/rooms/{r.room_id}/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 200\r\n\r\n{{\"order_id\":").encode())
        await wr.drain()
        t0 = time.monotonic()

        async def trickle():
            for _ in range(40):
                await asyncio.sleep(0.2)
                try:
                    wr.write(b" ")
                    await wr.drain()
                except (ConnectionError, OSError):
                    return

        feeder = asyncio.create_task(trickle())
        try:
            answer = await asyncio.wait_for(rd.read(), 6.0)
        except TimeoutError:
            pytest.fail("a slow body held the request open for 6 s")
        finally:
            feeder.cancel()
            wr.close()
        assert time.monotonic() - t0 < 4.0
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b" 408 " in head.split(b"\r\n")[0], answer[:200]
        assert json.loads(body)["error"] == "timeout"
    finally:
        await stop_gateway(r)
