"""Media forwarding cost and latency: N concurrent 1:1 video calls through one gateway.

For each media mode (``passthrough`` and ``transcode``) in the same run, a real gateway
process (``livedesk serve --media-mode …``, so its CPU is read from /proc/<pid>/stat) hosts
N calls (default 8). Each call is a viewer and an agent that escalate, ring and accept over
the real ``/ws`` protocol, then send 640×480@30 VP8 video and Opus audio in both directions.

The client side stays cheap: a 3 s VP8 clip and one second of Opus are encoded once at
start, then replayed as ``av.Packet``s through aiortc's pre-encoded sender path (a PLI/FIR
restarts the clip at its keyframe); receivers are tapped like the gateway's own receivers
(``compat.receiver_tap.tap_receiver``): frames are counted and timed when their last packet
arrives, never decoded.

Latency is carried in the media: every frame gets an RTP timestamp of ``n·3000 + random
jitter`` (< 1500), remembered with its send time; the gateway keeps timestamps up to a
constant offset (both modes), which the receiver recovers by matching, so each received
frame maps back to its send time. A direct aiortc→aiortc pair in the same client process
(no gateway) is measured alongside: ``added_latency`` is the through-gateway figure minus
that direct figure (the clients' own send/receive scheduling cancels out).

Reported per mode: gateway CPU core-seconds per second per call, RSS per call, delivered
video fps per stream, video frame loss, latency p50/p95 (through the gateway, direct, and
added), audio packets per second per stream, and the time from a joiner's ``rtc.answer``
(to the gateway offer carrying the other side's tracks) to the first video frame (or from the gateway's ``rtc.answer`` when that already carries
them).

Mode ``record`` is passthrough with every call recorded (docs/media.md#recording): the
agent asks, the viewer consents before the window; both sides' encoded frames are muxed to
WebM by the gateway during it, and stored after it. ``recording_cpu_ratio`` is its gateway
CPU per call over passthrough's in the same run (target ≤ 1.3), and
``recording_frame_loss_added`` its video frame loss minus passthrough's.

    .venv/bin/python -m benchmarks.media [--calls 8[,16,32,…]] [--seconds 10] [--modes passthrough,transcode,record] [--json]

Capacity ramp (``--calls 8,16,32``): after the first level (every mode), each further level
runs passthrough alone; per level the gateway's CPU per call and in all, the load clients'
CPU (this process: every client peer, pre-encoded media), fps, frame loss and added latency.
``calls_max`` is the highest level the clients drove (every stream ≥ 90 % of 30 fps and
≤ 1 % frames lost) and ``cpu_per_call_at_max`` the gateway's CPU per call there
(``cpu_per_call_at_max_ratio``: over the first level's).

The last line with ``--json`` is one JSON object (``cpu_per_call_passthrough``,
``cpu_per_call_transcode``, ``cpu_ratio``, ``added_latency_ms_p50_passthrough``,
``frame_loss_passthrough``, ``calls``, ``cpu_per_call_record``, ``recording_cpu_ratio``,
``recording_frame_loss_added``, ``recordings_saved_record``, …).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import fractions
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import av  # noqa: E402
import numpy as np  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.codecs.vpx import Vp8Encoder  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402

from benchmarks.common import cpu_model, free_port, pct  # noqa: E402
from gateway.media.compat.receiver_tap import tap_receiver  # noqa: E402
from gateway.media.rtp_sink import RtpSink  # noqa: E402
from gateway.media.tracks import RtpTrack  # noqa: E402
from tests.wsclient import WSClient  # noqa: E402

SECRET = "ed146a75fce3791779c2895d1442a4e9805a632f5d4ae90b451c053c5211707d"  # 32 random bytes: the gateway refuses a weaker secret
W, H, FPS = 640, 480, 30
VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)
TICK = 90000 // FPS
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# --- media encoded once ----------------------------------------------------------------------

def encode_clip(frames: int = 90, bitrate: int = 600_000) -> list[tuple[bytes, bool]]:
    """A 640×480 VP8 clip with motion (keyframe first, then deltas only)."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = W, H, "yuv420p"
    enc.bit_rate = bitrate
    enc.time_base = fractions.Fraction(1, FPS)
    enc.gop_size = 10_000
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for i in range(frames):
        img = np.empty((H, W, 3), np.uint8)
        img[..., 0] = (xx + 4 * i) % 256
        img[..., 1] = (yy + 2 * i) % 256
        img[..., 2] = 128
        x0 = (i * 7) % (W - 80)
        img[100:180, x0:x0 + 80] = (255, 255, 255)
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        f.pts = i
        for p in enc.encode(f):
            out.append((bytes(p), bool(p.is_keyframe)))
    for p in enc.encode(None):
        out.append((bytes(p), bool(p.is_keyframe)))
    assert out and out[0][1], "the clip must start with a keyframe"
    return out


