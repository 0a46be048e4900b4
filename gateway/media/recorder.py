"""The call recorder: each participant's encoded frames muxed into WebM/Matroska with
``av``, without decoding or re-encoding anything.

Where the frames come from: the passthrough forwarder already reassembles a source's RTP
payloads into encoded frames for its per-pair decoder; :meth:`Forwarder.tap_frames` hands
the same frames to the recorder (docs/media.md#recording). VP8/VP9 video and Opus audio go
into WebM (``video/webm``), any other codec into Matroska (``video/x-matroska``).

**One file per participant, on a common clock.** Time zero of every file is the moment the
recording started (the viewer's consent). A source's frames keep their own RTP timing: its
first frame is placed at its arrival time after time zero, every later frame at that plus
its RTP timestamp distance. So the files of one recording line up, and a source that starts
late (a host joining) starts late in its file.

**Off the event loop.** The loop only appends frames to a list, handed to the recording's
writer thread every ``BATCH_S`` (one queue put and one thread wake-up per batch, not per
frame); that thread muxes and writes them. A file's container header is written when its
streams are known: at the first video keyframe (VP8 carries the picture size there), or at
once for an audio-only participant. Frames arriving before every stream has begun wait in a bounded
buffer (``EARLY_FRAMES``); video frames before the first keyframe are dropped (the forwarder
is asked for a keyframe when the recording starts).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from .codecs import vp8
from .forward.seam import Forwarder, SourceKey

log = logging.getLogger(__name__)

MS = fractions.Fraction(1, 1000)  # Matroska's own time base
BATCH_S = 0.1  # frames go to the writer thread in batches: ten wake-ups a second, not 100
EARLY_FRAMES = 500  # frames held until every stream of a file has begun (then: open anyway)
WEBM_CODECS = {"vp8", "vp9", "opus"}
CODEC_NAMES = {"video/vp8": "vp8", "video/vp9": "vp9", "video/h264": "h264",
               "audio/opus": "opus", "audio/pcmu": "pcm_mulaw", "audio/pcma": "pcm_alaw"}
# the Opus identification header Matroska wants as CodecPrivate (RFC 7845 §5.1): version 1,
# 2 channels (WebRTC's opus/48000/2), pre-skip 312, 48 kHz, gain 0, mapping family 0
OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, 48000, 0, 0)


@dataclass
class _Stream:
    """One source's frames in one file: where its clock is anchored, the last pts."""

    codec: str
    anchor_ms: float | None = None  # where its first frame sits after time zero
    base: float | None = None  # that frame's pts in seconds (its own RTP clock)
    last_ms: int = -1
    frames: int = 0


@dataclass
class ParticipantFile:
    """One participant's file: its streams by kind, the container once opened."""

    user: str
    path: Path
    kinds: set[str]
    streams: dict[str, _Stream] = field(default_factory=dict)
    container: av.container.OutputContainer | None = None
    av_streams: dict[str, av.stream.Stream] = field(default_factory=dict)
    early: list[tuple[str, bytes, int, bool]] = field(default_factory=list)
    size: tuple[int, int] | None = None
    first_ms: int | None = None
    end_ms: int = 0
    error: str | None = None

    @property
    def webm(self) -> bool:
        return all(s.codec in WEBM_CODECS for s in self.streams.values())


@dataclass(frozen=True)
class RecordedFile:
    user: str
    path: Path
    content_type: str
    duration_s: float
    width: int
    height: int
    frames: dict[str, int]


