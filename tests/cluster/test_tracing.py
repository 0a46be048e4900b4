"""Issue 22's must-show for tracing: a chat message from a viewer on node A to an agent on
node B (through Redis), an order POST, and a call setup each appear as ONE connected trace
(the SDK's in-memory exporter), and every log line logged while they ran carries that
trace's id and the ids of who and what it was about (JSON lines, gateway/logs.py).

Two real gateways in this process sharing a real redis-server (as
``test_ops_log_recovery.py`` does); the call is a real aiortc peer per side."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.otel import by_trace, connected, json_logs, recording
from tests.workspace.helpers import viewer

pytestmark = pytest.mark.redis

SECRET = "tracing-test-secret-of-32-bytes-or-more!"


async def node(url: str, name: str):
    return await start_gateway(Config(dev=True, port=free_port(), redis_url=url, node_id=name,
                                      secret=SECRET, retain_s=600))


async def until(pred, timeout=5.0, what="condition"):
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not pred():
        assert loop.time() - t0 < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def the_trace(spans, root_name: str, **attrs):
    """The spans of the one trace whose root is ``root_name`` (with ``attrs``)."""
    roots = [s for s in spans if s.name == root_name and s.parent is None
             and all(s.attributes.get(k) == v for k, v in attrs.items())]
    assert len(roots) == 1, [(s.name, dict(s.attributes), s.parent) for s in spans]
    tid = roots[0].context.trace_id
    return format(tid, "032x"), [s for s in spans if s.context.trace_id == tid]


def names(spans, node=None):
    return sorted(s.name for s in spans
                  if node is None or s.attributes.get("livedesk.node") == node)


async def test_a_cross_node_chat_message_is_one_trace_and_its_log_lines_carry_its_ids(
        redis_server):
    a = await node(redis_server.url, "A")
    b = await node(redis_server.url, "B")
    try:
        agent = await b.client("agent", "ag", name="Agent")
        await agent.request("agent.status", status="available")
        v, cid = await viewer(a, "v1")
        await v.request("conversation.escalate", conversation=cid)
        await agent.event("conversation.assigned", conversation=cid)
        with recording() as exporter, json_logs("gateway", "signaling") as logs:
            sent = await v.request("message.send", conversation=cid, text="where is it?",
                                   client_msg_id="trace-1")
            assert sent["type"] == "message", sent
            got = await agent.wait_for(lambda f: f.get("type") == "message"
                                       and f.get("message_id") == sent["message_id"])
            assert got["text"] == "where is it?"
            # B's apply span ends right after it delivered: wait for it to be exported
            await until(lambda: any(s.name == "ops.apply" and s.attributes.get(
                "livedesk.node") == "B" for s in exporter.get_finished_spans()),
                what="B's ops.apply span")
            await asyncio.sleep(0.1)
            spans = list(exporter.get_finished_spans())
            lines = list(logs.lines)

        tid, trace = the_trace(spans, "ws message.send", **{"livedesk.node": "A"})
        assert connected(trace), [(s.name, s.parent) for s in trace]
        # on A: the request, its support step and the Redis commit; both nodes apply the
        # ops entry in a span continuing the commit's
        assert {"ws message.send", "support.step", "redis.commit", "ops.apply"} <= set(
            names(trace, None))
        assert "ops.apply" in names(trace, "B"), names(trace)
        assert "ops.apply" in names(trace, "A"), names(trace)
        commit = next(s for s in trace if s.name == "redis.commit")
        for s in trace:
            if s.name == "ops.apply":
                assert s.parent.span_id == commit.context.span_id
        # no other trace holds a span of this message's work
        others = {t for t, ss in by_trace(spans).items() if t != tid
                  for s in ss if s.name in ("support.step", "redis.commit", "ops.apply")}
        assert not others, others

        # logs: the lines of the request on A and of the apply on B are in the trace …
        handled = [ln for ln in lines if ln["message"].startswith("message.send handled")]
        assert len(handled) == 1, lines
        h = handled[0]
        assert h["trace_id"] == tid and h["node"] == "A" and h["conversation"] == cid
        assert h["user"] == "v1" and h["session"].startswith("s_") and h["request_id"]
        applied = [ln for ln in lines if ln["message"].startswith("ops entry")
                   and ln.get("trace_id") == tid]
        assert {ln["node"] for ln in applied} == {"A", "B"}, applied
        # … and every line of the request (its socket's session and request id) or logged
        # inside one of the trace's spans carries the same trace id, node and ids (lines of
        # the requests before it, logged after their reply, are in the capture too)
        span_ids = {format(s.context.span_id, "016x") for s in trace}
        of_request = [ln for ln in lines if ln.get("session") == h["session"]
                      and ln.get("request_id") == h["request_id"]]
        in_trace = of_request + [ln for ln in lines if ln.get("span_id") in span_ids
                                 and ln not in of_request]
        assert len(in_trace) >= 3, lines
        assert all(ln.get("trace_id") == tid for ln in in_trace), in_trace
        assert all(ln["conversation"] == cid for ln in of_request), of_request
        assert all(ln.get("node") in ("A", "B") for ln in in_trace), in_trace
    finally:
        await stop_gateway(a)
        await stop_gateway(b)


async def test_an_order_post_is_one_trace_and_its_log_lines_carry_its_ids(redis_server):
    a = await node(redis_server.url, "A")
    try:
        room = a.room_id
        shop = a.token("service", "shop-1")
        with recording() as exporter, json_logs("gateway", "signaling") as logs:
            async with a.http.post(f"{a.url}/api/rooms/{room}/orders",
                                   json={"order_id": "o-trace-1", "user": "v9", "sku": "D001",
                                         "qty": 1},
                                   headers={"Authorization": f"Bearer {shop}",
                                            "X-Request-Id": "req-order-1"}) as r:
                body = await r.json()
                assert r.status == 200, body
                assert r.headers["X-Request-Id"] == "req-order-1"
            await asyncio.sleep(0.1)
            spans = list(exporter.get_finished_spans())
            lines = list(logs.lines)
        tid, trace = the_trace(spans, "HTTP POST /api/rooms/{room}/orders")
        assert connected(trace)
        assert {"order.place", "redis.commit"} <= set(names(trace)), names(trace)
        place = next(s for s in trace if s.name == "order.place")
        assert place.attributes["livedesk.order.status"] == 200
        order_lines = [ln for ln in lines if ln["message"].startswith("order o-trace-1")]
        assert len(order_lines) == 1, lines
        for ln in lines:
            if ln.get("request_id") == "req-order-1":
                assert ln["trace_id"] == tid and ln["node"] == "A" and ln["user"] == "v9", ln
        assert order_lines[0]["request_id"] == "req-order-1"
        # a repeat of the same order is a trace of its own
        with recording() as exporter:
            async with a.http.post(f"{a.url}/api/rooms/{room}/orders",
                                   json={"order_id": "o-trace-1", "user": "v9", "sku": "D001",
                                         "qty": 1},
                                   headers={"Authorization": f"Bearer {shop}"}) as r:
                assert r.status == 200
            await asyncio.sleep(0.05)
            again = list(exporter.get_finished_spans())
        t2, trace2 = the_trace(again, "HTTP POST /api/rooms/{room}/orders")
        assert t2 != tid and connected(trace2)
        assert next(s for s in trace2 if s.name == "order.place").attributes[
            "livedesk.order.repeated"] is True
    finally:
        await stop_gateway(a)