def encode_opus(seconds: float = 1.0) -> list[bytes]:
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = 48000
    enc.layout = "stereo"
    enc.format = "s16"
    enc.bit_rate = 32000
    out = []
    n = int(seconds * 50)
    t = np.arange(960 * n) / 48000
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    for i in range(n):
        chunk = np.repeat(pcm[i * 960:(i + 1) * 960], 2).reshape(1, -1)
        fr = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
        fr.sample_rate = 48000
        fr.pts = i * 960
        out += [bytes(p) for p in enc.encode(fr)]
    return out


class Paced(MediaStreamTrack):
    """A replayed track that hands out its ``n``-th packet no earlier than ``n × period``
    after its first: a real sender's pace, so the gateway sees packets at wire rate."""

    period_s = 0.02

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.t0: float | None = None

    async def wait_turn(self) -> None:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
            return
        wait = self.t0 + self.n * self.period_s - now
        if wait > 0:
            await asyncio.sleep(wait)


class ReplayVideo(Paced):
    """The clip as ``av.Packet``s at 30 fps; send time remembered per RTP timestamp."""

    kind = "video"
    period_s = 1 / FPS

    def __init__(self, clip: list[tuple[bytes, bool]]):
        super().__init__()
        self.clip = clip
        self.i = 0
        self.sent: dict[int, float] = {}
        self.keyframe_requests = 0
        self.last = 0  # clip index of the frame recv() returned last

    def keyframe(self) -> None:
        self.keyframe_requests += 1
        self.i = 0  # the clip starts with a keyframe

    async def recv(self) -> av.Packet:
        await self.wait_turn()
        data, _ = self.clip[self.i]
        self.last = self.i
        self.i = (self.i + 1) % len(self.clip)
        pts = self.n * TICK + random.randrange(0, TICK // 2)
        pkt = av.Packet(data)
        pkt.pts, pkt.time_base = pts, VIDEO_TB
        self.sent[pts] = time.monotonic()
        self.n += 1
        return pkt


class ReplayAudio(Paced):
    kind = "audio"
    period_s = 0.02  # one 20 ms Opus packet each

    def __init__(self, packets: list[bytes]):
        super().__init__()
        self.packets = packets

    async def recv(self) -> av.Packet:
        await self.wait_turn()
        pkt = av.Packet(self.packets[self.n % len(self.packets)])
        pkt.pts, pkt.time_base = self.n * 960, AUDIO_TB
        self.n += 1
        return pkt


@dataclass
class Rx:
    """One received stream: (pts relative to its first frame, arrival) per frame."""

    kind: str
    frames: list[tuple[int, float]] = field(default_factory=list)

    def on_frame(self, data: bytes, pts: int, key: bool, pt: int) -> None:
        self.frames.append((pts, time.monotonic()))


def attach(pc: RTCPeerConnection, on_track) -> None:
    """Tap every receiver the moment its track appears (before it starts): no decoding."""
    def track(t: MediaStreamTrack) -> None:
        tr = next(x for x in pc.getTransceivers() if x.receiver.track is t)
        rx = Rx(t.kind)
        tap_receiver(tr.receiver, t.kind).sink = rx.on_frame
        on_track(tr, rx)
    pc.on("track", track)


def packetize_clip(clip: list[tuple[bytes, bool]]) -> list[list[bytes]]:
    """The clip's VP8 RTP payloads, per frame, made once (aiortc's own packetizer)."""
    enc = Vp8Encoder()
    out = []
    for data, _ in clip:
        pkt = av.Packet(data)
        pkt.pts, pkt.time_base = 0, VIDEO_TB
        out.append(enc.pack(pkt)[0])
    return out


class RawSend:
    """Sends a replayed track as ready-made RTP payloads through the gateway's own
    :class:`~gateway.media.rtp_sink.RtpSink` (headers written per packet, no packetizer,
    no encoder loop): the cheapest sender aiortc can host, so that the clients take as
    little as possible of the two cores the gateway runs on. PLI/FIR restart the clip at
    its keyframe, NACKs are answered from the sink's history."""

    SSRC = 0x1D

    def __init__(self, track, payloads: list[list[bytes]] | None, mime: str):
        self.track = track
        self.payloads = payloads  # per clip frame (video); None: one packet per recv (audio)
        request = track.keyframe if payloads is not None else (lambda: None)
        self.sink = RtpSink(track.kind, mime, request)
        self.placeholder = RtpTrack(track.kind, self.sink)
        self.task: asyncio.Task | None = None

    def attach(self, pc: RTCPeerConnection) -> None:
        sender = next(t.sender for t in pc.getTransceivers() if t.sender.track is self.placeholder)
        self.sink.attach(sender)
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        seq = 0
        sink, video = self.sink, self.payloads is not None
        try:
            while True:
                pkt = await self.track.recv()  # paced at the track's rate
                if sink.write is None:
                    continue  # not connected yet: a camera's frames would be lost too
                if video:
                    frame = self.payloads[self.track.last]
                    key = self.track.clip[self.track.last][1]
                else:
                    frame, key = [bytes(pkt)], True
                last = len(frame) - 1
                for k, payload in enumerate(frame):
                    sink.forward(self.SSRC, seq, pkt.pts, k == last, payload, key and k == 0)
                    seq += 1
        except (asyncio.CancelledError, MediaStreamError):
            pass

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.placeholder.end()


# --- a client of the call protocol -----------------------------------------------------------

class BenchClient:
    def __init__(self, ws: WSClient, user: str, clip, opus):
        self.ws = ws
        self.user = user
        self.video = ReplayVideo(clip)
        self.audio = ReplayAudio(opus)
        self.sends = [RawSend(self.audio, None, "audio/opus"),
                      RawSend(self.video, packetize_clip(clip), "video/vp8")]
        self.pc: RTCPeerConnection | None = None
        self.call: str | None = None
        self.tracks: dict[str, dict] = {}
        self.rx: dict[str, Rx] = {}  # mid → stream
        self.answered_at: dict[str, float] = {}  # mid → when our rtc.answer carrying it left
        self._lock = asyncio.Lock()
        self._pump: asyncio.Task | None = None

    async def start(self, call: str) -> None:
        self.call = call
        async with self._lock:
            self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            attach(pc, lambda tr, rx: self.rx.__setitem__(tr.mid, rx))
            for send in self.sends:
                pc.addTrack(send.placeholder)
                send.attach(pc)
            await pc.setLocalDescription(await pc.createOffer())
            self._pump = asyncio.get_running_loop().create_task(self._offers())
            reply = await self.ws.request("rtc.offer", call=call, sdp=pc.localDescription.sdp,
                                          timeout=20)
            assert reply["type"] == "rtc.answer", reply
            # the answer may already send the other side's media on our own m-lines
            # (docs/media.md, negotiation rule 2): those tracks are mapped from it
            self.tracks = {t["mid"]: t for t in reply.get("tracks") or ()}
            now = time.monotonic()
            for mid in self.tracks:
                self.answered_at[mid] = now
            await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))

    async def _offers(self) -> None:
        i = len(self.ws.frames)
        while True:
            f = await self.ws.wait_for(lambda f: f.get("type") == "rtc.offer"
                                       and f.get("call") == self.call, timeout=3600, start=i)
            i = next(n for n, x in enumerate(self.ws.frames) if x is f) + 1
            async with self._lock:
                pc = self.pc
                await pc.setRemoteDescription(RTCSessionDescription(f["sdp"], "offer"))
                new = [t["mid"] for t in f.get("tracks") or () if t["mid"] not in self.tracks]
                self.tracks = {t["mid"]: t for t in f.get("tracks") or ()}
                await pc.setLocalDescription(await pc.createAnswer())
                now = time.monotonic()
                for mid in new:
                    self.answered_at[mid] = now
                await self.ws.request("rtc.answer", call=self.call, sdp=pc.localDescription.sdp,
                                      timeout=20)

    def stream_of(self, user: str, kind: str) -> tuple[str, Rx] | None:
        for mid, t in self.tracks.items():
            if t["user"] == user and t["kind"] == kind and mid in self.rx:
                return mid, self.rx[mid]
        return None

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        for send in self.sends:
            send.close()
        if self.pc is not None:
            await self.pc.close()


