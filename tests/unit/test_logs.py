"""The log formatters (gateway/logs.py), the context ids (signaling/logctx.py), the W3C
traceparent helpers (signaling/tracing.py) and ``--log-format`` at the command line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.logs import JsonFormatter, TextFormatter, format_for, setup_logging
from gateway.tracing import wanted
from signaling import logctx, tracing
from tests.otel import recording

ROOT = Path(__file__).resolve().parents[2]


def record(msg: str, *args, level=logging.INFO, exc=None) -> logging.LogRecord:
    return logging.LogRecord("gateway.x", level, __file__, 1, msg, args, exc)


def test_json_line_has_the_bound_ids_and_nothing_unknown():
    with logctx.bound(session="s_1", user="v1", conversation="c_9", request_id=7):
        line = JsonFormatter(node="n1").format(record("hello %s", "there"))
    d = json.loads(line)
    assert d["message"] == "hello there" and d["level"] == "INFO" and d["logger"] == "gateway.x"
    assert d["ts"].endswith("Z") and "T" in d["ts"]
    assert (d["node"], d["session"], d["user"], d["conversation"], d["request_id"]) == (
        "n1", "s_1", "v1", "c_9", "7")
    assert "call" not in d and "trace_id" not in d
    # outside the block nothing is left behind
    d2 = json.loads(JsonFormatter(node="n1").format(record("x")))
    assert set(d2) == {"ts", "level", "logger", "message", "node"}


def test_a_bound_node_wins_over_the_process_default():
    with logctx.bound(node="B"):
        assert json.loads(JsonFormatter(node="A").format(record("x")))["node"] == "B"


def test_json_line_is_one_line_with_the_traceback():
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        rec = record("failed:\nsecond line", level=logging.ERROR, exc=sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    d = json.loads(line)
    assert d["message"] == "failed:\nsecond line" and "ValueError: bad" in d["exc"]


def test_json_line_has_trace_and_span_ids_inside_a_recorded_span():
    with recording(), tracing.span("unit") as s:
        d = json.loads(JsonFormatter().format(record("in span")))
        ctx = s.get_span_context()
    assert d["trace_id"] == format(ctx.trace_id, "032x")
    assert d["span_id"] == format(ctx.span_id, "016x")


def test_text_format_appends_the_ids():
    with logctx.bound(user="v1", call="k_1"):
        line = TextFormatter().format(record("hello"))
    assert line.endswith("gateway.x: hello [user=v1 call=k_1]"), line
    assert TextFormatter().format(record("plain")).endswith("gateway.x: plain")


def test_unknown_field_is_refused_and_long_ids_are_cut():
    with pytest.raises(TypeError, match="unknown log context field 'conv'"):
        logctx.bind(conv="c_1")
    with pytest.raises(TypeError):
        with logctx.bound(sesion="x"):
            pass
    with logctx.bound(request_id="r" * 1000):
        assert len(logctx.current()["request_id"]) == logctx.MAX_ID_CHARS


async def test_ids_follow_into_tasks_started_after_binding_and_stay_there():
    seen = {}

    async def child(name):
        await asyncio.sleep(0)
        seen[name] = logctx.current().get("conversation")

    async def request(cid):
        logctx.bind(conversation=cid)
        await asyncio.create_task(child(cid))

    await asyncio.gather(request("c_a"), request("c_b"))
    assert seen == {"c_a": "c_a", "c_b": "c_b"}
    assert "conversation" not in logctx.current()  # the tasks' bindings stayed theirs


def test_traceparent_round_trip_and_garbage():
    assert tracing.traceparent() == ""  # no span: nothing to carry
    assert tracing.context_from("") is None
    assert tracing.context_from("not-a-traceparent") is None
    assert tracing.context_from("00-" + "0" * 32 + "-" + "0" * 16 + "-01") is None
    with recording() as exporter:
        with tracing.span("parent"):
            tp = tracing.traceparent()
        assert tp.startswith("00-") and len(tp.split("-")) == 4
        with tracing.span("child", parent=tp):
            pass
        parent, child = sorted(exporter.get_finished_spans(), key=lambda s: s.name != "parent")
    assert child.context.trace_id == parent.context.trace_id
    assert child.parent.span_id == parent.context.span_id


def test_setup_logging_replaces_its_own_handler_and_sets_the_format():
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        buf = io.StringIO()
        setup_logging("text", "info", node="n1", stream=io.StringIO())
        h = setup_logging("json", "debug", node="n1", stream=buf)
        assert [x for x in root.handlers if getattr(x, "livedesk", False)] == [h]
        logging.getLogger("gateway.unit").debug("one %d", 1)
        d = json.loads(buf.getvalue().strip().splitlines()[-1])
        assert d["message"] == "one 1" and d["node"] == "n1" and d["level"] == "DEBUG"
        with pytest.raises(ValueError, match="text, json"):
            setup_logging("yaml", "info")
    finally:
        for x in list(root.handlers):
            if getattr(x, "livedesk", False):
                root.removeHandler(x)
        root.handlers[:] = before[0]
        root.setLevel(before[1])


def test_tracing_is_wanted_only_with_an_endpoint_and_not_disabled():
    assert wanted({}) == ""
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": " http://127.0.0.1:4318 "}) == \
        "http://127.0.0.1:4318"
    assert wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces",
                   "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:2"}).endswith("/v1/traces")
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                   "OTEL_SDK_DISABLED": "true"}) == ""


def test_the_format_is_the_one_asked_for_else_text_for_dev_and_json_otherwise():
    assert format_for(None, dev=True) == "text"
    assert format_for(None, dev=False) == "json"
    assert format_for("json", dev=True) == "json"
    assert format_for("text", dev=False) == "text"
    with pytest.raises(ValueError, match="not 'JSON'"):
        format_for("JSON", dev=False)


def test_serve_refuses_an_unknown_log_format_before_starting():
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
    env.update(PYTHONPATH=str(ROOT), LIVEDESK_LOG_FORMAT="yaml")
    p = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--dev", "--no-store",
                        "--port", "1"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "must be text or json, not 'yaml'" in p.stderr, p
