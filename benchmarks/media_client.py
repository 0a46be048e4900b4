"""One load-client process of ``benchmarks/media.py``: a share of the calls, on its own loop.

One process of Python carries one event loop, so load clients in one process run out of a
core long before a gateway does (it did at 8 calls on a 2-core machine). ``media.py`` starts
several of these (``--client-procs``), one after the other (call set-up stays serial, so
every agent gets its own viewer), each running calls ``--first`` … ``--first + --count - 1``
on uvloop (what ``livedesk serve`` runs on). The parent reads each process's CPU from
/proc; the process reports its figures back over its stdout, one JSON object per line:

    parent → child (stdin)            child → parent (stdout)
                                      {"ready": true, ...}   media flows to every peer
    {"cmd": "window", "t0", "t1"}     {"figures": {...}}     raw lists, pooled by the parent
    {"cmd": "close"}                  (exits)

``t0``/``t1`` are ``time.monotonic()`` readings of the parent: CLOCK_MONOTONIC is one clock
for every process of the machine.

**What the clients skip, and why that is honest.** The gateway must see real WebRTC peers,
so ICE, DTLS, SRTP, RTCP (sender and receiver reports, NACK, PLI, REMB) are aiortc's own and
every packet is really protected, sent, received and unprotected. What the clients do not
do is what a camera and a screen would do at the ends, which the gateway never sees:

* **No encoding, no packetizing per frame.** A 3 s VP8 clip and one second of Opus are
  encoded once (by the parent), packetized once here (aiortc's own VP8 packetizer), and
  replayed: per packet only the RTP header is written and the packet protected and sent
  (:class:`~gateway.media.rtp_sink.RtpSink`, the gateway's own writer). PLI/FIR restart the
  clip at its keyframe, NACKs are answered from the sink's history.
* **One pacer per process** (:class:`Pacer`) instead of a task and a timer per stream: it
  wakes every :data:`QUANTUM_S` and sends every packet that is due. Packets leave up to
  that much after their turn (a camera's frames are not exact either); each frame's send
  time is taken when it leaves, so latency figures are not touched by it.
* **No jitter buffer, depacketizer or decoder.** A receiver is tapped at the RTP level
  (:func:`~gateway.media.compat.receiver_tap.tap_receiver` with no frame sink: its
  statistics for receiver reports, NACKs and PLIs stay aiortc's), and
  :class:`~benchmarks.media_streams.Rx` reads three header fields and one payload byte per
  packet: a video frame counts as received when its marker packet arrives and every packet
  from its first (VP8 ``S`` bit, partition 0) has arrived in order, which is stricter than
  a jitter buffer (a frame completed by a retransmission counts as lost).
* **No bandwidth estimator.** Each video receiver sends a constant REMB once a second
  (:class:`Remb`) instead of running aiortc's delay-based estimator on every packet: the
  gateway gets the RTCP a real receiver sends at about the rate it sends it.

Profiled at 8 calls in one process (cProfile, before these last two cuts): of the clients'
CPU, sending (header, SRTP, ``sendto``) and receiving (``recvfrom``, SRTP, parse,
statistics) were most of it; the bandwidth estimator was ~a fifth of the receive side,
depacketizing and reassembling frames ~a tenth; timers per stream and asyncio's own loop
(now one pacer, uvloop) the rest. What is left is the honest cost of a WebRTC endpoint
that sends and receives 2 × ~0.7 Mbit/s: per packet a syscall and an SRTP operation each
way.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import gc
import json
import pickle
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import av  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.codecs.vpx import Vp8Encoder  # noqa: E402
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci  # noqa: E402

from benchmarks.loopback import in_process_ice_on_loopback, is_loopback  # noqa: E402
from benchmarks.media_streams import Rx, stream_figures  # noqa: E402
from gateway.media.compat.receiver_tap import receiver_tap, tap_receiver  # noqa: E402
from gateway.media.rtp_sink import RtpSink  # noqa: E402
from gateway.media.tracks import RtpTrack  # noqa: E402
from tests.wsclient import WSClient  # noqa: E402

SECRET = "ed146a75fce3791779c2895d1442a4e9805a632f5d4ae90b451c053c5211707d"  # 32 random bytes: the gateway refuses a weaker secret
W, H, FPS = 640, 480, 30
VIDEO_TB = fractions.Fraction(1, 90000)
TICK = 90000 // FPS
QUANTUM_S = 0.005  # the pacer's wake-up period: packets leave ≤ 5 ms after their turn
SSRC = 0x1D  # the source SSRC handed to the sink (it writes the sender's own)
REMB_BPS = 2_000_000  # what every video receiver reports it could take (the clip is 0.6)
REMB_PERIOD_S = 1.0
GC_THRESHOLDS = (50_000, 20, 20)  # gateway.cli.GC_THRESHOLDS (importing the CLI is not wanted)


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def token(role: str, user: str, room: str | None = None) -> str:
    from signaling import TokenAuthority
    return TokenAuthority(SECRET).issue(user, role, room=room, name=user, ttl_s=3600)


def packetize_clip(clip: list[tuple[bytes, bool]]) -> list[list[bytes]]:
    """The clip's VP8 RTP payloads, per frame, made once (aiortc's own packetizer)."""
    enc = Vp8Encoder()
    out = []
    for data, _ in clip:
        pkt = av.Packet(data)
        pkt.pts, pkt.time_base = 0, VIDEO_TB
        out.append(enc.pack(pkt)[0])
    return out


# --- loopback only ---------------------------------------------------------------------------

def loopback_only() -> None:
    """This process's ICE agents on 127.0.0.1 only (docs/testing.md#network-safety): the
    tests' own rule (``benchmarks.loopback.in_process_ice_on_loopback``: gather on
    127.0.0.1, no other candidate or server, no packet to another address), and
    :func:`check_loopback` refuses a peer's SDP naming anything else."""
    in_process_ice_on_loopback()


