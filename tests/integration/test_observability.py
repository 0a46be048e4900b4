"""Issue 22 items 1 and 2 against a real ``livedesk serve`` process (loopback only):

- with ``--log-format json`` (the default without ``--dev``: ``unit/test_logs.py``) every
  line of a small chat (viewer, bot, escalation, agent) parses, names the node, and the ids
  are consistent: a session is always the same user, the requests of the conversation name it, every request line has a
  request id; no chat text and no token at INFO or above;
- with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, it exports its spans over OTLP/HTTP (to a
  collector this test runs on 127.0.0.1), and the trace ids on its log lines are the ids of
  traces it exported.

One process start for both (a gateway start costs seconds; docs/testing.md)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from signaling import TokenAuthority
from tests import token_watch
from tests.backends import free_port
from tests.children import die_with_parent
from tests.wsclient import WSClient

ROOT = Path(__file__).resolve().parents[2]
SECRET = "9d3c1f7a2b8e4d6c0a5f9e1b3c7d2a8f4e6b0c9d1a3f5e7b2c4d6a8f0e1b3c5d"
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
TEXTS = ("我的订单什么时候发货", "please call me back tomorrow")


class Collector:
    """An OTLP/HTTP trace receiver on loopback: keeps every exported span."""

    def __init__(self) -> None:
        self.spans: list = []
        self.runner: web.AppRunner | None = None
        self.port = free_port()

    async def receive(self, request: web.Request) -> web.Response:
        msg = ExportTraceServiceRequest()
        msg.ParseFromString(await request.read())
        for rs in msg.resource_spans:
            for ss in rs.scope_spans:
                self.spans.extend(ss.spans)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self.receive)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def wait_up(proc, base: str, http: aiohttp.ClientSession) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        assert proc.returncode is None, "livedesk serve exited"
        try:
            async with http.get(base + "/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("livedesk serve did not come up")


async def test_json_logs_of_a_real_chat_carry_consistent_ids_and_match_exported_traces(
        tmp_path):
    collector = Collector()
    await collector.start()
    port = free_port()
    log_path = token_watch.watch(tmp_path / "serve.log")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LIVEDESK_", "OTEL_"))}
    env.update(PYTHONPATH=str(ROOT), LIVEDESK_SECRET=SECRET, LIVEDESK_LOOP="asyncio",
               LIVEDESK_DRAIN_S="0",
               OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.port}",
               OTEL_BSP_SCHEDULE_DELAY="100")
    out_path = tmp_path / "stdout.txt"
    with open(log_path, "w") as err, open(out_path, "w") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--no-store",
            "--node-id", "obs-1", "--log-level", "DEBUG", "--log-format", "json", cwd=ROOT, env=env, stdout=out,
            stderr=err, preexec_fn=die_with_parent)
    base = f"http://127.0.0.1:{port}"
    tokens = TokenAuthority(SECRET)
    http = aiohttp.ClientSession()
    clients: list[WSClient] = []
    try:
        await wait_up(proc, base, http)

        async def connect(role, user, room=None, name=None):
            c = await WSClient(base, http).connect()
            clients.append(c)
            w = await c.hello(tokens.issue(user, role, room=room, name=name, ttl_s=600))
            assert w["type"] == "welcome", w
            return c, w["session"]

        agent, agent_session = await connect("agent", "ag-1", name="Ann")
        assert (await agent.request("agent.status", status="available"))["type"] == "ack"
        viewer, viewer_session = await connect("viewer", "v-1", room="demo", name="Vic")
        cid = (await viewer.request("conversation.open", room="demo"))["conversation"]
        sent = await viewer.request("message.send", conversation=cid, text=TEXTS[0],
                                    client_msg_id="m1")
        assert sent["type"] == "message", sent
        await viewer.wait_for(lambda f: f.get("type") == "message"
                              and f["from"]["role"] == "bot", timeout=15)
        await viewer.request("conversation.escalate", conversation=cid)
        await agent.event("conversation.assigned", conversation=cid, timeout=10)
        reply = await agent.request("message.send", conversation=cid, text=TEXTS[1],
                                    client_msg_id="a1")
        assert reply["type"] == "message", reply
        async with http.get(base + "/healthz", headers={"X-Request-Id": "probe-1"}) as r:
            assert r.headers["X-Request-Id"] == "probe-1"
        await asyncio.sleep(0.5)  # the batch processor exports every 100 ms
    finally:
        for c in clients:
            await c.close()
        await http.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await collector.close()

    raw = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
    assert raw, "no log output"
    lines = []
    for ln in raw:
        try:
            lines.append(json.loads(ln))
        except ValueError:
            raise AssertionError(f"not a JSON line: {ln!r}") from None
    for d in lines:
        assert {"ts", "level", "logger", "message"} <= set(d), d
        assert d["node"] == "obs-1", d
    # a session is always the same user, and the sessions are the two we opened
    users = {}
    for d in lines:
        if "session" in d:
            assert users.setdefault(d["session"], d["user"]) == d["user"], d
    assert users == {agent_session: "ag-1", viewer_session: "v-1"}, users
    handled = [d for d in lines if d["logger"] == "signaling.server"
               and " handled in " in d["message"]]
    assert len(handled) == 5, handled  # agent.status, open, send, escalate, send
    assert all(d.get("request_id") and d.get("session") for d in handled), handled
    conv_requests = [d for d in handled if d["message"].split()[0] in (
        "message.send", "conversation.escalate")]
    assert len(conv_requests) == 3, handled
    assert all(d.get("conversation") == cid for d in conv_requests), conv_requests
    # the access log line of the probe carries its request id
    assert any(d["logger"] == "aiohttp.access" and d.get("request_id") == "probe-1"
               for d in lines), [d for d in lines if d["logger"] == "aiohttp.access"]
    # nothing a person wrote, and no token, at INFO or above (nor any JWT at all)
    for d in lines:
        text = json.dumps(d, ensure_ascii=False)
        assert not JWT.search(text), d
        if d["level"] != "DEBUG":
            assert not any(t in text for t in TEXTS), d

    # traces: exported over OTLP, and the log lines' trace ids are theirs
    assert collector.spans, "no span reached the collector"
    exported = {s.trace_id.hex() for s in collector.spans}
    names = {s.name for s in collector.spans}
    assert {"ws message.send", "support.step", "ws conversation.open"} <= names, names
    traced = [d for d in lines if "trace_id" in d]
    assert any(d in traced for d in conv_requests)
    assert {d["trace_id"] for d in traced} <= exported
    send = [d for d in handled if d["message"].startswith("message.send")]
    assert all(d["trace_id"] in exported for d in send), send
