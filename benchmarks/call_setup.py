"""Call set-up time: viewer taps "video call" → first remote frame rendered at the agent.

Headless Chromium (fake camera/mic), median of N runs (default 10), measured two ways in
the same run:

* **gateway**: the real pages (`/` widget and `/agent` console) through a LiveDesk gateway
  in its own process (``livedesk serve --dev``, as operators run it: its own loop, not this
  one's, which Playwright keeps busy) and its aiortc media plane; the agent accepts as soon
  as the incoming call arrives (no human in the loop);
* **direct**: two fresh browser contexts per call, connected browser-to-browser, exchanging SDP
  and trickle ICE through a tiny in-process aiohttp WebSocket relay (the floor: no media
  server on the path).

The paths alternate call by call, every tap meets the same camera state (``--camera``: by
default Chromium's capture service stopped, as a viewer's tap meets it; :class:`Camera`),
the viewer's browser runs on its own CPU (``--devices``; :class:`Devices`), and the direct
pages negotiate before the camera as LiveDesk's do: only the path differs
(docs/performance.md, "Call set-up").

Both marks are wall-clock (`performance.timeOrigin + performance.now()`) in the two pages.
Prints both medians and their ratio; the last line is one JSON object.

    .venv/bin/python -m benchmarks.call_setup [--runs 10] [--trace] [--camera cold|warm]
        [--devices separate|shared] [--cpu-throttle 1] [--cpu-quota F]
        [--gateway-nice N] [--cpu-account [threads]] [--page-css CSS] [--floor bare|full]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSMsgType, web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import cpu_account  # noqa: E402
from benchmarks.common import free_port  # noqa: E402
from benchmarks.cpu_quota import CpuQuota  # noqa: E402
from benchmarks.gateway_process import GatewayProcess  # noqa: E402
from benchmarks.loopback import loopback_message  # noqa: E402
from benchmarks.setup_trace import BROWSER_TRACE_JS, relative, summarize  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE  # noqa: E402

P2P_PAGE = """<!doctype html><meta charset="utf-8"><title>p2p</title>
<video id="remote" autoplay playsinline muted></video>
<script>
// The floor: two browsers, no media server, and the same client-side order as LiveDesk's
// pages (web/js/call.js) so that only the path differs — each side builds its connection
// and negotiates at once on empty sendrecv transceivers and attaches the camera with
// replaceTrack when getUserMedia resolves (no second round).
const now = () => performance.timeOrigin + performance.now();
const role = new URLSearchParams(location.search).get('role');
// --floor full: what every call UI also does — its own camera in a self view, the other
// side's sound played (the bare floor shows the remote picture only)
const full = new URLSearchParams(location.search).get('floor') === 'full';
const ws = new WebSocket(`ws://${location.host}/relay?role=${role}`);
const send = (m) => ws.send(JSON.stringify(m));
const CONSTRAINTS = {audio: true, video: {width: 640, height: 480}};
window.marks = {};
let pc = null, media = null;
function makePc() {
  pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
  pc.onicecandidate = (e) => send({type: 'candidate', candidate: e.candidate ? e.candidate.toJSON() : null});
  pc.ontrack = (e) => {
    const v = document.getElementById('remote');
    if (e.track.kind === 'audio' && full) {
      const a = document.createElement('audio'); a.autoplay = true;
      a.srcObject = new MediaStream([e.track]); document.body.append(a);
    }
    if (e.track.kind !== 'video') return;
    v.srcObject = new MediaStream([e.track]);
    v.requestVideoFrameCallback(() => { if (!window.marks.firstFrame) window.marks.firstFrame = now(); });
  };
  return pc;
}
function attach(p, stream) {      // the camera's tracks onto the negotiated transceivers
  if (full) {                      // a self view, as the widget's tile
    const v = document.createElement('video');
    Object.assign(v, {autoplay: true, playsInline: true, muted: true, srcObject: stream});
    v.style.cssText = 'width:120px;height:90px;transform:scaleX(-1)';
    document.body.append(v);
  }
  for (const t of p.getTransceivers()) {
    const track = (t.receiver.track.kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks())[0];
    if (track) { t.sender.replaceTrack(track); t.sender.setStreams && t.sender.setStreams(stream); }
  }
}
window.reset = () => { if (pc) pc.close(); pc = null; media = null; window.marks = {}; document.getElementById('remote').srcObject = null; };
window.tap = async () => {           // the caller: the "video call" button
  window.marks.tap = now();
  media = navigator.mediaDevices.getUserMedia(CONSTRAINTS);
  send({type: 'ring'});
  window.stream = await media;
};
ws.onmessage = async (ev) => {
  const m = JSON.parse(ev.data);
  if (m.type === 'ring') {          // the callee accepts at once and offers (like the console)
    media = navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    const p = makePc();
    p.addTransceiver('audio', {direction: 'sendrecv'});
    p.addTransceiver('video', {direction: 'sendrecv'});
    media.then((s) => attach(p, s));
    await p.setLocalDescription(await p.createOffer());
    send({type: 'offer', sdp: p.localDescription.sdp});
  } else if (m.type === 'offer') {
    media = media || navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    const p = makePc();
    await p.setRemoteDescription({type: 'offer', sdp: m.sdp});
    for (const t of p.getTransceivers()) t.direction = 'sendrecv';
    media.then((s) => attach(p, s));
    await p.setLocalDescription(await p.createAnswer());
    send({type: 'answer', sdp: p.localDescription.sdp});
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

    async def blank(request):  # a secure-context page with no part in any call (Camera)
        return web.Response(text="<!doctype html><title>camera</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/p2p", page)
    app.router.add_get("/blank", blank)
    app.router.add_get("/relay", relay)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def poll(page, expr: str, timeout: float):
    """``expr``'s value in ``page`` once it is truthy (None after ``timeout`` seconds).

    Checked in the page every ``POLL_MS``, not by a round trip from here every 20 ms as
    before: the marks are timestamps the pages take themselves, so how soon we notice them
    changes nothing measured, while each round trip was a task in the page and work for the
    driver and this harness on the CPU the agent's browser uses — on a slow machine, during
    the very set-up being measured (both paths alike). A function evaluated through the
    driver (not ``wait_for_function``, whose string predicates the pages' CSP refuses)."""
    js = f"""(ms) => new Promise((resolve) => {{
      const get = () => {{ try {{ return ({expr}); }} catch (e) {{ return undefined; }} }};
      const t0 = performance.now();
      const tick = () => {{
        const v = get();
        if (v || performance.now() - t0 > ms) resolve(v || null);
        else setTimeout(tick, {POLL_MS});
      }};
      tick();
    }})"""
    return await page.evaluate(js, timeout * 1000)


POLL_MS = 100


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


async def throttle(page, rate: float) -> None:
    """Slow ``page``'s renderer (its main thread) ``rate`` times, as DevTools' CPU
    throttling does (``Emulation.setCPUThrottlingRate``): a diagnostic that shows on a
    fast machine what a slower one's pages do (``--cpu-throttle``; both paths' pages
    alike). The browsers' other processes and the gateway run at full speed."""
    if rate > 1:
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})


