"""The HTTP middleware (gateway/request_context.py): request ids, spans, and the caller's
trace continued — on a small aiohttp app on loopback with only that middleware."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.trace import StatusCode

from gateway.request_context import REQUEST_ID_HEADER, request_context
from signaling import logctx
from tests.otel import recording

SEEN: list[dict] = []


async def ok(request: web.Request) -> web.Response:
    SEEN.append(logctx.current())
    return web.json_response({"ok": True})


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("boom")


async def client() -> TestClient:
    app = web.Application(middlewares=[request_context("n1")])
    app.router.add_get("/items/{item}", ok)
    app.router.add_get("/moved", moved)
    app.router.add_get("/broken", broken)
    c = TestClient(TestServer(app, host="127.0.0.1"))
    await c.start_server()
    return c


async def test_request_ids_are_taken_when_safe_and_made_otherwise():
    c = await client()
    try:
        SEEN.clear()
        r = await c.get("/items/42", headers={REQUEST_ID_HEADER: "shop-req.1:a_b"})
        assert r.headers[REQUEST_ID_HEADER] == "shop-req.1:a_b"
        r = await c.get("/items/42", headers={REQUEST_ID_HEADER: "bad id\u2028<script>"})
        made = r.headers[REQUEST_ID_HEADER]
        assert made != "bad id\u2028<script>" and len(made) == 16
        r = await c.get("/items/42", headers={REQUEST_ID_HEADER: "x" * 65})
        assert r.headers[REQUEST_ID_HEADER] != "x" * 65
        assert SEEN[0] == {"node": "n1", "request_id": "shop-req.1:a_b"}
        assert SEEN[1]["request_id"] == made
        r = await c.get("/moved", allow_redirects=False)
        assert r.status == 302 and r.headers[REQUEST_ID_HEADER]
    finally:
        await c.close()


async def test_spans_name_the_route_continue_the_caller_and_mark_only_failures():
    c = await client()
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        with recording() as exporter:
            await c.get("/items/42?secret=1", headers={
                "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"})
            await c.get("/moved", allow_redirects=False)
            r = await c.get("/broken")
            assert r.status == 500
            spans = {s.name: s for s in exporter.get_finished_spans()}
    finally:
        await c.close()
    item = spans["HTTP GET /items/{item}"]
    assert format(item.context.trace_id, "032x") == caller_trace
    assert item.parent.span_id == 0x00f067aa0ba902b7
    assert item.attributes["http.route"] == "/items/{item}"
    assert item.attributes["http.response.status_code"] == 200
    assert all("42" not in n and "secret" not in n for n in spans)
    assert spans["HTTP GET /moved"].status.status_code is not StatusCode.ERROR
    assert spans["HTTP GET /moved"].attributes["http.response.status_code"] == 302
    assert spans["HTTP GET /broken"].status.status_code is StatusCode.ERROR
