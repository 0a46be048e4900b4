"""An independent in-process WebRTC client for the call protocol (aiortc + tests/wsclient.py).

It knows only the wire messages of docs/protocol.md: it sends one ``rtc.offer`` with an
audio track and a solid-colour video track, answers every gateway ``rtc.offer``, and keeps
what it receives per m-line, so a test can ask "do I decode *that user's* colour?" using
the ``tracks`` map ({mid, user, kind}) that comes with ``rtc.answer``/``rtc.offer``.

Its ICE agent (like every aioice agent in a test process) gathers on 127.0.0.1 only and never
checks another address: ``tests/loopback_ice.py``, installed by ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from tests.wsclient import WSClient

RED = (220, 40, 40)
GREEN = (40, 200, 60)
BLUE = (40, 60, 220)

VIDEO_CLOCK = 90000

# Chromium's numbering (payload types, header-extension ids), which differs from aiortc's
# fixed tables (opus=96, VP8=97/rtx 98, sdes:mid=1, ssrc-audio-level=2, abs-send-time=3).
# A client created with ``browser_numbering=True`` rewrites its first offer to it, so the
# gateway deals with a client that numbers like a browser (as it must in production).
CHROMIUM_PT = {("audio", "opus"): 111, ("video", "vp8"): 96, ("video", "h264/42001f"): 102,
               ("video", "h264/42e01f"): 108}
CHROMIUM_EXT = {"urn:ietf:params:rtp-hdrext:ssrc-audio-level": 1,
                "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 2,
                "urn:ietf:params:rtp-hdrext:sdes:mid": 4}


def bare_pc() -> RTCPeerConnection:
    """A connection with no ICE servers (aiortc would otherwise use a public STUN server)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def browser_numbered(sdp: str) -> str:
    """An aiortc offer renumbered like Chromium's (RTX = base + 1, as Chromium does)."""
    from aiortc import sdp as sdp_module

    desc = sdp_module.SessionDescription.parse(sdp)
    for m in desc.media:
        pts: dict[int, int] = {}
        for c in m.rtp.codecs:
            name = c.mimeType.split("/")[1].lower()
            if name == "h264":
                name += "/" + str(c.parameters.get("profile-level-id"))
            if (m.kind, name) in CHROMIUM_PT:
                pts[c.payloadType] = CHROMIUM_PT[(m.kind, name)]
        for c in m.rtp.codecs:
            if c.mimeType.lower().endswith("/rtx"):
                c.payloadType = pts[c.parameters["apt"]] + 1
                c.parameters = dict(c.parameters, apt=pts[c.parameters["apt"]])
            else:
                c.payloadType = pts.get(c.payloadType, c.payloadType)
        m.fmt = [c.payloadType for c in m.rtp.codecs]
        for x in m.rtp.headerExtensions:
            x.id = CHROMIUM_EXT.get(x.uri, x.id)
    return str(desc)


class ColourTrack(MediaStreamTrack):
    """320x240 frames of one solid colour, paced at ``fps``."""

    kind = "video"

    def __init__(self, rgb: tuple[int, int, int], fps: int = 15, size=(320, 240)):
        super().__init__()
        w, h = size
        rgb_frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), rgb, np.uint8), format="rgb24")
        self._yuv = rgb_frame.reformat(format="yuv420p").to_ndarray()
        self._fps = fps
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._n += 1
            wait = self._start + self._n / self._fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        f = av.VideoFrame.from_ndarray(self._yuv, format="yuv420p")
        f.pts = self._n * VIDEO_CLOCK // self._fps
        f.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return f


@dataclass
class Sink:
    kind: str
    frames: int = 0
    last: av.VideoFrame | None = None
    task: asyncio.Task | None = None
    ended: bool = False

    def mean_rgb(self) -> np.ndarray | None:
        if self.last is None:
            return None
        return self.last.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)


