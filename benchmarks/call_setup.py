"""Call set-up time: viewer taps "video call" → first remote frame rendered at the agent.

Headless Chromium (fake camera/mic), median of N runs (default 10), measured two ways in
the same run:

* **gateway**: the real pages (`/` widget and `/agent` console) through a LiveDesk gateway
  in its own process (``livedesk serve --dev``, as operators run it: its own loop, not this
  one's, which Playwright keeps busy) and its aiortc media plane; the agent accepts as soon
  as the incoming call arrives (no human in the loop);
* **direct**: the same two browser contexts connected browser-to-browser, exchanging SDP
  and trickle ICE through a tiny in-process aiohttp WebSocket relay (the floor: no media
  server on the path).

Both marks are wall-clock (`performance.timeOrigin + performance.now()`) in the two pages.
Prints both medians and their ratio; the last line is one JSON object.

    .venv/bin/python -m benchmarks.call_setup [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

from aiohttp import WSMsgType, web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import free_port  # noqa: E402
from benchmarks.gateway_process import GatewayProcess  # noqa: E402
from benchmarks.loopback import loopback_message  # noqa: E402
from benchmarks.setup_trace import BROWSER_TRACE_JS, relative, summarize  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE  # noqa: E402

P2P_PAGE = """<!doctype html><meta charset="utf-8"><title>p2p</title>
<video id="remote" autoplay playsinline muted></video>
<script>
const now = () => performance.timeOrigin + performance.now();
const role = new URLSearchParams(location.search).get('role');
const ws = new WebSocket(`ws://${location.host}/relay?role=${role}`);
const send = (m) => ws.send(JSON.stringify(m));
window.marks = {};
let pc = null;
function makePc() {
  pc = new RTCPeerConnection({iceServers: []});
  pc.onicecandidate = (e) => send({type: 'candidate', candidate: e.candidate ? e.candidate.toJSON() : null});
  pc.ontrack = (e) => {
    const v = document.getElementById('remote');
    if (e.track.kind !== 'video') return;
    v.srcObject = new MediaStream([e.track]);
    v.requestVideoFrameCallback(() => { if (!window.marks.firstFrame) window.marks.firstFrame = now(); });
  };
  return pc;
}
window.reset = () => { if (pc) pc.close(); pc = null; window.marks = {}; document.getElementById('remote').srcObject = null; };
window.tap = async () => {           // the caller: the "video call" button
  window.marks.tap = now();
  send({type: 'ring'});
  const s = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 480}});
  window.stream = s;
};
ws.onmessage = async (ev) => {
  const m = JSON.parse(ev.data);
  if (m.type === 'ring') {          // the callee accepts at once, then offers (like the console)
    const s = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 480}});
    makePc();
    for (const t of s.getTracks()) pc.addTrack(t, s);
    await pc.setLocalDescription(await pc.createOffer());
    send({type: 'offer', sdp: pc.localDescription.sdp});
  } else if (m.type === 'offer') {
    const s = window.stream || await navigator.mediaDevices.getUserMedia({audio: true, video: true});
    makePc();
    for (const t of s.getTracks()) pc.addTrack(t, s);
    await pc.setRemoteDescription({type: 'offer', sdp: m.sdp});
    await pc.setLocalDescription(await pc.createAnswer());
    send({type: 'answer', sdp: pc.localDescription.sdp});
  } else if (m.type === 'answer') {
    await pc.setRemoteDescription({type: 'answer', sdp: m.sdp});
  } else if (m.type === 'candidate' && pc) {
    try { await pc.addIceCandidate(m.candidate || undefined); } catch (e) {}
  }
};
window.ready = new Promise((r) => ws.onopen = r);
</script>"""


async def start_relay():
    """Serve the p2p page and a two-party WebSocket relay (whatever one sends, the other gets,
    its ICE candidates moved to loopback by :func:`loopback_message`: the browsers' media
    never uses another address; docs/testing.md#network-safety)."""
    peers: dict[str, web.WebSocketResponse] = {}

    async def page(request):
        return web.Response(text=P2P_PAGE, content_type="text/html")

    async def relay(request):
        role = request.query["role"]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        peers[role] = ws
        async for m in ws:
            if m.type != WSMsgType.TEXT:
                break
            out = loopback_message(m.data)
            if out is None:
                continue
            for r, other in list(peers.items()):
                if r != role and not other.closed:
                    await other.send_str(out)
        return ws

    app = web.Application()
    app.router.add_get("/p2p", page)
    app.router.add_get("/relay", relay)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def poll(page, expr: str, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = await page.evaluate(expr)
        if v:
            return v
        await asyncio.sleep(0.02)
    return None


async def auto_accept(agent) -> None:
    """The agent's console accepts every call as soon as it arrives (after the console has
    shown the banner): no human in the loop."""
    await agent.evaluate("""() => window.__ld.client.on('call.incoming',
        () => setTimeout(() => window.__ld.calls.accept().catch(() => {}), 0))""")


async def escalate(viewer, url: str) -> None:
    """The viewer opens the widget at ``url``, asks for a person and is assigned (then a
    pause, so the agent's console settles on the new conversation)."""
    await viewer.goto(url)
    await viewer.wait_for_selector('[data-testid="conn-state"][data-state="online"]',
                                   state="attached")
    await viewer.click('[data-testid="open-support"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="bot"]')
    await viewer.click('[data-testid="talk-to-person"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="assigned"]')
    await asyncio.sleep(0.3)


async def page_trace(page, who: str) -> list[tuple[str, float]]:
    """The page's ``RTCPeerConnection`` timeline (``BROWSER_TRACE_JS``), names prefixed."""
    try:
        events = await page.evaluate("window.__trace || []")
    except Exception:
        return []
    return [(f"{who}.{n}", t) for n, t in events]


async def gateway_runs(browser, runs: int, timeout: float, trace: bool = False,
                       timelines: list | None = None) -> tuple[list[float], list[str]]:
    gw = GatewayProcess(traced=trace, name="call-setup")
    results, failures = [], []
    try:
        await gw.ready()
        actx = await browser.new_context(viewport=DESKTOP, permissions=["camera", "microphone"])
        if trace:
            await actx.add_init_script(BROWSER_TRACE_JS)
        agent = await actx.new_page()
        await agent.goto(f"{gw.url}/agent?user=bench-agent&name=Bench")
        await agent.wait_for_selector('[data-testid="conn-state"][data-state="online"]')
        await auto_accept(agent)
        for i in range(runs):
            vctx = await browser.new_context(viewport=PHONE, permissions=["camera", "microphone"])
            if trace:
                await vctx.add_init_script(BROWSER_TRACE_JS)
            viewer = await vctx.new_page()
            try:
                await escalate(viewer, f"{gw.url}/?user=bench-viewer-{i}")
                # the previous call's marks stay until the agent accepts: never read those
                await agent.evaluate("window.__ld.calls.marks = {}")
                if trace:
                    await gw.trace_clear()
                    await agent.evaluate("window.__trace && (window.__trace.length = 0)")
                await viewer.click('[data-testid="video-call"]')
                tap = await poll(viewer, "window.__ld.calls.marks.tap", 5)
                first = await poll(agent, "window.__ld.calls.marks.accept && "
                                          "window.__ld.calls.marks.firstFrame", timeout)
                if tap and first and first > tap:
                    results.append(first - tap)
                    if trace and timelines is not None:
                        marks = await agent.evaluate("window.__ld.calls.marks")
                        events = (await gw.trace_events() + await page_trace(viewer, "viewer")
                                  + await page_trace(agent, "agent")
                                  + [(f"agent.mark.{k}", v) for k, v in marks.items()])
                        timelines.append(relative(events, tap))
                else:
                    failures.append(f"run {i}: no remote frame at the agent within {timeout}s")
                await viewer.evaluate("window.__ld.calls.hangup()")
                await agent.wait_for_selector('[data-testid="call-view"]', state="hidden", timeout=10_000)
                conv = await agent.evaluate("window.__ld.selected")
                await agent.evaluate(f"window.__ld.client.request('conversation.resolve', {{conversation: '{conv}'}})")
            except Exception as e:  # keep going: a benchmark reports, it does not stop
                failures.append(f"run {i}: {type(e).__name__}: {e}"[:300])
                try:
                    await agent.evaluate("window.__ld.calls.hangup()")
                except Exception:
                    pass
            finally:
                await vctx.close()
        await actx.close()
    finally:
        gw.stop()
    return results, failures


async def direct_runs(browser, runs: int, timeout: float,
                      timelines: list | None = None) -> tuple[list[float], list[str]]:
    runner, url = await start_relay()
    results, failures = [], []
    try:
        for i in range(runs):
            actx = await browser.new_context(viewport=DESKTOP, permissions=["camera", "microphone"])
            vctx = await browser.new_context(viewport=PHONE, permissions=["camera", "microphone"])
            if timelines is not None:
                await actx.add_init_script(BROWSER_TRACE_JS)
                await vctx.add_init_script(BROWSER_TRACE_JS)
            agent, viewer = await actx.new_page(), await vctx.new_page()
            try:
                await agent.goto(f"{url}/p2p?role=agent")
                await viewer.goto(f"{url}/p2p?role=viewer")
                await agent.evaluate("window.ready")
                await viewer.evaluate("window.ready")
                await viewer.evaluate("window.tap()")
                tap = await viewer.evaluate("window.marks.tap")
                first = await poll(agent, "window.marks.firstFrame", timeout)
                if first:
                    results.append(first - tap)
                    if timelines is not None:
                        events = (await page_trace(viewer, "viewer") + await page_trace(agent, "agent")
                                  + [("agent.mark.firstFrame", first)])
                        timelines.append(relative(events, tap))
                else:
                    failures.append(f"run {i}: no remote frame within {timeout}s")
            except Exception as e:
                failures.append(f"run {i}: {type(e).__name__}: {e}"[:300])
            finally:
                await actx.close()
                await vctx.close()
    finally:
        await runner.cleanup()
    return results, failures


def median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


async def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a frame")
    ap.add_argument("--trace", action="store_true",
                    help="record timestamps along each set-up (pages and gateway) and print "
                         "the median timeline of each path")
    ap.add_argument("--trace-out", default=None,
                    help="with --trace: write every run's timeline to this JSON file")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    gl: list | None = [] if args.trace else None
    dl: list | None = [] if args.trace else None
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            g, gfail = await gateway_runs(browser, args.runs, args.timeout, args.trace, gl)
            d, dfail = await direct_runs(browser, args.runs, args.timeout, dl)
        finally:
            await browser.close()
    gm, dm = median(g), median(d)
    out = {
        "benchmark": "call_setup",
        "metric": "tap_to_first_remote_frame_at_agent_ms",
        "runs": args.runs,
        "gateway_median_ms": gm,
        "direct_median_ms": dm,
        "ratio_gateway_over_direct": round(gm / dm, 2) if gm and dm else None,
        "gateway_ms": [round(x, 1) for x in g],
        "direct_ms": [round(x, 1) for x in d],
        "setup_ratio": round(gm / dm, 2) if gm and dm else None,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "gateway_failures": gfail,
        "direct_failures": dfail,
    }
    print(f"through the gateway : median {gm} ms over {len(g)}/{args.runs} runs {out['gateway_ms']}")
    print(f"direct browser↔browser: median {dm} ms over {len(d)}/{args.runs} runs {out['direct_ms']}")
    print(f"ratio gateway/direct: {out['ratio_gateway_over_direct']}")
    for f in gfail + dfail:
        print("  failure:", f)
    if gl is not None and dl is not None:
        if args.trace_out:
            Path(args.trace_out).write_text(json.dumps({"gateway": gl, "direct": dl}, indent=0))
        for name, tl in (("gateway", gl), ("direct", dl)):
            med = summarize(tl)
            out[f"trace_{name}_median_ms"] = med
            print(f"--- {name}: median ms after tap of each step's first occurrence")
            for n, t in med.items():
                print(f"  {t:8.1f}  {n}")
    print(json.dumps(out, ensure_ascii=False))
    return out


if __name__ == "__main__":
    asyncio.run(main())