PAGE_CSS_JS = """document.addEventListener('DOMContentLoaded', () => {
  const s = document.createElement('style'); s.textContent = %s; document.head.append(s);
});"""


async def media_context(browser, viewport: dict | None = None, trace: bool = False,
                        css: str = ""):
    """A browser context allowed the (fake) camera and microphone, with the set-up trace's
    init script when ``trace``, and ``css`` added to every page (``--page-css``: what a
    piece of the pages costs, measured by hiding it; the pages' CSP is bypassed then)."""
    ctx = await browser.new_context(viewport=viewport, permissions=["camera", "microphone"],
                                    bypass_csp=bool(css))
    if trace:
        await ctx.add_init_script(BROWSER_TRACE_JS)
    if css:
        await ctx.add_init_script(PAGE_CSS_JS % json.dumps(css))
    return ctx


CAPTURE_IDLE_SHUTDOWN_S = 5.0
"""Chromium stops its video-capture service about this long after the last camera closes
(measured here: ``getUserMedia`` of the fake camera takes 4–9 ms within 4 s of the last
one, 45–75 ms on a quiet page after 6 s or more, 200+ ms while the machine is busy). The
next call then waits for the service to start again."""


class Camera:
    """The state of the browser's camera at each tap, the same for both paths.

    Why: the two paths leave different gaps between one call's hang-up and the next tap (a
    gateway run escalates a new conversation first: 2–4 s; a direct run only opens two
    pages: < 1 s), so without this the gateway's taps found the capture service stopped
    and the direct ones found it running, and the gateway path paid a camera start the
    direct one did not (session 10: `getUserMedia` 240 ms median in the gateway's pages
    against 27 ms in the direct ones, in the same run).

    * ``cold`` (the default, what a viewer's tap meets): each tap waits until no camera has
      been open for ``idle_s`` (> Chromium's shutdown delay), so both paths start the
      capture service;
    * ``warm`` (a camera preview just before the call): a helper page opens and closes the
      camera right before each tap, so neither path starts it.
    """

    def __init__(self, mode: str, idle_s: float = CAPTURE_IDLE_SHUTDOWN_S + 1.5) -> None:
        self.mode, self.idle_s = mode, idle_s
        self._closed_at = time.monotonic()
        self._helpers: list = []

    async def open(self, browsers, url: str) -> None:
        """``url``: a page of a secure context (loopback http is one) with no call in it;
        ``browsers``: each browser process has its own capture service."""
        if self.mode == "warm":
            for browser in browsers:
                ctx = await media_context(browser)
                page = await ctx.new_page()
                await page.goto(url)
                self._helpers.append(page)

    async def before_tap(self) -> None:
        if self.mode == "cold":
            left = self.idle_s - (time.monotonic() - self._closed_at)
            if left > 0:
                await asyncio.sleep(left)
        for page in self._helpers:
            await page.evaluate("""async () => {
                const s = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}});
                s.getTracks().forEach((t) => t.stop());
            }""")

    def closed(self) -> None:
        """Every camera of the call just closed (the call hung up, its pages gone)."""
        self._closed_at = time.monotonic()