@dataclass
class RtcClient:
    ws: WSClient
    user: str
    colour: tuple[int, int, int]
    auto_answer: bool = True
    browser_numbering: bool = False  # number our first offer like Chromium does
    video_codecs: tuple[str, ...] | None = None  # e.g. ("H264",): offer only these
    pc: RTCPeerConnection | None = None
    call: str | None = None
    tracks: dict[str, dict] = field(default_factory=dict)  # mid → {user, kind}
    sinks: dict[str, Sink] = field(default_factory=dict)  # mid → what we received there
    offers: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    _pump: asyncio.Task | None = None
    _local: list[MediaStreamTrack] = field(default_factory=list)
    # The gateway may send its rtc.offer right behind our rtc.answer reply: apply messages
    # in order, so a gateway offer waits until our own offer/answer exchange is done.
    _neg: asyncio.Lock = field(default_factory=asyncio.Lock)

    # --- negotiation -----------------------------------------------------------------------
    async def start(self, call: str, video: bool = True) -> dict:
        """Build the connection and send our first offer; returns the rtc.answer."""
        async with self._neg:
            return await self._start(call, video)

    async def _start(self, call: str, video: bool) -> dict:
        self.call = call
        await self._close_pc()
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks.clear()
        self.sinks.clear()
        pc.on("track", self._on_track)
        audio = AudioStreamTrack()
        self._local = [audio]
        pc.addTrack(audio)
        if video:
            v = ColourTrack(self.colour)
            self._local.append(v)
            pc.addTrack(v)
            if self.video_codecs:
                from aiortc import RTCRtpSender
                want = {f"video/{c}".lower() for c in self.video_codecs}
                caps = [c for c in RTCRtpSender.getCapabilities("video").codecs
                        if c.mimeType.lower() in want or c.mimeType.lower() == "video/rtx"]
                t = next(t for t in pc.getTransceivers() if t.kind == "video")
                t.setCodecPreferences(caps)
        offer = await pc.createOffer()
        sdp = browser_numbered(offer.sdp) if self.browser_numbering else offer.sdp
        await pc.setLocalDescription(RTCSessionDescription(sdp, "offer"))
        self._start_pump()
        reply = await self.ws.request("rtc.offer", call=call, sdp=pc.localDescription.sdp,
                                      timeout=10)
        assert reply["type"] == "rtc.answer", reply
        self._map(reply)
        await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        return reply

    def _start_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._offers(self.ws))

    def use_socket(self, ws: WSClient) -> None:
        """After a reconnect: watch the new socket for gateway offers."""
        if self._pump is not None:
            self._pump.cancel()
        self.ws = ws
        self._pump = None
        self._start_pump()

    async def _offers(self, ws: WSClient) -> None:
        i = len(ws.frames)
        while True:
            f = await ws.wait_for(lambda f: f.get("type") == "rtc.offer"
                                  and f.get("call") == self.call, timeout=3600, start=i)
            i = next(n for n, x in enumerate(ws.frames) if x is f) + 1
            self.offers.append(f)
            if self.auto_answer:
                async with self._neg:
                    await self.answer(f)

    async def answer(self, offer: dict) -> dict:
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        self._map(offer)
        await pc.setLocalDescription(await pc.createAnswer())
        reply = await self.ws.request("rtc.answer", call=self.call, sdp=pc.localDescription.sdp,
                                      timeout=10)
        if reply.get("type") == "error":
            self.errors.append(reply)
        return reply

    def _map(self, msg: dict) -> None:
        self.tracks = {t["mid"]: t for t in msg.get("tracks") or ()}

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        sink = Sink(track.kind)
        self.sinks[mid] = sink
        sink.task = asyncio.get_running_loop().create_task(self._consume(track, sink))

    @staticmethod
    async def _consume(track: MediaStreamTrack, sink: Sink) -> None:
        try:
            while True:
                frame = await track.recv()
                sink.frames += 1
                if sink.kind == "video":
                    sink.last = frame
        except (MediaStreamError, asyncio.CancelledError):
            sink.ended = True

    # --- what we receive -------------------------------------------------------------------
    def sink_of(self, user: str, kind: str) -> Sink | None:
        for mid, t in self.tracks.items():
            if t["user"] == user and t["kind"] == kind and mid in self.sinks:
                return self.sinks[mid]
        return None

    async def wait_colour(self, user: str, rgb, timeout: float = 10.0, tol: float = 35.0,
                          min_frames: int = 3) -> np.ndarray:
        """Until the video mapped to ``user`` decodes ``min_frames`` new frames of ``rgb``."""
        deadline = time.monotonic() + timeout
        start_frames = None
        mean = None
        while time.monotonic() < deadline:
            sink = self.sink_of(user, "video")
            if sink is not None and sink.last is not None:
                mean = sink.mean_rgb()
                if float(np.abs(mean - np.array(rgb)).max()) < tol:
                    if start_frames is None:
                        start_frames = sink.frames
                    elif sink.frames - start_frames >= min_frames:
                        return mean
                else:
                    start_frames = None
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.user}: no {rgb} video from {user} "
                             f"(tracks {self.tracks}, last mean {mean}, "
                             f"sinks { {m: s.frames for m, s in self.sinks.items()} })")

    async def wait_audio(self, user: str, frames: int = 10, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        start = None
        while time.monotonic() < deadline:
            sink = self.sink_of(user, "audio")
            if sink is not None:
                if start is None:
                    start = sink.frames
                elif sink.frames - start >= frames:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.user}: no audio from {user} (tracks {self.tracks})")

    # --- end -------------------------------------------------------------------------------
    async def _close_pc(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
        for s in self.sinks.values():
            if s.task:
                s.task.cancel()
        for t in self._local:
            t.stop()
        self._local = []

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        tasks = [s.task for s in self.sinks.values() if s.task]
        await self._close_pc()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sinks.clear()
