"""Issue 22's must-show for a call: its setup — call.request, call.accept, each side's
rtc.offer (and candidates) until both peers are connected — is ONE connected trace, and
every log line of those requests carries the call's trace id and call id (real aiortc
peers; the SDK's in-memory exporter; JSON lines as gateway/logs.py writes them)."""

from __future__ import annotations

import asyncio

from tests.media.conftest import escalated, ring
from tests.media.rtc_client import GREEN, RED, RtcClient
from tests.otel import by_trace, connected, json_logs, recording


async def test_a_call_setup_is_one_trace_and_its_log_lines_carry_its_ids(gw):
    v, a, cid = await escalated(gw)
    vc = ac = None
    with recording() as exporter, json_logs("gateway", "signaling") as logs:
        try:
            call = await ring(v, a, cid)
            vc, ac = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN)
            await vc.start(call)
            await ac.start(call)
            await v.event("call.state", call=call, state="active", timeout=10)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not any(s.name == "call.setup" for s in exporter.get_finished_spans()):
                assert loop.time() < deadline, "call.setup never ended"
                await asyncio.sleep(0.02)
            spans = list(exporter.get_finished_spans())
            lines = list(logs.lines)
        finally:
            for c in (vc, ac):
                if c is not None:
                    await c.close()

    setup = [s for s in spans if s.name == "call.setup"]
    assert len(setup) == 1, [s.name for s in spans]
    s0 = setup[0]
    assert s0.attributes["livedesk.call"] == call
    assert s0.attributes["livedesk.call.outcome"] == "active"
    assert [e.name for e in s0.events].count("peer connected") == 2
    tid = format(s0.context.trace_id, "032x")
    trace = by_trace(spans)[tid]
    assert connected(trace), [(s.name, s.parent) for s in trace]
    root = next(s for s in trace if s.parent is None)
    assert root.name == "ws call.request"
    got = sorted(s.name for s in trace)
    assert "ws call.accept" in got and got.count("ws rtc.offer") == 2, got
    # every request of the setup hangs under call.setup
    for s in trace:
        if s.name.startswith("ws ") and s is not root:
            assert s.parent.span_id == s0.context.span_id, s.name

    # log lines: every line naming the call that was logged before the setup ended is in
    # its trace, and so is every line logged inside one of its spans
    span_ids = {format(s.context.span_id, "016x") for s in trace}
    of_call = [ln for ln in lines if ln.get("call") == call or ln.get("span_id") in span_ids]
    handled = [ln for ln in of_call if ln["message"].startswith(("call.accept handled",
                                                                  "rtc.offer handled"))]
    assert len(handled) == 3, of_call
    assert all(ln.get("trace_id") == tid for ln in of_call), of_call
    assert all(ln.get("call") == call for ln in handled), handled
    assert {ln["user"] for ln in handled} == {"v1", "a1"}
    assert all(ln.get("node") == gw.gw.config.node_id for ln in of_call), of_call