class CallRecorder:
    """Records the sources it is given until :meth:`stop`; :meth:`stop` returns the files.

    ``add(key)`` may be called again while recording (a participant's rebuilt connection,
    a host joining): a new generation of the same participant and kind continues that
    participant's stream in the same file."""

    def __init__(self, forwarder: Forwarder, name: str, directory: Path | None = None):
        self.forwarder = forwarder
        self.name = name  # the frame-tap name (one per recording)
        self.dir = Path(tempfile.mkdtemp(prefix="livedesk-rec-", dir=directory))
        self.t0 = time.monotonic()
        self.started_at = time.time()
        self.files: dict[str, ParticipantFile] = {}
        self.keys: list[SourceKey] = []
        self._q: queue.SimpleQueue = queue.SimpleQueue()  # batches of frames, then None
        self._batch: list[tuple] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._writer, name=f"recorder-{name}",
                                        daemon=True)
        self._thread.start()

    def add(self, key: SourceKey, kinds: set[str]) -> None:
        """Record ``key`` (``kinds``: every kind this participant sends, so its file has a
        stream for each from the start)."""
        if key in self.keys:
            return
        f = self.files.get(key.owner)
        if f is None:
            f = self.files[key.owner] = ParticipantFile(
                key.owner, self.dir / f"{len(self.files)}", set(kinds))
        f.kinds |= kinds
        self.keys.append(key)
        t0 = self.t0
        owner, kind, gen = key.owner, key.kind, key.gen

        def consume(data: bytes, pts: int, keyframe: bool, mime: str,
                    time_base: fractions.Fraction, arrival: float) -> None:
            # on the loop: one append; the batch goes to the writer every BATCH_S
            self._batch.append((owner, kind, mime, data, pts, time_base, keyframe,
                                arrival - t0, gen))
            if self._flush_at is None:
                self._flush_at = asyncio.get_running_loop().call_later(BATCH_S, self._flush)

        self.forwarder.tap_frames(key, self.name, consume)

    def _flush(self) -> None:
        self._flush_at = None
        if self._batch:
            batch, self._batch = self._batch, []
            self._q.put(batch)

    def remove(self, key: SourceKey) -> None:
        if key in self.keys:
            self.keys.remove(key)
            self.forwarder.untap_frames(key, self.name)

    async def stop(self) -> list[RecordedFile]:
        """Stop tapping, let the writer finish every file (in its thread); the files."""
        for key in list(self.keys):
            self.remove(key)
        if self._flush_at is not None:
            self._flush_at.cancel()
        self._flush()
        self._q.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        out = []
        for f in self.files.values():
            if f.container is None or f.error:
                if f.error:
                    log.warning("recording %s: %s's file failed: %s", self.name, f.user, f.error)
                continue
            w, h = f.size or (0, 0)
            out.append(RecordedFile(f.user, f.path, "video/webm" if f.webm else "video/x-matroska",
                                    round((f.end_ms - (f.first_ms or 0)) / 1000, 3), w, h,
                                    {k: s.frames for k, s in f.streams.items()}))
        return out

    # --- the writer thread -----------------------------------------------------------------
    def _writer(self) -> None:
        gens: dict[tuple[str, str], int] = {}
        while True:
            batch = self._q.get()
            if batch is None:
                break
            for job in batch:
                self._frame(gens, *job)
        for f in self.files.values():
            try:
                if f.container is None and f.early and f.error is None:
                    self._open(f)  # some stream never began (video without a keyframe)
                    self._flush_early(f)
                if f.container is not None:
                    f.container.close()
            except Exception as e:  # noqa: BLE001
                f.error = f"{type(e).__name__}: {e}"

    def _frame(self, gens: dict[tuple[str, str], int], owner: str, kind: str, mime: str,
               data: bytes, pts: int, time_base: fractions.Fraction, key: bool,
               arrival_s: float, gen: int) -> None:
        f = self.files.get(owner)
        if f is None or f.error:
            return
        try:
            s = f.streams.get(kind)
            if s is None:
                s = f.streams[kind] = _Stream(CODEC_NAMES.get(mime.lower(), ""))
            if gens.get((owner, kind)) != gen:  # a new connection: anchor it afresh
                gens[(owner, kind)] = gen
                s.anchor_ms, s.base = None, None
            pts_s = pts * float(time_base)
            if s.anchor_ms is None or s.base is None:
                if kind == "video" and not key:
                    return  # a file starts on a keyframe
                s.anchor_ms, s.base = arrival_s * 1000, pts_s
            at = max(int(round(s.anchor_ms + (pts_s - s.base) * 1000)), s.last_ms + 1)
            s.last_ms = at
            self._write(f, kind, data, at, key)
        except Exception as e:  # noqa: BLE001 - one file failing must not stop the others
            f.error = f"{type(e).__name__}: {e}"

    def _write(self, f: ParticipantFile, kind: str, data: bytes, at: int, key: bool) -> None:
        if f.container is None:
            if kind == "video" and f.size is None and f.streams[kind].codec == "vp8":
                f.size = _vp8_size(data)
            f.early.append((kind, data, at, key))
            anchored = {k for k, s in f.streams.items() if s.anchor_ms is not None}
            if f.kinds <= anchored or len(f.early) > EARLY_FRAMES:
                self._open(f)
                self._flush_early(f)
            return
        self._mux(f, kind, data, at, key)

    def _open(self, f: ParticipantFile) -> None:
        # only streams that have begun (video: with a keyframe); the header is written now
        f.streams = {k: s for k, s in f.streams.items() if s.anchor_ms is not None}
        fmt = "webm" if f.webm else "matroska"
        f.path = f.path.with_suffix(".webm" if f.webm else ".mkv")
        c = av.open(str(f.path), "w", format=fmt)
        for kind, s in f.streams.items():
            st: Any = c.add_stream(s.codec, rate=30 if kind == "video" else
                                   48000 if s.codec == "opus" else 8000)
            if kind == "video":
                w, h = f.size or (640, 480)  # H.264: the decoder reads the SPS anyway
                st.width, st.height = w, h
                f.size = (w, h)
            elif s.codec == "opus":
                st.codec_context.layout = "stereo"
                st.codec_context.extradata = OPUS_HEAD
            st.time_base = MS
            f.av_streams[kind] = st
        f.container = c

    def _flush_early(self, f: ParticipantFile) -> None:
        early, f.early = f.early, []
        for kind, data, at, key in early:
            if kind in f.av_streams:
                self._mux(f, kind, data, at, key)

    def _mux(self, f: ParticipantFile, kind: str, data: bytes, at: int, key: bool) -> None:
        st = f.av_streams.get(kind)
        if st is None or f.container is None:
            return
        p = av.Packet(data)
        p.stream = st
        p.time_base = MS
        p.pts = p.dts = at
        p.is_keyframe = key
        f.container.mux(p)
        f.streams[kind].frames += 1
        f.first_ms = at if f.first_ms is None else min(f.first_ms, at)
        f.end_ms = max(f.end_ms, at + (20 if kind == "audio" else 33))


def _vp8_size(frame: bytes) -> tuple[int, int] | None:
    """A VP8 keyframe's picture size (RFC 6386 §9.1: start code, then 14-bit sizes)."""
    if not vp8.is_keyframe(frame) or len(frame) < 10 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    w, h = struct.unpack("<HH", frame[6:10])
    return w & 0x3FFF, h & 0x3FFF
