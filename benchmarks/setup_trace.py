"""Timestamps along a call's set-up, for ``benchmarks/call_setup.py --trace``.

Why: "the gateway path is 1.6× slower" says nothing about *where*. This records wall-clock
milliseconds (comparable with the pages' ``performance.timeOrigin + performance.now()``,
same machine) at each step, on both sides:

* in the pages, through an init script that wraps ``RTCPeerConnection`` (created, local and
  remote descriptions applied, ICE gathering complete, ICE/DTLS connected, first track);
  the pages themselves are not changed;
* in the gateway (in-process), by wrapping a few methods of the media plane: the
  ``call.*``/``rtc.*`` handlers, the gateway's answer and offer, its connections' states,
  the first packet of each source, a destination's sender starting, the PLIs sent upstream
  and the first packet forwarded to each destination.

Benchmark instrumentation only: nothing here is imported by the gateway.
"""

from __future__ import annotations

import functools
import re
import time
from collections import defaultdict

BROWSER_TRACE_JS = r"""
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const trace = window.__trace = [];
  const mark = (name) => trace.push([name, now()]);
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia && !md.getUserMedia.__traced) {
    const gum = md.getUserMedia.bind(md);
    md.getUserMedia = async (c) => { mark('gum.start'); const s = await gum(c); mark('gum.done'); return s; };
    md.getUserMedia.__traced = true;
  }
  try {  // main-thread tasks over 50 ms: what delays the page's reaction to events
    new PerformanceObserver((l) => l.getEntries().forEach((e) =>
      trace.push([`longtask.${Math.round(e.duration)}ms`, performance.timeOrigin + e.startTime])
    )).observe({ type: 'longtask', buffered: false });
  } catch (e) {}
  const Orig = window.RTCPeerConnection;
  if (!Orig || Orig.__traced) return;
  let n = 0;
  function Traced(...args) {
    const pc = new Orig(...args);
    const id = n++;
    const m = (what) => mark(`pc${id}.${what}`);
    m('created');
    for (const fn of ['setLocalDescription', 'setRemoteDescription', 'createOffer', 'createAnswer']) {
      const orig = pc[fn].bind(pc);
      pc[fn] = async (...a) => {
        const kind = a[0] && a[0].type ? `.${a[0].type}` : '';
        m(`${fn}${kind}.start`);
        const r = await orig(...a);
        m(`${fn}${kind}.done`);
        return r;
      };
    }
    pc.addEventListener('icegatheringstatechange', () => m(`gathering.${pc.iceGatheringState}`));
    pc.addEventListener('iceconnectionstatechange', () => m(`ice.${pc.iceConnectionState}`));
    pc.addEventListener('connectionstatechange', () => m(`conn.${pc.connectionState}`));
    pc.addEventListener('track', (e) => m(`track.${e.track.kind}`));
    return pc;
  }
  Traced.prototype = Orig.prototype;
  Traced.__traced = true;
  Object.setPrototypeOf(Traced, Orig);
  window.RTCPeerConnection = Traced;
})();
"""