@dataclass(frozen=True)
class Diagnostics:
    """What the diagnostic flags change, the same for both paths (none by default)."""

    cpu_throttle: float = 1  # --cpu-throttle: every page's main thread this many times slower
    gateway_nice: int = 0  # --gateway-nice: the gateway process's nice value
    # --cpu-account: CPU time per process ("process") or per thread ("threads"), tap to first
    # frame; "" is off
    cpu_account: str = ""
    page_css: str = ""  # --page-css: a style sheet added to both paths' pages
    floor: str = "bare"  # --floor: the direct pages show the remote picture only, or "full"


class CpuAccount:
    """``--cpu-account``: every process's CPU time from the tap to the first frame seen at
    the agent, summed over a path's calls (``benchmarks/cpu_account.py``); off, it costs
    nothing."""

    def __init__(self, how: str) -> None:
        self.on = bool(how)
        self.threads = how == "threads"
        self.total: Counter = Counter()
        self.calls = 0

    def start(self):
        return cpu_account.snapshot(threads=self.threads) if self.on else None

    def stop(self, before, ok: bool) -> None:
        if before is not None and ok:
            self.total.update(cpu_account.diff(cpu_account.snapshot(threads=self.threads),
                                               before))
            self.calls += 1

    def table(self) -> dict[str, float]:
        return cpu_account.table(self.total, self.calls)


