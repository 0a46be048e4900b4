"""Calls on an impaired link: the gateway path against a direct browser↔browser call, in one
run, under the same impairment of the viewer's link.

Headless Chromium (fake camera), two pages per call: the viewer (sends its camera over the
impaired link) and the agent (receives it; every figure is what the agent decodes, or what
the viewer's sender sends). The impairment is :mod:`benchmarks.impair_relay`, a userspace
UDP relay the viewer's remote candidates are rewritten to (this kernel has no netem):

* gateway: the real pages (``/`` and ``/agent``) through a gateway in its own process
  (``livedesk serve --dev``); the viewer↔gateway leg is impaired, the gateway↔agent leg
  is not;
* direct: the two pages of ``benchmarks/call_setup.py``'s p2p relay; the viewer↔agent link
  is impaired.

Loopback only (docs/testing.md#network-safety): the gateway process keeps its media on
127.0.0.1 (``tests.conftest.LOOPBACK_MEDIA_ENV``), Chromium runs with the tests'
``CHROMIUM_ARGS`` (one any-address UDP socket), the p2p relay moves the agent's candidates
to 127.0.0.1, and the impairment relay neither relays to nor answers any other address.

Scenarios (each direction of the viewer's link): ``loss2_rtt100`` 2 % loss, 50 ms each way;
``loss5_jitter30`` 5 % loss, 30 ± 30 ms; ``cap600`` the viewer's uplink capped at
600 kbit/s (400 ms queue); ``outage2s`` nothing lost, then everything for 2 s.

Per scenario and path: received fps, ``freezeCount`` / ``totalFreezesDuration`` (agent's
inbound-rtp), the viewer's sent bitrate every second, and ``adapt_s`` (cap600: seconds
until the sent bitrate stays under the cap) / ``recovery_s`` (outage2s: seconds from the
end of the outage until the agent decodes at half its earlier rate again). Ratios are
gateway ÷ direct. Diagnostics per path, to tell a freeze's cause: the agent's NACKs and
PLIs sent, key frames decoded, mean jitter-buffer time per frame (``jitter_buffer_ms``)
and the round trip it measures on its own leg (``agent_rtt_ms``). The last line printed is one JSON object.

    .venv/bin/python -m benchmarks.impaired [--seconds 20] [--scenarios loss2_rtt100,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.call_setup import auto_accept, escalate, poll, start_relay  # noqa: E402
from benchmarks.gateway_process import GatewayProcess  # noqa: E402
from benchmarks.impair_relay import IMPAIR_JS, Impairment, RelayProcess  # noqa: E402
from benchmarks.packet_trace import FRAME_LOG_JS, freezes  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE  # noqa: E402
from tests.e2e.ice_addresses import TRACK_PCS_JS  # noqa: E402

CAP_KBPS = 600.0
OUTAGE_AT_S = 8.0
OUTAGE_S = 2.0
WARMUP_S = 3.0


def scenario(name: str) -> tuple[Impairment, Impairment]:
    """(up, down) for the viewer's link."""
    if name == "loss2_rtt100":
        return Impairment(loss=0.02, delay_ms=50), Impairment(loss=0.02, delay_ms=50)
    if name == "loss5_jitter30":
        return (Impairment(loss=0.05, delay_ms=30, jitter_ms=30),
                Impairment(loss=0.05, delay_ms=30, jitter_ms=30))
    if name == "cap600":
        return Impairment(rate_kbps=CAP_KBPS, queue_ms=400), Impairment()
    if name == "outage2s":
        return Impairment(), Impairment()
    raise ValueError(f"unknown scenario {name!r}")


SCENARIOS = ("loss2_rtt100", "loss5_jitter30", "cap600", "outage2s")