class GatewayTrace:
    """Events recorded in the gateway process: ``(name, wall ms)``, cleared per run."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self._seen: set[str] = set()

    def mark(self, name: str, once: bool = False) -> None:
        if once:
            if name in self._seen:
                return
            self._seen.add(name)
        self.events.append((name, time.time() * 1000.0))

    def clear(self) -> None:
        self.events.clear()
        self._seen.clear()


def install_gateway_trace() -> GatewayTrace:
    """Wrap the media plane's steps (process-wide; the benchmark process only)."""
    from gateway.media import peer as peer_mod
    from gateway.media import rtp_sink as sink_mod
    from gateway.media import service as service_mod
    from gateway.media.forward import passthrough as pt_mod

    tr = GatewayTrace()
    svc = service_mod.MediaService

    def wrap_async(cls, name, label):
        orig = getattr(cls, name)

        @functools.wraps(orig)
        async def wrapper(self, *a, **kw):
            who = getattr(a[0], "user", "") if a else ""
            who = who if isinstance(who, str) and who else getattr(self, "owner", "")
            tr.mark(f"gw.{label}.start:{who}")
            try:
                return await orig(self, *a, **kw)
            finally:
                tr.mark(f"gw.{label}.done:{who}")
        setattr(cls, name, wrapper)

    for name, label in (("on_request", "call.request"), ("on_accept", "call.accept"),
                        ("on_offer", "rtc.offer"), ("on_answer", "rtc.answer")):
        wrap_async(svc, name, label)
    wrap_async(peer_mod.Peer, "answer", "peer.answer")

    orig_offer = peer_mod.Peer._offer_if_wanted

    async def offer_if_wanted(self):
        was = self.offering
        await orig_offer(self)
        if self.offering and not was:
            tr.mark(f"gw.offer.sent:{self.owner}")
    peer_mod.Peer._offer_if_wanted = offer_if_wanted

    orig_init = peer_mod.Peer.__init__

    def init(self, owner, *a, **kw):
        orig_init(self, owner, *a, **kw)
        pc = self.pc

        @pc.on("iceconnectionstatechange")
        def _ice() -> None:
            tr.mark(f"gw.ice.{pc.iceConnectionState}:{owner}")

        @pc.on("connectionstatechange")
        def _conn() -> None:
            tr.mark(f"gw.conn.{pc.connectionState}:{owner}")
    peer_mod.Peer.__init__ = init

    orig_configure = sink_mod.RtpSink._configure

    def configure(self, params):
        tr.mark(f"gw.sender.start.{self.kind}")
        return orig_configure(self, params)
    sink_mod.RtpSink._configure = configure

    orig_forward = sink_mod.RtpSink.forward

    def forward(self, *a, **kw):
        was = self.started
        orig_forward(self, *a, **kw)
        if self.started and not was:
            tr.mark(f"gw.first.forwarded.{self.kind}")
    sink_mod.RtpSink.forward = forward

    orig_pli = pt_mod.PassthroughForwarder._send_pli

    def send_pli(self, src):
        ok = orig_pli(self, src)
        tr.mark(f"gw.pli.{'sent' if ok else 'no-ssrc'}:{src.key.owner}")
        return ok
    pt_mod.PassthroughForwarder._send_pli = send_pli

    orig_on_packet = pt_mod.PassthroughForwarder._on_packet

    def on_packet(self, src, p):
        tr.mark(f"gw.first.packet.{src.key.kind}:{src.key.owner}", once=True)
        if src.key.kind == "video" and src.tap is not None and pt_mod.starts_keyframe(
                (src.tap.mime_of(p.payload_type) or "").lower(), p.payload):
            tr.mark(f"gw.first.keyframe:{src.key.owner}", once=True)
        return orig_on_packet(self, src, p)
    pt_mod.PassthroughForwarder._on_packet = on_packet
    return tr


def _normal(name: str) -> str:
    """One name per step across runs: no connection index, no per-run user id."""
    name = re.sub(r"\.pc\d+\.", ".pc.", name)
    return re.sub(r"bench-(viewer|agent)(-\d+)?", r"\1", name)


def relative(events: list[tuple[str, float]], t0: float) -> list[tuple[str, float]]:
    """Events sorted by time, as ms after ``t0``."""
    return [(_normal(n), round(t - t0, 1)) for n, t in sorted(events, key=lambda e: e[1])]


def summarize(runs: list[list[tuple[str, float]]]) -> dict[str, float]:
    """Median offset of each event name's first occurrence over the runs."""
    firsts: dict[str, list[float]] = defaultdict(list)
    for events in runs:
        seen: set[str] = set()
        for name, t in events:
            if name not in seen:
                seen.add(name)
                firsts[name].append(t)
    out = {}
    for name, ts in firsts.items():
        ts.sort()
        out[name] = ts[len(ts) // 2]
    return dict(sorted(out.items(), key=lambda kv: kv[1]))