class Devices:
    """Where the two browsers of a call run, the same for both paths.

    * ``separate`` (the default): the viewer's browser is its own Chromium process tree
      pinned to CPU 0 — a phone is its own device — and the agent's browser, the gateway,
      Playwright and this harness share the other CPUs (an agent's desk and a server).
    * ``shared``: one Chromium for both pages and every process on every CPU (sessions
      1–9's instrument). On 2 cores, everything of both paths then competes for the same
      CPUs at the same moment: in the gateway path the agent's console and the gateway
      started their work while the viewer's camera was starting, and the camera came up
      2.5× later than in the direct path (`--trace`: `viewer.gum.done`) because of CPU the
      viewer's phone would never share with them.

    Affinity is inherited: each browser is launched by its own Playwright driver, started
    while this process is pinned to that browser's CPUs.
    """

    def __init__(self, mode: str, quota: CpuQuota | None = None) -> None:
        self.mode = mode
        self.quota = quota  # --cpu-quota: every process tree on a fraction of its CPUs
        self.viewer = self.agent = None
        self._pws: list = []
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.pinned = mode == "separate" and len(cpus) >= 2
        self.viewer_cpus = set(cpus[:1])
        self.other_cpus = set(cpus[1:]) or set(cpus)
        self._all_cpus = set(cpus)

    async def _launch(self, cpus: set[int]):
        from playwright.async_api import async_playwright

        if self.pinned:
            os.sched_setaffinity(0, cpus)
        self._enter_quota(cpus)
        pw = await async_playwright().start()
        self._pws.append(pw)
        return await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

    async def open(self) -> None:
        if self.mode == "shared":
            self.viewer = self.agent = await self._launch(self._all_cpus)
            return
        self.viewer = await self._launch(self.viewer_cpus)
        self.agent = await self._launch(self.other_cpus)
        # the harness and the gateway it starts stay off the viewer's CPU (and in the
        # others' CPU group)
        if self.pinned:
            os.sched_setaffinity(0, self.other_cpus)
        self._enter_quota(self.other_cpus)

    def _enter_quota(self, cpus: set[int]) -> None:
        """This process (and what it starts next) into the quota group of ``cpus``."""
        if self.quota is not None:
            self.quota.enter("-".join(map(str, sorted(cpus))), len(cpus))

    def browsers(self) -> list:
        return [self.viewer] if self.viewer is self.agent else [self.viewer, self.agent]

    async def close(self) -> None:
        for b in self.browsers():
            if b is not None:
                try:
                    await b.close()
                except Exception:
                    pass
        for pw in self._pws:
            await pw.stop()
        if self.pinned:
            os.sched_setaffinity(0, self._all_cpus)
        if self.quota is not None:
            self.quota.close()

    def describe(self) -> dict:
        return {"devices": self.mode, "viewer_cpus": sorted(self.viewer_cpus) if self.pinned else None,
                "other_cpus": sorted(self.other_cpus) if self.pinned else None,
                **(self.quota.describe() if self.quota is not None else {})}


Outcome = tuple[float | None, str | None, list | None]  # ms, failure, timeline


class GatewayPath:
    """The real pages through a LiveDesk gateway in its own process; one agent console for
    all calls, a new viewer (context, page, conversation) per call."""

    name = "gateway"

    def __init__(self, devices: Devices, timeout: float, trace: bool,
                 diag: Diagnostics = Diagnostics()) -> None:
        self.devices, self.timeout, self.trace, self.diag = devices, timeout, trace, diag
        self.account = CpuAccount(diag.cpu_account)
        self.gw = GatewayProcess(traced=trace, name="call-setup")
        if diag.gateway_nice:
            os.setpriority(os.PRIO_PROCESS, self.gw.proc.pid, diag.gateway_nice)
        self.actx = self.agent = None

    async def open(self) -> None:
        await self.gw.ready()
        self.actx = await media_context(self.devices.agent, DESKTOP, self.trace, self.diag.page_css)
        self.agent = await self.actx.new_page()
        await throttle(self.agent, self.diag.cpu_throttle)
        await self.agent.goto(f"{self.gw.url}/agent?user=bench-agent&name=Bench")
        await self.agent.wait_for_selector('[data-testid="conn-state"][data-state="online"]')
        await auto_accept(self.agent)

    async def call(self, i: int, camera: Camera) -> Outcome:
        agent = self.agent
        vctx = await media_context(self.devices.viewer, PHONE, self.trace, self.diag.page_css)
        viewer = await vctx.new_page()
        await throttle(viewer, self.diag.cpu_throttle)
        try:
            await escalate(viewer, f"{self.gw.url}/?user=bench-viewer-{i}")
            # the previous call's marks stay until the agent accepts: never read those
            await agent.evaluate("window.__ld.calls.marks = {}")
            if self.trace:
                await self.gw.trace_clear()
                await agent.evaluate("window.__trace && (window.__trace.length = 0)")
            await camera.before_tap()
            cpu = self.account.start()
            await viewer.click('[data-testid="video-call"]')
            tap = await poll(viewer, "window.__ld.calls.marks.tap", 5)
            first = await poll(agent, "window.__ld.calls.marks.accept && "
                                      "window.__ld.calls.marks.firstFrame", self.timeout)
            self.account.stop(cpu, ok=bool(first))
            timeline = None
            if tap and first and first > tap:
                if self.trace:
                    marks = await agent.evaluate("window.__ld.calls.marks")
                    events = (await self.gw.trace_events() + await page_trace(viewer, "viewer")
                              + await page_trace(agent, "agent")
                              + [(f"agent.mark.{k}", v) for k, v in marks.items()])
                    timeline = relative(events, tap)
                out: Outcome = (first - tap, None, timeline)
            else:
                out = (None, f"run {i}: no remote frame at the agent within {self.timeout}s", None)
            await viewer.evaluate("window.__ld.calls.hangup()")
            await agent.wait_for_selector('[data-testid="call-view"]', state="hidden", timeout=10_000)
            conv = await agent.evaluate("window.__ld.selected")
            await agent.evaluate(f"window.__ld.client.request('conversation.resolve', {{conversation: '{conv}'}})")
            return out
        except Exception as e:  # keep going: a benchmark reports, it does not stop
            try:
                await agent.evaluate("window.__ld.calls.hangup()")
            except Exception:
                pass
            return None, f"run {i}: {type(e).__name__}: {e}"[:300], None
        finally:
            await vctx.close()

    async def close(self) -> None:
        try:
            if self.actx is not None:
                await self.actx.close()
        finally:
            self.gw.stop()