STATS_JS = """async (which) => {
  const pcs = (window.__pcs || []).filter((p) => p.connectionState !== 'closed');
  const out = {t: Date.now()};
  for (const pc of pcs) {
    for (const s of (await pc.getStats()).values()) {
      if (s.kind !== 'video') continue;
      if (which === 'in' && s.type === 'inbound-rtp' && (s.framesDecoded || 0) >= (out.framesDecoded || 0)) {
        Object.assign(out, {framesDecoded: s.framesDecoded || 0, freezeCount: s.freezeCount || 0,
          totalFreezesDuration: s.totalFreezesDuration || 0, packetsLost: s.packetsLost || 0,
          packetsReceived: s.packetsReceived || 0, fps: s.framesPerSecond || 0,
          nackCount: s.nackCount || 0, pliCount: s.pliCount || 0,
          keyFramesDecoded: s.keyFramesDecoded || 0,
          jitterBufferDelay: s.jitterBufferDelay || 0,
          jitterBufferEmittedCount: s.jitterBufferEmittedCount || 0,
          fecPacketsReceived: s.fecPacketsReceived || 0,
          retransmittedPacketsReceived: s.retransmittedPacketsReceived || 0});
      }
      if (which === 'in' && s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime !== undefined) {
        out.rtt = s.currentRoundTripTime;
      }
      if (which === 'out' && s.type === 'outbound-rtp' && (s.bytesSent || 0) >= (out.bytesSent || 0)) {
        Object.assign(out, {bytesSent: s.bytesSent || 0, targetBitrate: s.targetBitrate || 0,
          framesEncoded: s.framesEncoded || 0, qualityLimitationReason: s.qualityLimitationReason,
          frameWidth: s.frameWidth || 0, nackCount: s.nackCount || 0,
          retransmittedPacketsSent: s.retransmittedPacketsSent || 0});
      }
    }
  }
  return out;
}"""


async def _loop_lag(lags: list[float]) -> None:
    """How late a 50 ms sleep wakes up in this process (Playwright, polling): its lag."""
    while True:
        t = time.monotonic()
        await asyncio.sleep(0.05)
        lags.append(time.monotonic() - t - 0.05)