# --- analysis ---------------------------------------------------------------------------------

TOLERANCE = 2  # ticks: a decode + re-encode may round a timestamp by one


def _nearest(sent_sorted: list[int], x: int) -> int | None:
    i = bisect.bisect_left(sent_sorted, x - TOLERANCE)
    if i < len(sent_sorted) and sent_sorted[i] <= x + TOLERANCE:
        return sent_sorted[i]
    return None


def match_offset(rx: Rx, sent_sorted: list[int]) -> int | None:
    """The constant C with received pts = sent pts + C (± rounding): the gateway keeps
    timestamps up to an offset, and the jitter added at the sender makes C unique."""
    head = [p for p, _ in rx.frames[:12]]
    if len(head) < 3 or not sent_sorted:
        return None
    best, best_n = None, 0
    for s in sent_sorted:
        c = head[0] - s
        n = sum(1 for p in head if _nearest(sent_sorted, p - c) is not None)
        if n > best_n:
            best, best_n = c, n
    return best if best_n >= len(head) - 1 else None


def stream_figures(rx: Rx, sent: dict[int, float], t0: float, t1: float) -> dict | None:
    sent_sorted = sorted(sent)
    c = match_offset(rx, sent_sorted)
    if c is None:
        return None
    got = {}
    for pts, t in rx.frames:
        s = _nearest(sent_sorted, pts - c)
        if s is not None:
            got.setdefault(s, t)
    lat = [(got[s] - sent[s]) * 1000 for s in got if t0 <= sent[s] <= t1]
    due = [s for s, ts in sent.items() if t0 <= ts <= t1 - 0.5]
    lost = sum(1 for s in due if s not in got)
    fps = sum(1 for _, t in rx.frames if t0 <= t <= t1) / (t1 - t0)
    return {"lat": lat, "due": len(due), "lost": lost, "fps": fps}