class DirectPath:
    """Two fresh browser contexts per call, connected browser-to-browser through a tiny
    in-process signalling relay (the floor: no media server on the path)."""

    name = "direct"

    def __init__(self, devices: Devices, timeout: float, trace: bool,
                 diag: Diagnostics = Diagnostics()) -> None:
        self.devices, self.timeout, self.trace, self.diag = devices, timeout, trace, diag
        self.account = CpuAccount(diag.cpu_account)
        self.runner = self.url = None

    async def open(self) -> None:
        self.runner, self.url = await start_relay()

    async def call(self, i: int, camera: Camera) -> Outcome:
        actx = await media_context(self.devices.agent, DESKTOP, self.trace, self.diag.page_css)
        vctx = await media_context(self.devices.viewer, PHONE, self.trace, self.diag.page_css)
        agent, viewer = await actx.new_page(), await vctx.new_page()
        await throttle(agent, self.diag.cpu_throttle)
        await throttle(viewer, self.diag.cpu_throttle)
        try:
            await agent.goto(f"{self.url}/p2p?role=agent&floor={self.diag.floor}")
            await viewer.goto(f"{self.url}/p2p?role=viewer&floor={self.diag.floor}")
            await agent.evaluate("window.ready")
            await viewer.evaluate("window.ready")
            await camera.before_tap()
            cpu = self.account.start()
            await viewer.evaluate("window.tap()")
            tap = await viewer.evaluate("window.marks.tap")
            first = await poll(agent, "window.marks.firstFrame", self.timeout)
            self.account.stop(cpu, ok=bool(first))
            if not first:
                return None, f"run {i}: no remote frame within {self.timeout}s", None
            timeline = None
            if self.trace:
                events = (await page_trace(viewer, "viewer") + await page_trace(agent, "agent")
                          + [("agent.mark.firstFrame", first)])
                timeline = relative(events, tap)
            return first - tap, None, timeline
        except Exception as e:
            return None, f"run {i}: {type(e).__name__}: {e}"[:300], None
        finally:
            await actx.close()
            await vctx.close()

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def run_interleaved(devices: Devices, runs: int, timeout: float, trace: bool,
                          camera: Camera, diag: Diagnostics = Diagnostics()) -> dict:
    """``runs`` calls on each path, alternating (gateway first on even calls, direct first on
    odd ones), so a machine that slows down or speeds up during the run weighs on both
    paths alike, and every tap meets the same camera state (:class:`Camera`)."""
    direct = DirectPath(devices, timeout, trace, diag)
    paths = [GatewayPath(devices, timeout, trace, diag), direct]
    res: dict = {p.name: {"ms": [], "failures": [], "timelines": []} for p in paths}
    try:
        for p in paths:
            await p.open()
        await camera.open(devices.browsers(), f"{direct.url}/blank")
        for i in range(runs):
            for p in (paths if i % 2 == 0 else paths[::-1]):
                ms, failure, timeline = await p.call(i, camera)
                camera.closed()
                r = res[p.name]
                if ms is not None:
                    r["ms"].append(ms)
                if failure:
                    r["failures"].append(failure)
                if timeline is not None:
                    r["timelines"].append(timeline)
    finally:
        for p in paths:
            await p.close()
    if diag.cpu_account:
        for p in paths:
            res[p.name]["cpu_ms_per_call"] = p.account.table()
    return res


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
    ap.add_argument("--camera", choices=("cold", "warm"), default="cold",
                    help="the camera's state at each tap, the same on both paths: cold (its "
                         "capture service stopped, as a viewer's tap meets it) or warm (a "
                         "camera opened and closed just before)")
    ap.add_argument("--camera-idle", type=float, default=CAPTURE_IDLE_SHUTDOWN_S + 1.5,
                    help="cold: seconds with no camera open before each tap")
    ap.add_argument("--devices", choices=("separate", "shared"), default="separate",
                    help="separate: the viewer's browser on its own CPU (a phone), the rest "
                         "on the others; shared: one browser, every process on every CPU")
    ap.add_argument("--cpu-throttle", type=float, default=1,
                    help="slow every page's renderer this many times (DevTools' CPU "
                         "throttling, both paths alike): what a slower machine's pages do; "
                         "1 (the default) is off")
    ap.add_argument("--cpu-quota", type=float, default=None,
                    help="run every process tree (both browsers, the gateway, this harness) "
                         "on this fraction of its CPUs (cgroup CPU bandwidth, 1 ms period): "
                         "a slower machine on this one, e.g. 0.33 for CPUs a third as fast "
                         "(benchmarks/cpu_quota.py; needs root and a cgroup cpu controller)")
    ap.add_argument("--gateway-nice", type=int, default=0,
                    help="the gateway process's nice value (e.g. -10: it runs before the "
                         "agent's browser on their shared CPU, as on a server of its own)")
    ap.add_argument("--cpu-account", nargs="?", const="process", default="",
                    choices=("process", "threads"),
                    help="report every process's CPU time (ms per call, by the CPUs it runs "
                         "on and its kind) from the tap to the first frame seen at the agent; "
                         "'threads': by each process's threads too")
    ap.add_argument("--page-css", default="",
                    help="a style sheet added to every page of both paths (a diagnostic: "
                         "what a piece of the pages costs, e.g. "
                         "'[data-testid=self-video]{visibility:hidden}')")
    ap.add_argument("--floor", choices=("bare", "full"), default="bare",
                    help="the direct path's pages: bare (the remote picture only, the "
                         "default) or full (also a self view of their camera and the other "
                         "side's sound played, as every call UI does): how much of the "
                         "ratio is the pages' weight rather than the path")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    camera = Camera(args.camera, args.camera_idle)
    devices = Devices(args.devices, CpuQuota(args.cpu_quota) if args.cpu_quota else None)
    try:
        await devices.open()
        res = await run_interleaved(devices, args.runs, args.timeout, args.trace, camera,
                                    Diagnostics(args.cpu_throttle, args.gateway_nice,
                                                args.cpu_account, args.page_css,
                                                args.floor))
    finally:
        await devices.close()
    g, gfail, gl = res["gateway"]["ms"], res["gateway"]["failures"], res["gateway"]["timelines"]
    d, dfail, dl = res["direct"]["ms"], res["direct"]["failures"], res["direct"]["timelines"]
    gm, dm = median(g), median(d)
    out = {
        "benchmark": "call_setup",
        "metric": "tap_to_first_remote_frame_at_agent_ms",
        "runs": args.runs,
        "camera": args.camera,
        **devices.describe(),
        "order": "interleaved",
        "cpu_throttle": args.cpu_throttle,
        "gateway_nice": args.gateway_nice,
        "page_css": args.page_css or None,
        "floor": args.floor,
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
    if args.cpu_account:
        for name in ("gateway", "direct"):
            out[f"cpu_ms_per_call_{name}"] = res[name]["cpu_ms_per_call"]
            print(f"--- {name}: CPU ms per call, tap → first frame seen, by CPUs and process")
            for k, v in res[name]["cpu_ms_per_call"].items():
                print(f"  {v:8.1f}  {k}")
    if args.trace:
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