async def sample(agent, viewer, relay: RelayProcess, name: str, seconds: float,
                 trace: dict | None = None, gw: GatewayProcess | None = None) -> dict:
    """Stats every 250 ms for ``seconds`` (the outage scenario switches the relay).

    ``trace`` (``--trace``): filled with the agent's rendered frames, the relay's datagrams
    and (``gw``) the gateway's packet events, and ``freezes`` lined up from them."""
    lags: list[float] = []
    lag_task = asyncio.get_running_loop().create_task(_loop_lag(lags))
    if trace is not None:
        await relay.trace(True)
        if gw is not None:
            await gw.packet_events()  # cleared; starts its loop-lag monitor
        await agent.evaluate(FRAME_LOG_JS)
        start_ms = time.time() * 1000.0 + WARMUP_S * 1000.0
    try:
        res = await _sample(agent, viewer, relay, name, seconds)
    finally:
        lag_task.cancel()
    if trace is not None:
        trace["frames"] = await agent.evaluate("window.__frames || []")
        trace["relay"] = await relay.log()
        await relay.trace(False)
        trace["gateway"] = await gw.packet_events() if gw is not None else None
        res["freezes"] = freezes(trace["frames"], trace["relay"], trace["gateway"], start_ms)
        res["gateway_loop_lag_ms"] = sorted(
            (e[2] for e in trace["gateway"] or [] if e[0] == "lag"), reverse=True)[:5]
    lags.sort()
    if lags:
        res["bench_loop_lag_ms_p50_p99"] = [round(lags[len(lags) // 2] * 1000, 1),
                                      round(lags[int(len(lags) * 0.99)] * 1000, 1)]
    return res


async def _sample(agent, viewer, relay: RelayProcess, name: str, seconds: float) -> dict:
    t0 = time.monotonic()
    ins, outs = [], []
    outage = name == "outage2s"
    in_outage = False
    outage_end = None
    while (now := time.monotonic() - t0) < seconds:
        if outage and now >= OUTAGE_AT_S and not in_outage and outage_end is None:
            await relay.outage(True)
            in_outage = True
        if in_outage and now >= OUTAGE_AT_S + OUTAGE_S:
            await relay.outage(False)
            in_outage = False
            outage_end = time.monotonic() - t0
        i = await agent.evaluate(STATS_JS, "in")
        o = await viewer.evaluate(STATS_JS, "out")
        ins.append((now, i))
        outs.append((now, o))
        await asyncio.sleep(0.25)
    return metrics(name, ins, outs, outage_end)


def _at(series, t):
    """The last sample at or before ``t``."""
    best = series[0]
    for s in series:
        if s[0] <= t:
            best = s
    return best


def metrics(name: str, ins, outs, outage_end) -> dict:
    start, end = _at(ins, WARMUP_S), ins[-1]
    span = end[0] - start[0]
    frames = end[1].get("framesDecoded", 0) - start[1].get("framesDecoded", 0)
    out = {
        "fps": round(frames / span, 2) if span > 0 else None,
        "freeze_count": end[1].get("freezeCount", 0) - start[1].get("freezeCount", 0),
        "freeze_s": round(end[1].get("totalFreezesDuration", 0)
                          - start[1].get("totalFreezesDuration", 0), 3),
        "packets_lost": end[1].get("packetsLost", 0),
    }
    # why a path froze (diagnostics, not must-shows): what the agent asked for, how long its
    # jitter buffer held frames on average, and the round trip it measured on its own leg
    for key, stat in (("nack_count", "nackCount"), ("pli_count", "pliCount"),
                      ("keyframes_decoded", "keyFramesDecoded"),
                      ("fec_packets_received", "fecPacketsReceived"),
                      ("rtx_packets_received", "retransmittedPacketsReceived")):
        out[key] = end[1].get(stat, 0) - start[1].get(stat, 0)
    o0, o1 = _at(outs, WARMUP_S)[1], outs[-1][1]
    out["sender_nacks_received"] = o1.get("nackCount", 0) - o0.get("nackCount", 0)
    out["sender_rtx_sent"] = (o1.get("retransmittedPacketsSent", 0)
                              - o0.get("retransmittedPacketsSent", 0))
    emitted = (end[1].get("jitterBufferEmittedCount", 0)
               - start[1].get("jitterBufferEmittedCount", 0))
    out["jitter_buffer_ms"] = (round((end[1].get("jitterBufferDelay", 0)
                                      - start[1].get("jitterBufferDelay", 0))
                                     / emitted * 1000, 1) if emitted > 0 else None)
    rtt = end[1].get("rtt")
    out["agent_rtt_ms"] = round(rtt * 1000, 1) if rtt is not None else None
    # sent bitrate, 1 s windows
    kbps = []
    for sec in range(1, int(outs[-1][0]) + 1):
        a, b = _at(outs, sec - 1), _at(outs, sec)
        dt = b[0] - a[0]
        if dt > 0:
            kbps.append(round((b[1].get("bytesSent", 0) - a[1].get("bytesSent", 0)) * 8 / dt
                              / 1000, 1))
    out["sent_kbps"] = kbps
    # the viewer's encoder target (REMB and its own loss-based control), once a second
    out["target_kbps"] = [round(_at(outs, sec)[1].get("targetBitrate", 0) / 1000, 1)
                          for sec in range(1, int(outs[-1][0]) + 1)]
    if name == "cap600":
        # seconds until every later 1 s window is under the cap (the relay's queue drains
        # at the cap, so "under" means the sender itself adapted, not the relay dropping)
        last_over = max((i + 1 for i, k in enumerate(kbps) if k > CAP_KBPS), default=0)
        out["adapt_s"] = float(last_over)
    if name == "outage2s" and outage_end is not None:
        before = _at(ins, OUTAGE_AT_S)
        ref = _at(ins, OUTAGE_AT_S - 3.0)
        rate = ((before[1].get("framesDecoded", 0) - ref[1].get("framesDecoded", 0))
                / max(before[0] - ref[0], 1e-3))
        rec = None
        after = [x for x in ins if x[0] >= outage_end]  # windows wholly after the outage
        for a, b in zip(after, after[1:], strict=False):
            dt = b[0] - a[0]
            if dt > 0 and (b[1].get("framesDecoded", 0) - a[1].get("framesDecoded", 0)) / dt \
                    >= rate / 2:
                rec = round(b[0] - outage_end, 2)  # decoding at half the earlier rate again
                break
        out["recovery_s"] = rec
        out["fps_before_outage"] = round(rate, 1)
    return out


async def _contexts(browser, relay: RelayProcess):
    vctx = await browser.new_context(viewport=PHONE, permissions=["camera", "microphone"])
    actx = await browser.new_context(viewport=DESKTOP, permissions=["camera", "microphone"])
    await vctx.expose_function("__relayFor", relay.port_for)
    await vctx.add_init_script(IMPAIR_JS)
    await actx.add_init_script(TRACK_PCS_JS)
    return vctx, actx


async def gateway_call(browser, gw: GatewayProcess, relay: RelayProcess, name: str, i: int,
                       seconds: float, trace: dict | None = None) -> dict:
    gw_url = gw.url
    vctx, actx = await _contexts(browser, relay)
    try:
        agent = await actx.new_page()
        await agent.goto(f"{gw_url}/agent?user=imp-agent-{i}&name=Bench")
        await agent.wait_for_selector('[data-testid="conn-state"][data-state="online"]')
        await auto_accept(agent)
        viewer = await vctx.new_page()
        await escalate(viewer, f"{gw_url}/?user=imp-viewer-{i}")
        await relay.set(*scenario(name))
        await viewer.click('[data-testid="video-call"]')
        if not await poll(agent, "window.__ld.calls.marks.firstFrame", 20):
            return {"error": "no remote frame at the agent within 20 s"}
        res = await sample(agent, viewer, relay, name, seconds, trace, gw)
        await viewer.evaluate("window.__ld.calls.hangup()")
        return res
    finally:
        await vctx.close()
        await actx.close()


async def direct_call(browser, url: str, relay: RelayProcess, name: str,
                      seconds: float, trace: dict | None = None) -> dict:
    vctx, actx = await _contexts(browser, relay)
    try:
        agent, viewer = await actx.new_page(), await vctx.new_page()
        await agent.goto(f"{url}/p2p?role=agent")
        await viewer.goto(f"{url}/p2p?role=viewer")
        await agent.evaluate("window.ready")
        await viewer.evaluate("window.ready")
        await relay.set(*scenario(name))
        await viewer.evaluate("window.tap()")
        if not await poll(agent, "window.marks.firstFrame", 20):
            return {"error": "no remote frame at the agent within 20 s"}
        return await sample(agent, viewer, relay, name, seconds, trace)
    finally:
        await vctx.close()
        await actx.close()


def _ratio(a, b, digits=2):
    if a is None or b is None:
        return None
    if b == 0:
        return 1.0 if a == 0 else None
    return round(a / b, digits)


async def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured per call")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the scenarios this many times (the JSON keeps the last run)")
    ap.add_argument("--trace", metavar="FILE",
                    help="record per-packet timelines (benchmarks/packet_trace.py) to FILE "
                         "(JSON lines) and line up each freeze; diagnostics, slower gateway")
    args = ap.parse_args(argv)
    names = [n for n in args.scenarios.split(",") if n]
    for n in names:
        scenario(n)  # unknown names fail before anything starts
    load_before = os.getloadavg()
    from playwright.async_api import async_playwright

    results: dict[str, dict] = {}
    relay = RelayProcess()
    await relay.start()
    gw = GatewayProcess(name="impaired", traced=bool(args.trace),
                        env={"LIVEDESK_BENCH_PACKET_TRACE": "1"} if args.trace else None)
    trace_file = open(args.trace, "a") if args.trace else None  # noqa: SIM115
    runner, url = await start_relay()
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                               args=CHROMIUM_ARGS)
            await gw.ready()
            try:
                for i, n in enumerate(names * args.repeat):
                    gt: dict | None = {} if trace_file else None
                    dt: dict | None = {} if trace_file else None
                    g = await gateway_call(browser, gw, relay, n, i, args.seconds, gt)
                    g["relay"] = await relay.stats()
                    d = await direct_call(browser, url, relay, n, args.seconds, dt)
                    d["relay"] = await relay.stats()
                    if trace_file is not None:
                        for path, t in (("gateway", gt), ("direct", dt)):
                            trace_file.write(json.dumps({"scenario": n, "run": i, "path": path,
                                                         **(t or {})}) + "\n")
                        trace_file.flush()
                    results[n] = {"gateway": g, "direct": d,
                                  "fps_ratio": _ratio(g.get("fps"), d.get("fps")),
                                  "freeze_ratio": _ratio(g.get("freeze_s"), d.get("freeze_s"))}
                    print(f"{n}: gateway {json.dumps(g)}\n{n}: direct  {json.dumps(d)}",
                          flush=True)
            finally:
                await browser.close()
    finally:
        await relay.close()
        await runner.cleanup()
        gw.stop()
        if trace_file is not None:
            trace_file.close()
    out: dict = {"benchmark": "impaired", "seconds": args.seconds, "scenarios": results,
                 "loadavg_before": [round(x, 2) for x in load_before],
                 "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    if "loss2_rtt100" in results:
        out["fps_ratio"] = results["loss2_rtt100"]["fps_ratio"]
        out["freeze_ratio"] = results["loss2_rtt100"]["freeze_ratio"]
    if "cap600" in results:
        out["adapt_s"] = results["cap600"]["gateway"].get("adapt_s")
        out["adapt_s_direct"] = results["cap600"]["direct"].get("adapt_s")
    if "outage2s" in results:
        out["recovery_s"] = results["outage2s"]["gateway"].get("recovery_s")
        out["recovery_s_direct"] = results["outage2s"]["direct"].get("recovery_s")
    print(json.dumps(out, ensure_ascii=False))
    return out


if __name__ == "__main__":
    asyncio.run(main())