# --- the gateway process ----------------------------------------------------------------------



def token(role: str, user: str, room: str | None = None) -> str:
    from signaling import TokenAuthority
    return TokenAuthority(SECRET).issue(user, role, room=room, name=user, ttl_s=3600)


def write_room(path: Path) -> Path:
    kb = {"room": {"id": "bench", "title": "Bench", "host": "H", "currency": "CNY"},
          "products": [{"sku": "S1", "name": "Thing", "price": 10, "stock": 100, "sizes": []}],
          "promotions": [], "policies": {}, "faq": []}
    path.write_text(json.dumps(kb))
    return path


class Gateway:
    def __init__(self, mode: str, room: Path, logdir: Path):
        self.mode = mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logfile = logdir / f"gateway-{mode}-{self.port}.log"
        env = dict(os.environ, LIVEDESK_SECRET=SECRET, LIVEDESK_AGENT_CAPACITY="1",
                   LIVEDESK_RATE_PER_S="1000", LIVEDESK_RATE_BURST="1000")
        # "record": passthrough forwarding plus a recording of every call (the store keeps
        # the files: every mode gets its own data directory, so they differ in nothing else)
        media_mode = "passthrough" if mode == "record" else mode
        args = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port),
                "--media-mode", media_mode, "--room", str(room), "--log-level", "WARNING",
                "--data-dir", str(logdir / f"data-{mode}-{self.port}")]
        self.proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=open(self.logfile, "w"),
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.logfile.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=0.5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("gateway did not become ready") from None
                time.sleep(0.1)

    def cpu_s(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- one mode ----------------------------------------------------------------------------------

async def direct_pair(clip) -> tuple[ReplayVideo, Rx, list]:
    """aiortc → aiortc without the gateway: the clients' own share of the latency."""
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = ReplayVideo(clip)
    got: list[Rx] = []
    attach(b, lambda tr, rx: got.append(rx))
    send = RawSend(video, packetize_clip(clip), "video/vp8")  # the same sender as the calls'
    a.addTrack(send.placeholder)
    send.attach(a)
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    a.on("connectionstatechange", lambda: a.connectionState == "closed" and send.close())
    return video, got[0], [a, b]


def _own_cpu_s() -> float:
    """CPU seconds of this process (the load clients and their threads)."""
    t = os.times()
    return t.user + t.system


async def run_mode(mode: str, calls: int, seconds: float, clip, opus, room: Path,
                   logdir: Path) -> dict:
    gw = Gateway(mode, room, logdir)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sockets: list[WSClient] = []
    clients: list[tuple[BenchClient, BenchClient]] = []
    calls_ids: list[str] = []
    pcs: list = []
    try:
        log(f"{mode}: gateway pid {gw.proc.pid}, log {gw.logfile}")
        await asyncio.sleep(1.0)
        rss0 = gw.rss_mb()
        threads0 = gw.threads()

        async def ws(role: str, user: str, room_id: str | None = None) -> WSClient:
            c = await WSClient(gw.url, http).connect()
            sockets.append(c)
            w = await c.hello(token(role, user, room_id))
            assert w["type"] == "welcome", w
            return c

        for i in range(calls):  # one agent per conversation (capacity 1), set up in turn
            a = await ws("agent", f"agent{i}")
            assert (await a.request("agent.status", status="available"))["type"] == "ack"
            v = await ws("viewer", f"viewer{i}", "bench")
            conv = await v.request("conversation.open", room="bench")
            cid = conv["conversation"]
            r = await v.request("conversation.escalate", conversation=cid, reason="bench")
            assert r["type"] == "ack", r
            await a.event("conversation.assigned", conversation=cid, timeout=10)
            st = await v.request("call.request", conversation=cid, video=True)
            assert st["type"] == "call.state", st
            call = st["call"]
            await a.event("call.incoming", call=call, timeout=10)
            assert (await a.request("call.accept", call=call))["type"] == "call.state"
            vc, ac = BenchClient(v, f"viewer{i}", clip, opus), BenchClient(a, f"agent{i}", clip, opus)
            await asyncio.gather(vc.start(call), ac.start(call))
            clients.append((vc, ac))
            calls_ids.append(call)
        video, direct_rx, pcs = await direct_pair(clip)

        # everyone receives the other side's video
        deadline = time.monotonic() + 30
        while True:
            ready = all(x.stream_of(y.user, "video") and x.stream_of(y.user, "video")[1].frames
                        for vc, ac in clients for x, y in ((vc, ac), (ac, vc)))
            if ready and direct_rx.frames:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{mode}: media did not flow to every participant")
            await asyncio.sleep(0.1)
        if mode == "record":  # every call recorded, with the viewer's consent
            for (vc, ac), call in zip(clients, calls_ids, strict=True):
                r = await ac.ws.request("call.record", call=call, action="start")
                assert r.get("state") == "requested", r
                r = await vc.ws.request("call.record.consent", call=call, accept=True)
                assert r.get("state") == "recording", r
        await asyncio.sleep(2.0)  # warm-up
        t0, cpu0, ccpu0 = time.monotonic(), gw.cpu_s(), _own_cpu_s()
        await asyncio.sleep(seconds)
        t1, cpu1, ccpu1 = time.monotonic(), gw.cpu_s(), _own_cpu_s()
        saved = 0
        if mode == "record":  # stopped after the window; the files are stored
            for (_vc, ac), call in zip(clients, calls_ids, strict=True):
                await ac.ws.request("call.record", call=call, action="stop")
            for (_vc, ac), call in zip(clients, calls_ids, strict=True):
                ev = await ac.ws.event("call.recording", call=call, state="saved", timeout=60)
                saved += len(ev.get("recordings") or ())
        rss1 = gw.rss_mb()
        threads1 = gw.threads()
        await asyncio.sleep(0.3)  # let the last frames of the window arrive

        lat, fps, due, lost, joins, audio_pps = [], [], 0, 0, [], []
        for vc, ac in clients:
            for rxc, src in ((vc, ac), (ac, vc)):
                mid, rx = rxc.stream_of(src.user, "video")
                fig = stream_figures(rx, src.video.sent, t0, t1)
                if fig is None:
                    log(f"{mode}: could not match timestamps of {src.user}→{rxc.user}")
                    continue
                lat += fig["lat"]
                fps.append(fig["fps"])
                due += fig["due"]
                lost += fig["lost"]
                if rx.frames and mid in rxc.answered_at:
                    joins.append((rx.frames[0][1] - rxc.answered_at[mid]) * 1000)
                au = rxc.stream_of(src.user, "audio")
                if au:
                    audio_pps.append(sum(1 for _, t in au[1].frames if t0 <= t <= t1) / (t1 - t0))
        dfig = stream_figures(direct_rx, video.sent, t0, t1) or {"lat": []}
        cpu = (cpu1 - cpu0) / (t1 - t0)
        out = {
            "cpu_per_call": cpu / calls,
            "cpu_total": cpu,
            # the load clients (this process, all 2·N peers): who runs out first
            "client_cpu_total": (ccpu1 - ccpu0) / (t1 - t0),
            "client_cpu_per_call": (ccpu1 - ccpu0) / (t1 - t0) / calls,
            "rss_per_call_mb": (rss1 - rss0) / calls,
            "rss_mb": rss1,
            "threads_per_call": (threads1 - threads0) / calls,
            "fps": statistics.mean(fps) if fps else 0.0,
            "fps_min": min(fps) if fps else 0.0,
            "frame_loss": lost / due if due else float("nan"),
            "latency_ms_p50": pct(lat, 50),
            "latency_ms_p95": pct(lat, 95),
            "direct_latency_ms_p50": pct(dfig["lat"], 50),
            "direct_latency_ms_p95": pct(dfig["lat"], 95),
            "join_first_frame_ms_p50": pct(joins, 50),
            "join_first_frame_ms_max": max(joins) if joins else float("nan"),
            "audio_pps": statistics.mean(audio_pps) if audio_pps else 0.0,
        }
        if mode == "record":
            out["recordings_saved"] = saved
        out["added_latency_ms_p50"] = max(0.0, out["latency_ms_p50"] - out["direct_latency_ms_p50"])
        out["added_latency_ms_p95"] = max(0.0, out["latency_ms_p95"] - out["direct_latency_ms_p95"])
        return out
    finally:
        for vc, ac in clients:
            await vc.close()
            await ac.close()
        for pc in pcs:
            await pc.close()
        for s in sockets:
            await s.close()
        await http.close()
        gw.stop()


def _level(n: int, r: dict) -> dict:
    """One row of the capacity table (passthrough at ``n`` calls)."""
    keys = ("cpu_per_call", "cpu_total", "client_cpu_total", "client_cpu_per_call", "fps",
            "fps_min", "frame_loss", "added_latency_ms_p50", "latency_ms_p95",
            "rss_per_call_mb")
    return {"calls": n, **{k: round(r[k], 4) for k in keys}}


def _driven(row: dict) -> bool:
    """The clients drove this level: every stream near full rate, ≤ 1 % frames lost."""
    return "error" not in row and row["fps"] >= 0.9 * FPS and row["frame_loss"] <= 0.01


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", default="8",
                    help="calls, or a ramp of levels '8,16,32,…': the first level runs every "
                         "mode (its figures are the usual keys), each further level "
                         "passthrough only (the per-level table, cpu_per_call_at_max)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--modes", default="passthrough,transcode,record",
                    help="passthrough, transcode, record (passthrough + recording every call)")
    ap.add_argument("--baseline-calls", type=int, default=2,
                    help="also run each mode with this many calls (0: skip): the per-call "
                         "cost while transcode is not CPU-bound on this machine")
    ap.add_argument("--json", action="store_true", help="end with one JSON object")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    levels = sorted({int(x) for x in str(args.calls).split(",") if x.strip()})
    if not levels or levels[0] < 1:
        ap.error("--calls: one or more positive numbers, e.g. 8 or 8,16,32")
    args.calls = levels[0]
    load_before = os.getloadavg()

    t = time.monotonic()
    clip, opus = encode_clip(), encode_opus()
    log(f"clip: {len(clip)} VP8 frames, {sum(len(d) for d, _ in clip) * 8 / len(clip) * FPS / 1000:.0f} kbit/s; "
        f"opus: {len(opus)} packets ({time.monotonic() - t:.1f} s)")
    logdir = Path(tempfile.mkdtemp(prefix="ld-media-bench-"))
    room = write_room(logdir / "room.json")
    results = {}
    for mode in modes:
        log(f"{mode}: {args.calls} calls, {args.seconds:.0f} s …")
        r = await run_mode(mode, args.calls, args.seconds, clip, opus, room, logdir)
        results[mode] = r
        log(f"{mode}: " + ", ".join(f"{k}={v:.4g}" for k, v in r.items()))

    table = []
    if "passthrough" in results:
        table.append(_level(args.calls, results["passthrough"]))
    for n in levels[1:]:
        log(f"passthrough: {n} calls (ramp), {args.seconds:.0f} s …")
        try:
            r = await run_mode("passthrough", n, args.seconds, clip, opus, room, logdir)
        except Exception as e:  # a level the clients cannot even set up ends the ramp
            log(f"passthrough @{n}: {type(e).__name__}: {e}")
            table.append({"calls": n, "error": f"{type(e).__name__}: {e}"[:200]})
            break
        log(f"passthrough @{n}: " + ", ".join(f"{k}={v:.4g}" for k, v in r.items()))
        table.append(_level(n, r))

    summary = {"calls": args.calls, "seconds": args.seconds, "cpus": os.cpu_count(),
               "cpu": cpu_model(), "loadavg_before": [round(x, 2) for x in load_before],
               "loadavg_end": os.getloadavg()[0]}
    if len(levels) > 1 and table:
        summary["levels"] = table
        ok = [t for t in table if _driven(t)]
        if ok:
            top = ok[-1]
            summary["calls_max"] = top["calls"]
            summary["cpu_per_call_at_max"] = top["cpu_per_call"]
            first = table[0].get("cpu_per_call")
            if first:
                summary["cpu_per_call_at_max_ratio"] = round(top["cpu_per_call"] / first, 3)
        else:
            summary["calls_max"] = None
            summary["cpu_per_call_at_max"] = None
    for mode, r in results.items():
        for k, v in r.items():
            summary[f"{k}_{mode}"] = round(v, 4) if isinstance(v, float) else v
    if "passthrough" in results and "transcode" in results:
        p, tr = results["passthrough"]["cpu_per_call"], results["transcode"]["cpu_per_call"]
        summary["cpu_ratio"] = round(tr / p, 2) if p > 0 else None
        # transcode that cannot keep up is capped by the machine, not by its cost
        summary["transcode_cpu_bound"] = results["transcode"]["fps"] < 0.9 * FPS
    if "passthrough" in results and "record" in results:
        p, rec = results["passthrough"], results["record"]
        summary["recording_cpu_ratio"] = (round(rec["cpu_per_call"] / p["cpu_per_call"], 3)
                                          if p["cpu_per_call"] > 0 else None)
        summary["recording_frame_loss_added"] = round(rec["frame_loss"] - p["frame_loss"], 4)
        summary["recording_target_met"] = bool(summary["recording_cpu_ratio"] is not None
                                               and summary["recording_cpu_ratio"] <= 1.3)
    if args.baseline_calls and args.baseline_calls != args.calls:
        n = args.baseline_calls
        base = {}
        for mode in modes:
            log(f"{mode}: {n} calls (baseline), {args.seconds:.0f} s …")
            base[mode] = await run_mode(mode, n, args.seconds, clip, opus, room, logdir)
            log(f"{mode} @{n}: " + ", ".join(f"{k}={v:.4g}" for k, v in base[mode].items()))
            for k in ("cpu_per_call", "fps", "frame_loss", "latency_ms_p50", "added_latency_ms_p50"):
                summary[f"{k}_{mode}_{n}calls"] = round(base[mode][k], 4)
        if "passthrough" in base and "transcode" in base and base["passthrough"]["cpu_per_call"] > 0:
            summary[f"cpu_ratio_{n}calls"] = round(
                base["transcode"]["cpu_per_call"] / base["passthrough"]["cpu_per_call"], 2)
    if not args.json and summary.get("levels"):
        print(f"{'calls':>5} {'gw cpu/call':>11} {'gw cpu':>7} {'clients cpu':>11} {'fps':>5} "
              f"{'loss %':>6} {'added p50 ms':>12} {'p95 ms':>7}")
        for t in summary["levels"]:
            if "error" in t:
                print(f"{t['calls']:>5} {t['error']}")
                continue
            print(f"{t['calls']:>5} {t['cpu_per_call']:>11.4f} {t['cpu_total']:>7.3f} "
                  f"{t['client_cpu_total']:>11.3f} {t['fps']:>5.1f} {t['frame_loss'] * 100:>6.2f} "
                  f"{t['added_latency_ms_p50']:>12.1f} {t['latency_ms_p95']:>7.1f}")
    if not args.json:
        for mode, r in results.items():
            print(f"{mode:12s} cpu/call {r['cpu_per_call']:.3f} core  rss/call "
                  f"{r['rss_per_call_mb']:.1f} MB  fps {r['fps']:.1f}  loss "
                  f"{r['frame_loss'] * 100:.2f} %  latency p50 {r['latency_ms_p50']:.1f} ms "
                  f"(added {r['added_latency_ms_p50']:.1f}) p95 {r['latency_ms_p95']:.1f} ms  "
                  f"join→frame {r['join_first_frame_ms_p50']:.0f} ms")
        if "cpu_ratio" in summary:
            print(f"cpu_ratio (transcode / passthrough per call): {summary['cpu_ratio']}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