def check_loopback(sdp: str) -> None:
    """Raise unless every ICE candidate in ``sdp`` is on 127/8 or ::1: no packet of this
    benchmark goes to another address, even one of this host."""
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            if not is_loopback(line.split()[4]):
                raise RuntimeError(f"a candidate off loopback: {line!r}")


# --- sending -----------------------------------------------------------------------------------

class Stream:
    """One sent stream: ready-made payloads written through an :class:`RtpSink` on its turn.

    Video: the clip's frames at 30 fps, each with an RTP timestamp of ``n·3000 + random
    jitter`` (< 1500), remembered with the time it left (``sent``): the receiver recovers
    the gateway's constant timestamp offset by matching, then each frame's send time.
    Audio: one 20 ms Opus packet per turn."""

    def __init__(self, kind: str, payloads: list[list[bytes]], keyframes: list[bool]):
        self.kind = kind
        self.video = kind == "video"
        self.payloads = payloads  # per clip frame (video) or packet (audio): its RTP payloads
        self.keyframes = keyframes
        self.period = 1 / FPS if self.video else 0.02
        self.sink = RtpSink(kind, "video/vp8" if self.video else "audio/opus", self.keyframe)
        self.placeholder = RtpTrack(kind, self.sink)
        self.due: float | None = None  # when the next packet is due (None: not started)
        self.n = 0
        self.i = 0  # clip index of the next frame
        self.seq = 0
        self.sent: dict[int, float] = {}  # RTP timestamp → when its frame left
        self.keyframe_requests = 0

    def keyframe(self) -> None:
        """PLI/FIR (or a joiner): the clip restarts at its keyframe."""
        if self.video:
            self.keyframe_requests += 1
            self.i = 0

    def attach(self, pc: RTCPeerConnection) -> None:
        sender = next(t.sender for t in pc.getTransceivers() if t.sender.track is self.placeholder)
        self.sink.attach(sender)

    def send(self, now: float) -> None:
        """The next frame or packet, now. Before the connection is up a camera's frames
        would be lost too: they are counted as sent turns but not written."""
        i = self.i
        self.i = (i + 1) % len(self.payloads)
        if self.video:
            ts = self.n * TICK + random.randrange(0, TICK // 2)
        else:
            ts = self.n * 960
        self.n += 1
        if self.sink.write is None:
            return
        frame = self.payloads[i]
        key = self.keyframes[i]
        last = len(frame) - 1
        forward, seq = self.sink.forward, self.seq
        for k, payload in enumerate(frame):
            forward(SSRC, seq + k, ts, k == last, payload, key and k == 0)
        self.seq = seq + len(frame)
        if self.video:
            self.sent[ts] = now

    def close(self) -> None:
        self.placeholder.end()


class Pacer:
    """Every stream of this process, sent from one task: wakes every :data:`QUANTUM_S`
    and sends what is due (a stream late by several turns sends them all, as a stalled
    camera's queue would). The cost of timers per stream is the clients', not a call's."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self.task: asyncio.Task | None = None
        self.late: list[tuple[float, float]] = []  # (when, how late) of turns ≥ 10 ms late

    def late_max(self, t0: float, t1: float) -> float:
        """The worst lateness of a turn in [t0, t1] (s): did this loop keep up?"""
        return max((d for t, d in self.late if t0 <= t <= t1), default=0.0)

    def add(self, s: Stream) -> None:
        s.due = time.monotonic()
        self.streams.append(s)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, s: Stream) -> None:
        if s in self.streams:
            self.streams.remove(s)

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            for s in self.streams:
                due = s.due
                if due is None or due > now:
                    continue
                if now - due >= 0.01:
                    self.late.append((now, now - due))
                while due <= now:
                    s.send(now)
                    due += s.period
                s.due = due
            await asyncio.sleep(QUANTUM_S)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


# --- receiving -------------------------------------------------------------------------------

_RBE = "_RTCRtpReceiver__remote_bitrate_estimator"  # aiortc 1.16, as compat.receiver_tap reads it
_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"


class Remb:
    """The video receivers' bandwidth feedback: a REMB of :data:`REMB_BPS` for each, every
    :data:`REMB_PERIOD_S`, instead of aiortc's delay-based estimator run on every packet.

    The gateway gets the same RTCP a real receiver sends (aiortc's estimator reports about
    once a second on a clean link) and does the same with it; what the clients skip is
    the estimate itself, a fifth of their receive cost, which no gateway ever sees."""

    def __init__(self) -> None:
        self.receivers: list = []
        self.sent = 0
        self.task: asyncio.Task | None = None

    def add(self, receiver) -> None:
        receiver.__dict__[_RBE] = None  # the tap then skips the estimator (and its REMB)
        self.receivers.append(receiver)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(REMB_PERIOD_S)
            for r in list(self.receivers):
                tap = receiver_tap(r)
                rtcp_ssrc = r.__dict__.get(_RTCP_SSRC)
                if tap is None or tap.ssrc is None or rtcp_ssrc is None:
                    continue  # not receiving yet
                try:
                    await r._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc,
                                                      media_ssrc=0,
                                                      fci=pack_remb_fci(REMB_BPS, [tap.ssrc])))
                    self.sent += 1
                except ConnectionError:
                    self.receivers.remove(r)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


def attach_rx(pc: RTCPeerConnection, remb: Remb, on_track) -> None:
    """Tap every receiver the moment its track appears (before it starts): RTP level."""
    def track(t: MediaStreamTrack) -> None:
        tr = next(x for x in pc.getTransceivers() if x.receiver.track is t)
        rx = Rx(t.kind)
        tap_receiver(tr.receiver, t.kind).on_packet = rx.on_packet
        if t.kind == "video":
            remb.add(tr.receiver)
        on_track(tr, rx)
    pc.on("track", track)


# --- a client of the call protocol -------------------------------------------------------------

class BenchClient:
    """One participant: its /ws session, its connection, an audio and a video stream."""

    def __init__(self, ws: WSClient, user: str, media: dict, pacer: Pacer, remb: Remb):
        self.ws = ws
        self.user = user
        self.pacer = pacer
        self.remb = remb
        self.audio = Stream("audio", [[p] for p in media["opus"]], [True] * len(media["opus"]))
        self.video = Stream("video", media["payloads"], media["keyframes"])
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
            attach_rx(pc, self.remb, lambda tr, rx: self.rx.__setitem__(tr.mid, rx))
            for s in (self.audio, self.video):
                pc.addTrack(s.placeholder)
                s.attach(pc)
                self.pacer.add(s)
            await pc.setLocalDescription(await pc.createOffer())
            check_loopback(pc.localDescription.sdp)
            self._pump = asyncio.get_running_loop().create_task(self._offers())
            reply = await self.ws.request("rtc.offer", call=call, sdp=pc.localDescription.sdp,
                                          timeout=20)
            assert reply["type"] == "rtc.answer", reply
            check_loopback(reply["sdp"])
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
                assert pc is not None
                check_loopback(f["sdp"])
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
        for s in (self.audio, self.video):
            self.pacer.remove(s)
            s.close()
        if self.pc is not None:
            await self.pc.close()


async def direct_pair(media: dict, pacer: Pacer, remb: Remb) -> tuple[Stream, Rx, list]:
    """aiortc → aiortc without the gateway, in this process: its own share of the latency
    (the same sender, pacer, tap and loop as the calls')."""
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = Stream("video", media["payloads"], media["keyframes"])
    got: list[Rx] = []
    attach_rx(b, remb, lambda tr, rx: got.append(rx))
    a.addTrack(video.placeholder)
    video.attach(a)
    pacer.add(video)
    await a.setLocalDescription(await a.createOffer())
    check_loopback(a.localDescription.sdp)
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    check_loopback(b.localDescription.sdp)
    await a.setRemoteDescription(b.localDescription)
    deadline = time.monotonic() + 20
    while not got:
        if time.monotonic() > deadline:
            raise RuntimeError("the direct pair did not connect")
        await asyncio.sleep(0.05)
    return video, got[0], [a, b]


# --- the process --------------------------------------------------------------------------------

@dataclass
class Share:
    """This process's calls and what it needs to run them."""

    url: str
    first: int
    count: int
    mode: str
    media: dict
    clients: list[tuple[BenchClient, BenchClient]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    sockets: list[WSClient] = field(default_factory=list)


async def set_up(share: Share, http: aiohttp.ClientSession, pacer: Pacer, remb: Remb) -> None:
    """Calls set up in turn, one agent per conversation (the gateway runs with agent
    capacity 1, and no other process sets up calls meanwhile): agent ``i`` gets viewer ``i``."""
    async def ws(role: str, user: str, room_id: str | None = None) -> WSClient:
        c = await WSClient(share.url, http).connect()
        share.sockets.append(c)
        w = await c.hello(token(role, user, room_id))
        assert w["type"] == "welcome", w
        return c

    for i in range(share.first, share.first + share.count):
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
        vc = BenchClient(v, f"viewer{i}", share.media, pacer, remb)
        ac = BenchClient(a, f"agent{i}", share.media, pacer, remb)
        await asyncio.gather(vc.start(call), ac.start(call))
        share.clients.append((vc, ac))
        share.calls.append(call)


def figures(share: Share, direct: tuple[Stream, Rx], t0: float, t1: float,
            pacer: Pacer, remb: Remb) -> dict:
    """This process's raw figures over the window [t0, t1]: lists, pooled by the parent."""
    lat: list[float] = []
    fps: list[float] = []
    due = lost = 0
    joins: list[float] = []
    audio_pps: list[float] = []
    unmatched = 0
    for vc, ac in share.clients:
        for rxc, src in ((vc, ac), (ac, vc)):
            found = rxc.stream_of(src.user, "video")
            fig = stream_figures(found[1], src.video.sent, t0, t1) if found else None
            if found is None or fig is None:  # counted against the level, never skipped
                unmatched += 1
                fps.append(found[1].count_between(t0, t1) / (t1 - t0) if found else 0.0)
                log(f"{share.mode}: could not match timestamps of {src.user}→{rxc.user}")
                continue
            mid, rx = found
            lat += fig["lat"]
            fps.append(fig["fps"])
            due += fig["due"]
            lost += fig["lost"]
            if rx.frames and mid in rxc.answered_at:
                joins.append((rx.first_at - rxc.answered_at[mid]) * 1000)
            au = rxc.stream_of(src.user, "audio")
            if au:
                audio_pps.append(au[1].count_between(t0, t1) / (t1 - t0))
    video, drx = direct
    dfig = stream_figures(drx, video.sent, t0, t1) or {"lat": []}
    return {"lat": lat, "fps": fps, "due": due, "lost": lost, "joins": joins,
            "audio_pps": audio_pps, "direct_lat": dfig["lat"], "unmatched": unmatched,
            "pacer_late_max_ms": pacer.late_max(t0, t1) * 1000, "remb_sent": remb.sent,
            "keyframe_requests": sum(c.video.keyframe_requests
                                     for pair in share.clients for c in pair)}


async def run(args) -> int:
    loopback_only()
    with open(args.media, "rb") as f:
        clip, opus = pickle.load(f)
    media = {"payloads": packetize_clip(clip), "keyframes": [k for _, k in clip], "opus": opus}
    share = Share(args.url, args.first, args.count, args.mode, media)
    pacer, remb = Pacer(), Remb()
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pcs: list = []

    def say(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    try:
        t = time.monotonic()
        await set_up(share, http, pacer, remb)
        video, drx, pcs = await direct_pair(media, pacer, remb)
        deadline = time.monotonic() + 30
        while True:  # everyone receives the other side's video
            ready = True
            for vc, ac in share.clients:
                for x, y in ((vc, ac), (ac, vc)):
                    got = x.stream_of(y.user, "video")
                    ready = ready and got is not None and bool(got[1].frames)
            if ready and drx.frames:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{share.mode}: media did not flow to every participant")
            await asyncio.sleep(0.1)
        if share.mode == "record":  # every call recorded, with the viewer's consent
            for (vc, ac), call in zip(share.clients, share.calls, strict=True):
                r = await ac.ws.request("call.record", call=call, action="start")
                assert r.get("state") == "requested", r
                r = await vc.ws.request("call.record.consent", call=call, accept=True)
                assert r.get("state") == "recording", r
        # the gateway's own GC policy (gateway.cli.tune_gc): what exists now is kept, and
        # full collections are rare, so a collection does not stall every stream at once
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        say({"ready": True, "calls": share.count, "setup_s": round(time.monotonic() - t, 2)})
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = json.loads(line)
            if cmd["cmd"] == "window":
                saved = 0
                if share.mode == "record":  # stopped after the window; the files are stored
                    for (_vc, ac), call in zip(share.clients, share.calls, strict=True):
                        await ac.ws.request("call.record", call=call, action="stop")
                    for (_vc, ac), call in zip(share.clients, share.calls, strict=True):
                        ev = await ac.ws.event("call.recording", call=call, state="saved",
                                               timeout=60)
                        saved += len(ev.get("recordings") or ())
                await asyncio.sleep(max(0.0, cmd["t1"] + 0.3 - time.monotonic()))
                out = figures(share, (video, drx), cmd["t0"], cmd["t1"], pacer, remb)
                out["recordings_saved"] = saved
                say({"figures": out})
            elif cmd["cmd"] == "close":
                break
    except Exception as e:
        log(f"media client {share.first}…{share.first + share.count - 1}: "
            f"{type(e).__name__}: {e}")
        say({"error": f"{type(e).__name__}: {e}"[:300]})
        return 1
    finally:
        pacer.stop()
        remb.stop()
        for vc, ac in share.clients:
            await vc.close()
            await ac.close()
        for pc in pcs:
            await pc.close()
        for sock in share.sockets:
            await sock.close()
        await http.close()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the gateway (loopback)")
    ap.add_argument("--first", type=int, required=True, help="index of this process's first call")
    ap.add_argument("--count", type=int, required=True, help="calls this process runs")
    ap.add_argument("--mode", default="passthrough")
    ap.add_argument("--media", required=True, help="pickle of (VP8 clip, Opus packets)")
    args = ap.parse_args()
    try:
        import uvloop
    except ImportError:  # asyncio's own loop: dearer, and said so by the parent's figures
        return asyncio.run(run(args))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
