"""Signaling at scale: 10,000 WebSocket sessions on one gateway process.

Starts one real gateway (``livedesk serve``, embedded in-memory state) and opens the
sessions from several client processes (each its own asyncio loop and aiohttp session with
``TCPConnector(limit=0)``). Every session says ``hello`` and ``room.watch``es the demo room.

* **Fan-out**: a host session sends ``room.stock`` ``--updates`` times, ``--interval`` s
  apart; every client stamps the arrival of the matching ``room.update`` (raw frame, parsed
  after the run); latency = arrival − trigger on the machine's monotonic clock, over all
  (session, update) pairs.
* **Bare baseline, same run, same client processes**: a tiny aiohttp app (this file with
  ``--bare-server PORT``) that accepts sockets and, on a trigger frame, sends a JSON text of
  the same size as the gateway's ``room.update`` to every socket.
* **RSS per session**: gateway VmRSS before and after the plain watchers connect.
* **Flash-sale burst**: ``--burst-conversations`` viewer sessions (part of the sessions
  above) each have a conversation open and send ``message.send`` with a unique
  ``client_msg_id`` at ``--burst-rate / --burst-conversations`` per second for
  ``--burst-seconds`` (open loop: sends are not held back by slow acks); the bot answers
  every message. Afterwards every conversation is read back with ``conversation.get`` and
  every acknowledged message must be in it (``burst_lost``).

* **permessage-deflate** (``--client-deflate on``, the default): every client socket
  (watchers, the host, the bare server's trigger) offers exactly what Chromium offers,
  ``permessage-deflate; client_max_window_bits``, and so compresses what it sends and
  decompresses what it receives. The gateway answers as ``signaling/wsdeflate.py`` does
  (no server context takeover; each broadcast compressed once); the bare server keeps
  aiohttp's default (``compress=True``: context takeover, one compressor per socket, each
  broadcast compressed per socket) — bare aiohttp with deflate, as a browser gets it.
  ``--client-deflate off``: no client offers it (the figures before issue 21). The
  extensions each server answered are reported (``gateway_extensions``,
  ``bare_extensions``), and so is the bare server's RSS per socket.

Prints the figures, and one JSON object as the last line.

    python -m benchmarks.signaling [--json] [--sessions 10000] [--workers 4] [--client-deflate on|off]
        [--updates 20] [--interval 2] [--burst-seconds 30] [--burst-rate 5000]
        [--burst-conversations 1000] [--py-spy DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from benchmarks.common import cpu_model, free_port, pct  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ROOM = "demo"
# pre-sale questions (no escalation cue), cycled through by the burst senders. No after-sale
# (logistics/refund) ones: their answers await the commerce adapter, and once the loop lags
# more than bot_timeout_s they time out into escalations (docs/performance.md)
QUESTIONS = ["冲锋衣是什么面料", "172 130斤穿冲锋衣什么码", "徒步裤M码现在还有吗", "送毛巾的名额还剩几个",
             "登山鞋有几个颜色", "可以用花呗分期付款吗", "今天直播到几点", "how much is the rain jacket?",
             "is the camping lamp sold out?", "can I get an invoice?", "登山鞋是什么材质", "券码发一下"]
mono = time.monotonic  # CLOCK_MONOTONIC: one clock for every process on this machine
# what a client keeps of each broadcast frame: enough for the type, the key (room version or
# bench key) and the change kind, which come first in both servers' frames
HEAD_CHARS = 160






def raise_nofile() -> None:
    """preexec_fn / worker start: as many descriptors as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


# --- the bare baseline server ----------------------------------------------------------------

def bare_server_main(port: int) -> None:
    """``--bare-server PORT``: accept sockets; a frame ``TRIGGER<json>`` from any socket is
    sent to every other socket. Same aiohttp defaults as the gateway's endpoint."""
    from aiohttp import WSMsgType, web

    socks: set = set()

    async def ws_handler(request):
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024, heartbeat=20.0)
        await ws.prepare(request)
        socks.add(ws)
        try:
            async for m in ws:
                if m.type != WSMsgType.TEXT:
                    break
                if m.data.startswith("TRIGGER"):
                    payload = m.data[7:]
                    for s in list(socks):
                        if s is not ws:
                            try:
                                await s.send_str(payload)
                            except Exception:
                                pass
        finally:
            socks.discard(ws)
        return ws

    async def healthz(request):
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                handle_signals=True, loop=same_loop_as_gateway())


def same_loop_as_gateway():
    """The event loop ``livedesk serve`` picks (``LIVEDESK_LOOP``, default ``auto``: uvloop
    when installed): the baseline runs on the same one, or the ratio would measure loops."""
    from gateway.cli import _loop_factory

    factory = _loop_factory(os.environ.get("LIVEDESK_LOOP", "auto"))
    return factory() if factory else asyncio.new_event_loop()


# --- client worker processes -----------------------------------------------------------------

class Conn:
    __slots__ = ("ws", "user", "bcast", "pending", "conv", "acked", "ack_ms", "errors",
                 "sent", "bot", "queued", "reader", "ids", "token")

    def __init__(self, ws, user: str):
        self.ws = ws
        self.user = user
        self.bcast: list = []  # (arrival, head of the raw frame) of broadcast frames
        self.pending: dict = {}  # request id → future | (t_sent, client_msg_id)
        self.conv: str | None = None
        self.acked: list[str] = []
        self.ack_ms: list[float] = []
        self.errors: dict[str, int] = {}
        self.sent = 0
        self.bot = 0
        self.queued = 0
        self.reader = None
        self.ids = 0
        self.token = None


class Worker:
    def __init__(self, conn, idx: int, compress: int):
        self.pipe = conn
        self.idx = idx
        self.compress = compress  # 15: offer permessage-deflate as Chromium does; 0: don't
        self.extensions: str | None = None  # what the server answered (first socket)
        self.conns: list[Conn] = []
        self.samples: list[str] = []  # a few whole broadcast frames (their size)
        self.http: aiohttp.ClientSession | None = None
        self.url = ""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                          timeout=aiohttp.ClientTimeout(total=None))
        while True:
            cmd = await loop.run_in_executor(None, self.pipe.recv)
            op, args = cmd
            try:
                res = await getattr(self, "op_" + op)(**args)
            except Exception as e:  # report, keep the worker alive
                import traceback
                res = {"error": f"{type(e).__name__}: {e}", "tb": traceback.format_exc()}
            self.pipe.send(res)
            if op == "quit":
                break
        await self.http.close()

    # request/reply on one socket
    async def request(self, c: Conn, type_: str, timeout: float = 120.0, **fields) -> dict:
        c.ids += 1
        rid = c.ids
        fut = asyncio.get_running_loop().create_future()
        c.pending[rid] = fut
        await c.ws.send_str(json.dumps({"type": type_, "id": rid, **fields}))
        return await asyncio.wait_for(fut, timeout)

    async def _read(self, c: Conn) -> None:
        ws = c.ws
        try:
            async for m in ws:
                if m.type != aiohttp.WSMsgType.TEXT:
                    continue
                t = mono()
                d = m.data
                if d.startswith('{"type":"room.update"') or d.startswith('{"type":"bench"'):
                    # parsed after the run: keep the read loop cheap. Only the head (type,
                    # version or key, change kind) is kept: keeping every 3.7 KB frame grew
                    # the clients by ~150 MB per phase, and the first phase measured paid
                    # for it in page faults (the kernel zeroing fresh pages was 48 % of a
                    # client's samples in the gateway phase, ~0 in the bare phase that
                    # reused the memory; client system time ×4.5)
                    c.bcast.append((t, d[:HEAD_CHARS]))
                    if len(self.samples) < 5:
                        self.samples.append(d)
                    continue
                if d.startswith('{"type":"room.') or d.startswith('{"type":"queue.'):
                    if '"id":' not in d:
                        continue
                f = json.loads(d)
                rid = f.get("id")
                if rid is not None:
                    p = c.pending.pop(rid, None)
                    if p is None:
                        continue
                    if isinstance(p, tuple):  # a burst message.send
                        ts, cmid = p
                        if f.get("type") == "message" and f.get("client_msg_id") == cmid:
                            c.acked.append(cmid)
                            c.ack_ms.append((t - ts) * 1000)
                        else:
                            k = f.get("code", f.get("type"))
                            c.errors[k] = c.errors.get(k, 0) + 1
                    elif not p.done():
                        p.set_result(f)
                    continue
                typ = f.get("type")
                if typ == "message" and (f.get("from") or {}).get("role") == "bot":
                    c.bot += 1
                elif typ == "conversation.state" and f.get("state") == "queued":
                    c.queued += 1
        except Exception:
            pass

    async def _open_one(self, url: str, user: str, token: str | None, open_conv: bool,
                        sem: asyncio.Semaphore, at: float = 0.0) -> Conn | None:
        if at > mono():
            await asyncio.sleep(at - mono())
        async with sem:
            for attempt in range(5):
                try:
                    ws = await self.http.ws_connect(url, max_msg_size=16 * 1024 * 1024,
                                                    compress=self.compress)
                    if self.extensions is None:
                        self.extensions = extensions_of(ws)
                    break
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                return None
            c = Conn(ws, user)
            c.token = token
            c.reader = asyncio.get_running_loop().create_task(self._read(c))
            if token is not None:
                w = await self.request(c, "hello", token=token, protocol=1)
                if w.get("type") != "welcome":
                    raise RuntimeError(f"hello failed: {w}")
                r = await self.request(c, "room.watch", room=ROOM)
                if r.get("type") == "error":
                    raise RuntimeError(f"room.watch failed: {r}")
                if open_conv:
                    r = await self.request(c, "conversation.open", room=ROOM)
                    if r.get("type") == "error":
                        raise RuntimeError(f"conversation.open failed: {r}")
                    c.conv = r["conversation"]
            return c

    async def op_connect(self, url: str, n: int, secret: str | None, prefix: str,
                         open_conv: bool = False, concurrency: int = 64,
                         spread_s: float = 0.0) -> dict:
        """Open ``n`` sockets; with a secret each says hello and watches the room (and, with
        ``open_conv``, opens its conversation). ``spread_s``: start the connects evenly over
        that many seconds instead of as fast as possible."""
        tokens = None
        self.url = url
        if secret is not None:
            from signaling import TokenAuthority
            ta = TokenAuthority(secret)
            tokens = [ta.issue(f"{prefix}-{self.idx}-{i}", "viewer", room=ROOM, ttl_s=7200)
                      for i in range(n)]
        sem = asyncio.Semaphore(concurrency)
        t0 = mono()
        got = await asyncio.gather(*[
            self._open_one(url, f"{prefix}-{self.idx}-{i}", tokens[i] if tokens else None,
                           open_conv, sem, t0 + spread_s * i / max(n, 1))
            for i in range(n)], return_exceptions=True)
        errs = [repr(g) for g in got if isinstance(g, BaseException)]
        ok = [g for g in got if isinstance(g, Conn)]
        self.conns.extend(ok)
        ext, self.extensions = self.extensions, None
        return {"opened": len(ok), "failed": n - len(ok), "errors": errs[:3],
                "seconds": mono() - t0, "extensions": ext}

    async def op_results(self, kind: str, t0: dict, measure: list) -> dict:
        """Latency of every broadcast frame that matches a trigger in ``t0`` (key → time)."""
        pat = re.compile(r'"version":(\d+)') if kind == "gw" else re.compile(r'"k":(\d+)')
        t0 = {int(k): v for k, v in t0.items()}
        measure = set(measure)
        lat: list[float] = []
        by_key: dict[int, float] = {}  # slowest arrival per trigger
        missing = 0
        sizes = [len(d.encode("utf-8")) for d in self.samples]
        self.samples.clear()
        for c in self.conns:
            seen = set()
            for t, d in c.bcast:
                if kind == "gw" and '"kind":"stock"' not in d:
                    continue
                m = pat.search(d)
                if not m:
                    continue
                k = int(m.group(1))
                if k in t0 and k not in seen:
                    seen.add(k)
                    ms = (t - t0[k]) * 1000
                    by_key[k] = max(by_key.get(k, 0.0), ms)
                    if k in measure:
                        lat.append(ms)
            missing += len(t0) - len(seen)
            c.bcast.clear()
        return {"lat": lat, "missing": missing, "sizes": sizes, "by_key": by_key}

    async def op_burst(self, start_at: float, seconds: float, per_session_rate: float,
                       drain_s: float, unique: bool = False) -> dict:
        convs = [c for c in self.conns if c.conv]
        first_send = [None]
        last_send = [0.0]

        async def sender(c: Conn, j: int) -> None:
            period = 1.0 / per_session_rate
            t = start_at + random.random() * period
            end = start_at + seconds
            k = 0
            while t < end:
                d = t - mono()
                if d > 0:
                    await asyncio.sleep(d)
                c.ids += 1
                rid = c.ids
                cmid = f"{c.user}-{k}"
                text = QUESTIONS[(j + k) % len(QUESTIONS)]
                if unique:  # a text no one asked before: the bot's memo cannot answer it
                    text = f"{text} {c.user}-{k}"
                ts = mono()
                c.pending[rid] = (ts, cmid)
                try:
                    await c.ws.send_str(json.dumps({"type": "message.send", "id": rid,
                                                    "conversation": c.conv, "text": text,
                                                    "client_msg_id": cmid}))
                except Exception:
                    c.pending.pop(rid, None)
                    c.errors["send_failed"] = c.errors.get("send_failed", 0) + 1
                    return
                c.sent += 1
                if first_send[0] is None:
                    first_send[0] = ts
                last_send[0] = ts
                k += 1
                t += period

        await asyncio.gather(*[sender(c, j) for j, c in enumerate(convs)])
        # wait for the acks to come in (the gateway may be behind the offered rate)
        deadline = mono() + drain_s
        while mono() < deadline and any(
                isinstance(p, tuple) for c in convs for p in c.pending.values()):
            await asyncio.sleep(0.2)
        drained_at = mono()
        unacked = sum(1 for c in convs for p in c.pending.values() if isinstance(p, tuple))
        # the bot's answers are part of the load: wait for them too (one per message)
        want = sum(len(c.acked) for c in convs)
        while mono() < deadline and sum(c.bot for c in convs) < want:
            await asyncio.sleep(0.2)
        bot_done_at = mono()
        # read back every conversation: everything acknowledged must be in it
        lost = 0
        checked = 0
        sem = asyncio.Semaphore(32)

        closed = 0
        unverified = [0]

        async def verify(c: Conn) -> int:
            nonlocal closed
            async with sem:
                if c.ws.closed:  # dropped by the gateway (e.g. a heartbeat missed under load)
                    closed += 1
                    ws = await self.http.ws_connect(self.url, max_msg_size=16 << 20,
                                                    compress=self.compress)
                    old = c
                    c = Conn(ws, old.user)
                    c.conv = old.conv
                    c.reader = asyncio.get_running_loop().create_task(self._read(c))
                    await self.request(c, "hello", token=old.token, protocol=1)
                    acked = old.acked
                else:
                    acked = c.acked
                try:
                    snap = await self.request(c, "conversation.get", timeout=300,
                                              conversation=c.conv)
                except (TimeoutError, aiohttp.ClientError, ConnectionError):
                    unverified[0] += len(acked)
                    return 0
            have = {m.get("client_msg_id") for m in snap.get("messages", ())}
            if snap.get("omitted"):
                # the snapshot holds the latest `conversation_history` (200) messages; the
                # bot's answers push the earliest viewer messages out. Those before the
                # oldest one kept cannot be checked here: unverified, not lost
                cut = next((i for i, cmid in enumerate(acked) if cmid in have), len(acked))
                unverified[0] += cut
                acked = acked[cut:]
            return sum(1 for cmid in acked if cmid not in have)

        for n in await asyncio.gather(*[verify(c) for c in convs]):
            lost += n
            checked += 1
        errors: dict[str, int] = {}
        for c in convs:
            for k, v in c.errors.items():
                errors[k] = errors.get(k, 0) + v
        return {"sent": sum(c.sent for c in convs), "acked": sum(len(c.acked) for c in convs),
                "ack_ms": [x for c in convs for x in c.ack_ms], "lost": lost,
                "unacked": unacked, "errors": errors, "bot": sum(c.bot for c in convs),
                "queued": sum(c.queued for c in convs), "conversations": checked,
                "closed": closed, "unverified": unverified[0],
                "first_send": first_send[0], "last_send": last_send[0],
                "drained_at": drained_at, "bot_done_at": bot_done_at}

    async def op_measure(self, start: bool) -> dict:
        """Bracket a fan-out phase (both servers' alike). On ``start``: forget broadcast
        frames received so far, collect once, then no automatic collections until the
        results are read (the arrivals kept are strings in tuples: no cycles). The clients
        are the instrument and their own collector must not pause them while they stamp
        arrivals: measured without this, gen-1 collections of 20–50 ms in the client
        processes overlapped about one update in three, full ones took up to 0.39 s."""
        import gc
        if start:
            for c in self.conns:
                c.bcast.clear()
            self.samples.clear()
            gc.collect()
            gc.disable()
        else:
            gc.enable()
        return {}

    async def op_close(self) -> dict:
        conns, self.conns = self.conns, []
        sem = asyncio.Semaphore(256)

        async def close(c: Conn):
            async with sem:
                try:
                    await asyncio.wait_for(c.ws.close(), 5)
                except Exception:
                    pass
                if c.reader:
                    c.reader.cancel()
        await asyncio.gather(*[close(c) for c in conns])
        return {"closed": len(conns)}

    async def op_quit(self) -> dict:
        await self.op_close()
        return {}


def extensions_of(ws) -> str:
    """The ``Sec-WebSocket-Extensions`` a server answered on a client socket ("" for none)."""
    resp = getattr(ws, "_response", None)
    return (resp.headers.get("Sec-WebSocket-Extensions", "") if resp is not None else "?")


def worker_main(conn, idx: int, compress: int = 0) -> None:
    raise_nofile()
    try:
        import gc
        gc.freeze()
    except Exception:
        pass
    asyncio.run(Worker(conn, idx, compress).run())


class Workers:
    """The client processes, driven in lock-step over pipes."""

    # glibc malloc of the client processes, fixed. asyncio reads a socket into a fresh
    # 256 KiB bytes object (``max_size``) and shrinks it to what arrived; above glibc's
    # *dynamic* mmap threshold that is an mmap + munmap (+ page faults) per read, below it a
    # reuse of the heap's top. The threshold moves with what the process freed before, so
    # the same clients paid it on 98 % of their reads in the first (gateway) phase and on
    # 71 % in the second (bare) one (perf stat: 138,727 vs 98,684 mmaps per ~140,000 reads),
    # and the phase measured first was measured with a slower instrument.
    MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(4 << 20), "MALLOC_TRIM_THRESHOLD_": str(64 << 20)}

    def __init__(self, n: int, compress: int = 0):
        ctx = mp.get_context("spawn")
        self.pipes = []
        self.procs = []
        saved = {k: os.environ.get(k) for k in self.MALLOC_ENV}
        os.environ.update(self.MALLOC_ENV)  # read by glibc when each worker starts
        try:
            for i in range(n):
                a, b = ctx.Pipe()
                p = ctx.Process(target=worker_main, args=(b, i, compress), daemon=True)
                p.start()
                self.pipes.append(a)
                self.procs.append(p)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    async def all(self, op: str, args_for) -> list[dict]:
        loop = asyncio.get_running_loop()
        for i, p in enumerate(self.pipes):
            p.send((op, args_for(i)))
        res = await asyncio.gather(*[loop.run_in_executor(None, p.recv) for p in self.pipes])
        for r in res:
            if "error" in r:
                raise RuntimeError(f"worker {op} failed: {r['error']}\n{r.get('tb', '')}")
        return res

    def cpu(self) -> float:
        """CPU seconds used so far by all client processes (the instrument's own load)."""
        return sum(cpu_s(p.pid) for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --- servers under test ----------------------------------------------------------------------

class Proc:
    def __init__(self, argv: list[str], env: dict, port: int, name: str):
        self.port = port
        self.name = name
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"ld-bench-{name}-{port}.log", "w")
        self.p = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  preexec_fn=raise_nofile, cwd=str(ROOT))
        self.pid = self.p.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 180.0) -> None:  # a loaded machine starts slowly
        deadline = mono() + timeout
        async with aiohttp.ClientSession() as http:
            while mono() < deadline:
                if self.p.poll() is not None:
                    raise RuntimeError(f"{self.name} exited ({self.p.returncode}); see {self.log.name}")
                try:
                    async with http.get(self.url + "/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start; see {self.log.name}")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


class Spy:
    """py-spy on the gateway for one phase (``--py-spy DIR``), raw collapsed stacks."""

    def __init__(self, outdir: str | None, pid: int, phase: str):
        self.p = None
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if outdir and Path(exe).exists():
            Path(outdir).mkdir(parents=True, exist_ok=True)
            self.out = str(Path(outdir) / f"{phase}.txt")
            self.p = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "200",
                                       "--format", "raw", "--nonblocking", "-o", self.out],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.p is not None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()


# --- the run ---------------------------------------------------------------------------------

async def host_session(url: str, token: str, compress: int) -> tuple:
    """The host's socket, read continuously (a socket nobody reads misses its heartbeat)."""
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(url.replace("http", "ws", 1) + "/ws", max_msg_size=16 << 20,
                               compress=compress)
    ids = iter(range(1, 1 << 30))
    pending: dict[int, asyncio.Future] = {}

    async def reader():
        async for m in ws:
            if m.type != aiohttp.WSMsgType.TEXT:
                continue
            if m.data.startswith('{"type":"room.update"'):
                if '"kind":"stock"' in m.data:
                    req.last_update = m.data
                continue
            f = json.loads(m.data)
            fut = pending.pop(f.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(f)
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(RuntimeError(f"host socket closed ({ws.close_code})"))

    async def req(type_, **kw):
        rid = next(ids)
        fut = asyncio.get_running_loop().create_future()
        pending[rid] = fut
        await ws.send_str(json.dumps({"type": type_, "id": rid, **kw}))
        return await asyncio.wait_for(fut, 120), None
    req.last_update = None
    req.task = asyncio.get_running_loop().create_task(reader())
    w, _ = await req("hello", token=token, protocol=1)
    assert w["type"] == "welcome", w
    await req("room.watch", room=ROOM)
    return http, ws, req


async def fanout_gateway(gw: Proc, req, n_updates: int, interval: float,
                         warmup: int) -> tuple[dict, list, str | None]:
    """``warmup`` updates first (reported apart), then the measured ones. Returns the
    triggers' times, the measured versions and the last ``room.update`` text."""
    t0: dict[int, float] = {}
    measured = []
    for i in range(warmup + n_updates):
        t = mono()
        ack, _ = await req("room.stock", room=ROOM, sku="D001", stock=10_000 + i)
        if ack.get("type") != "ack":
            raise RuntimeError(f"room.stock failed: {ack}")
        t0[ack["version"]] = t
        if i >= warmup:
            measured.append(ack["version"])
        await asyncio.sleep(interval)
    await req("ping")  # drain the host's own copies
    return t0, measured, req.last_update


def bare_payload(k: int, frame: str | None, size: int = 3000) -> str:
    """The text the bare server broadcasts for trigger ``k``: the gateway's own
    ``room.update`` (``frame``, as a watcher received it) with its head replaced by
    ``{"type":"bench","k":<k>`` and spaces before the closing brace, so it is the same
    number of UTF-8 bytes and the same characters (the demo room's product names and
    gifts are Chinese: ~400 of its ~2,900 characters are not ASCII, 3,675 bytes).

    Same bytes on both sides, because the clients are the instrument: an ASCII pad of the
    same *character* count (what this benchmark sent before) is 22 % fewer bytes to copy,
    decodes ~8× faster, and is kept by the clients as a 1-byte-per-character string instead
    of a 2-byte one; measured, that made the clients spend ~0.15 CPU-s less per update in
    the bare phase than in the gateway's, on the two cores the servers use too. Without a
    frame (``--bare-payload ascii``, or no update sent), an ASCII pad of ``size``
    characters."""
    if frame is None or ',"version"' not in frame:
        head = f'{{"type":"bench","k":{k},"pad":"' 
        return head + "x" * max(0, size - len(head) - 2) + '"}'
    body = f'{{"type":"bench","k":{k}' + frame[frame.index(',"version"'):-1]
    pad = len(frame.encode("utf-8")) - len(body.encode("utf-8")) - 1
    return body + " " * max(pad, 0) + "}"


async def fanout_bare(url: str, n_updates: int, interval: float, frame: str | None,
                      warmup: int, ascii_pad: bool = False, compress: int = 0) -> dict:
    t0: dict[int, float] = {}
    size = len(frame) if frame else 3000  # the ASCII pad: as many characters (before session 3)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url.replace("http", "ws", 1) + "/ws", compress=compress)
        for i in range(warmup + n_updates):
            payload = bare_payload(i, None if ascii_pad else frame, size)
            t0[i] = mono()
            await ws.send_str("TRIGGER" + payload)
            await asyncio.sleep(interval)
        await ws.close()
    return t0


def summarize(parts: list[dict]) -> tuple[list[float], int, list[int], list[float]]:
    lat = [x for p in parts for x in p["lat"]]
    slowest: dict = {}
    for p in parts:
        for k, v in p["by_key"].items():
            slowest[k] = max(slowest.get(k, 0.0), v)
    return (lat, sum(p["missing"] for p in parts), [s for p in parts for s in p["sizes"]],
            [round(slowest[k], 1) for k in sorted(slowest)])


async def run(args) -> dict:
    raise_nofile()
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print
    secret = secrets.token_urlsafe(32)
    port = free_port()
    # ``livedesk serve`` by its module (cwd = the repo), so the checkout is what runs
    argv = [sys.executable, "-m", "gateway.cli"]
    env = dict(os.environ, LIVEDESK_SECRET=secret, LIVEDESK_PORT=str(port),
               LIVEDESK_HOST="127.0.0.1", LIVEDESK_LOG_LEVEL="WARNING", LIVEDESK_DRAIN_S="1",
               # the load generator's senders are paced, but a gateway running behind reads
               # their frames in bursts; the per-socket limit is not what is measured here
               LIVEDESK_RATE_PER_S=str(args.rate_limit), LIVEDESK_RATE_BURST=str(args.rate_limit * 10),
               # every load-generator socket comes from 127.0.0.1: no per-address/user cap
               LIVEDESK_MAX_SOCKETS_PER_IP="0", LIVEDESK_MAX_SOCKETS_PER_USER="0")
    env.pop("LIVEDESK_DEV", None)
    env.pop("LIVEDESK_REDIS_URL", None)
    compress = 15 if args.client_deflate == "on" else 0
    res: dict = {"bench": "signaling", "sessions": args.sessions, "workers": args.workers,
                 "updates": args.updates, "warmup_updates": args.warmup,
                 "update_interval_s": args.interval, "client_deflate": args.client_deflate}
    workers = Workers(args.workers, compress)
    gw = Proc(argv + ["serve"], env, port, "gateway")
    try:
        await gw.ready()
        ws_url = gw.url.replace("http", "ws", 1) + "/ws"
        from signaling import TokenAuthority
        ta = TokenAuthority(secret)
        http, host_ws, req = await host_session(gw.url, ta.issue("bench-host", "host", room=ROOM,
                                                                  name="Host", ttl_s=7200),
                                                compress)
        res["gateway_extensions"] = extensions_of(host_ws)
        await asyncio.sleep(1.0)
        rss_idle = rss_kb(gw.pid)
        # 1. the burst viewers (their conversations are opened before the crowd watches:
        #    each conversation opened is a room.update to every watcher)
        nb = min(args.burst_conversations, args.sessions)
        t = connect_start = mono()
        r = await workers.all("connect", lambda i: dict(
            url=ws_url, n=split(nb, args.workers)[i], secret=secret, prefix="b", open_conv=True))
        opened_b = sum(x["opened"] for x in r)
        log(f"{opened_b} burst viewers: hello + room.watch + conversation.open in {mono() - t:.1f} s")
        await asyncio.sleep(2.0)
        rss_mid = rss_kb(gw.pid)
        # 2. the crowd: hello + room.watch
        t = mono()
        cpu0 = cpu_s(gw.pid)
        r = await workers.all("connect", lambda i: dict(
            url=ws_url, n=split(args.sessions - nb, args.workers)[i], secret=secret, prefix="v"))
        opened_v = sum(x["opened"] for x in r)
        connect_s = mono() - t
        connect_span_s = mono() - connect_start
        failed = sum(x["failed"] for x in r)
        errs = [e for x in r for e in x["errors"]]
        log(f"{opened_v} viewers: hello + room.watch in {connect_s:.1f} s "
            f"(gateway CPU {cpu_s(gw.pid) - cpu0:.1f} s){'; failures: ' + str(errs) if failed else ''}")
        await asyncio.sleep(3.0)
        rss_all = rss_kb(gw.pid)
        sessions = opened_b + opened_v
        res.update(sessions=sessions, connect_s=round(connect_s, 1),
                   connect_span_s=round(connect_span_s, 1),
                   rss_idle_mb=round(rss_idle / 1024, 1), rss_all_mb=round(rss_all / 1024, 1),
                   rss_per_session_kb=round((rss_all - rss_mid) / max(opened_v, 1), 2),
                   rss_per_session_all_kb=round((rss_all - rss_idle) / max(sessions, 1), 2))
        log(f"gateway RSS: {rss_idle / 1024:.0f} MB idle → {rss_all / 1024:.0f} MB with {sessions} "
            f"sessions; {res['rss_per_session_kb']} KB per watching session "
            f"({res['rss_per_session_all_kb']} KB/session over all incl. conversations)")
        # 3. fan-out through the gateway
        await workers.all("measure", lambda i: dict(start=True))
        await asyncio.sleep(1.0)
        spy = Spy(args.py_spy, gw.pid, "fanout")
        cpu0 = cpu_s(gw.pid)
        ccpu0 = workers.cpu()
        t0, measured, frame = await fanout_gateway(gw, req, args.updates, args.interval, args.warmup)
        fan_cpu = cpu_s(gw.pid) - cpu0
        # after every watcher got every update: per-socket compressors would show here
        res["rss_after_fanout_per_session_kb"] = round((rss_kb(gw.pid) - rss_mid)
                                                       / max(opened_v, 1), 2)
        client_cpu = workers.cpu() - ccpu0
        size = len(frame.encode("utf-8")) if frame else 0
        if frame and compress:  # what one watcher's copy weighs on the wire (shared + splice)
            from signaling.wsdeflate import Deflater, splice
            body = frame.encode("utf-8")
            cut = body.rindex(b',"seq":')
            res["frame_bytes_deflated"] = len(splice(Deflater().prefix(body[:cut], 15) or b"",
                                                     body[cut:]))
        spy.stop()
        lat, missing, sizes, slowest = summarize(
            await workers.all("results", lambda i: dict(kind="gw", t0=t0, measure=measured)))
        await workers.all("measure", lambda i: dict(start=False))
        log(f"  slowest arrival per update (ms), {args.warmup} warm-up first: {slowest}")
        res["fanout_warmup_max_ms"] = max(slowest[:args.warmup], default=None)
        res.update(fanout_p50_ms=round(statistics.median(lat), 2), fanout_p99_ms=round(pct(lat, 99), 2),
                   fanout_max_ms=round(max(lat), 2), fanout_missing=missing, frame_bytes=size,
                   fanout_gateway_cpu_s_per_update=round(fan_cpu / (args.updates + args.warmup), 3),
                   fanout_client_cpu_s_per_update=round(client_cpu / (args.updates + args.warmup), 3))
        log(f"gateway fan-out to {sessions}: p50 {res['fanout_p50_ms']} ms, p99 {res['fanout_p99_ms']} ms, "
            f"max {res['fanout_max_ms']} ms, missing {missing} (room.update {size} B; "
            f"{res['fanout_gateway_cpu_s_per_update']} CPU-s per update; clients "
            f"{res['fanout_client_cpu_s_per_update']} CPU-s per update)")
        # 4. flash-sale burst
        if args.burst_seconds > 0 and nb > 0:
            spy = Spy(args.py_spy, gw.pid, "burst")
            cpu0 = cpu_s(gw.pid)
            start_at = mono() + 1.0
            rate = args.burst_rate / nb
            r = await workers.all("burst", lambda i: dict(
                start_at=start_at, seconds=args.burst_seconds, per_session_rate=rate,
                drain_s=args.burst_drain, unique=args.burst_questions == "unique"))
            burst_cpu = cpu_s(gw.pid) - cpu0
            spy.stop()
            ack = [x for p in r for x in p["ack_ms"]]
            sent = sum(p["sent"] for p in r)
            acked = sum(p["acked"] for p in r)
            first = min(p["first_send"] for p in r if p["first_send"])
            last = max(p["last_send"] for p in r)
            drained = max(p["drained_at"] for p in r)
            bot_done = max(p["bot_done_at"] for p in r)
            errors: dict = {}
            for p in r:
                for k, v in p["errors"].items():
                    errors[k] = errors.get(k, 0) + v
            res.update(
                burst_conversations=sum(p["conversations"] for p in r),
                burst_seconds=args.burst_seconds, burst_offered_per_s=args.burst_rate,
                burst_questions=args.burst_questions,
                burst_sent=sent, burst_sent_per_s=round(sent / max(last - first, 1e-9), 1),
                burst_acked=acked,
                burst_achieved_per_s=round(acked / max(drained - first, 1e-9), 1),
                burst_lost=sum(p["lost"] for p in r), burst_unacked=sum(p["unacked"] for p in r),
                burst_errors=errors, burst_bot_replies=sum(p["bot"] for p in r),
                burst_escalations=sum(p["queued"] for p in r),
                burst_sockets_dropped=sum(p["closed"] for p in r),
                burst_unverified=sum(p["unverified"] for p in r),
                burst_ack_p50_ms=round(statistics.median(ack), 2) if ack else None,
                burst_ack_p99_ms=round(pct(ack, 99), 2) if ack else None,
                burst_gateway_cpu_s=round(burst_cpu, 1),
                burst_drain_s=round(drained - last, 1),
                burst_bot_done_s=round(bot_done - last, 1))
            log(f"burst: offered {args.burst_rate}/s for {args.burst_seconds} s over "
                f"{res['burst_conversations']} conversations; sent {sent} "
                f"({res['burst_sent_per_s']}/s), acked {acked}, achieved {res['burst_achieved_per_s']}/s "
                f"(ack drain {res['burst_drain_s']} s after the last send); lost {res['burst_lost']}, "
                f"unacked {res['burst_unacked']}, unverified {res['burst_unverified']}, errors {errors}; ack p50 {res['burst_ack_p50_ms']} ms, "
                f"p99 {res['burst_ack_p99_ms']} ms; bot replies {res['burst_bot_replies']}, "
                f"escalations {res['burst_escalations']}, sockets dropped by the gateway {res['burst_sockets_dropped']} (last bot reply {res['burst_bot_done_s']} s after the last "
                f"send); gateway CPU {res['burst_gateway_cpu_s']} s")
        await host_ws.close()
        await http.close()
        await workers.all("close", lambda i: {})
    finally:
        gw.stop()
    # 5. the bare baseline with the same client processes
    bport = free_port()
    bare = Proc([sys.executable, "-m", "benchmarks.signaling", "--bare-server", str(bport)],
                dict(os.environ), bport, "bare")
    try:
        await bare.ready()
        await asyncio.sleep(1.0)
        bare_rss0 = rss_kb(bare.pid)
        # The sockets connect over as long as the gateway's did. aiohttp pings a socket 20 s
        # after the last frame it received from it, so the connect times set when the
        # heartbeat waves come: bare sockets opened as fast as possible (~2 s) pinged all
        # 10,000 within ~2 s every 20 s, and the one update landing in that wave took
        # ×1.5–2 longer (it set the bare p99); the gateway's, opened over ~12 s with their
        # hello and watch, spread their pings over ~12 s of every 20.
        r = await workers.all("connect", lambda i: dict(
            url=bare.url.replace("http", "ws", 1) + "/ws", n=split(args.sessions, args.workers)[i],
            secret=None, prefix="x", concurrency=256, spread_s=connect_span_s))
        res["bare_extensions"] = next((x["extensions"] for x in r if x["extensions"] is not None),
                                      None)
        await workers.all("measure", lambda i: dict(start=True))
        await asyncio.sleep(2.0)
        bare_sockets = sum(x["opened"] for x in r)
        res["bare_rss_per_session_kb"] = round((rss_kb(bare.pid) - bare_rss0)
                                               / max(bare_sockets, 1), 2)
        cpu0 = cpu_s(bare.pid)
        ccpu0 = workers.cpu()
        t0 = await fanout_bare(bare.url, args.updates, args.interval, frame, args.warmup,
                               ascii_pad=args.bare_payload == "ascii", compress=compress)
        bare_cpu = cpu_s(bare.pid) - cpu0
        res["bare_rss_after_fanout_per_session_kb"] = round((rss_kb(bare.pid) - bare_rss0)
                                                            / max(bare_sockets, 1), 2)
        client_cpu = workers.cpu() - ccpu0
        lat, missing, sizes, slowest = summarize(await workers.all("results", lambda i: dict(
            kind="bare", t0=t0, measure=list(range(args.warmup, args.warmup + args.updates)))))
        await workers.all("measure", lambda i: dict(start=False))
        log(f"  slowest arrival per update (ms), {args.warmup} warm-up first: {slowest}")
        res["bare_warmup_max_ms"] = max(slowest[:args.warmup], default=None)
        res.update(bare_fanout_p50_ms=round(statistics.median(lat), 2),
                   bare_fanout_p99_ms=round(pct(lat, 99), 2), bare_fanout_max_ms=round(max(lat), 2),
                   bare_missing=missing, bare_frame_bytes=sizes[0] if sizes else None,
                   bare_cpu_s_per_update=round(bare_cpu / (args.updates + args.warmup), 3),
                   bare_client_cpu_s_per_update=round(client_cpu / (args.updates + args.warmup), 3),
                   bare_payload=args.bare_payload)
        log(f"bare aiohttp fan-out to {sum(x['opened'] for x in r)}: p50 {res['bare_fanout_p50_ms']} ms, "
            f"p99 {res['bare_fanout_p99_ms']} ms, max {res['bare_fanout_max_ms']} ms, missing {missing} "
            f"({res['bare_frame_bytes']} B; {res['bare_cpu_s_per_update']} CPU-s per update; clients "
            f"{res['bare_client_cpu_s_per_update']} CPU-s per update)")
        await workers.all("quit", lambda i: {})
    finally:
        bare.stop()
        workers.stop()
    res["fanout_ratio"] = round(res["fanout_p99_ms"] / max(res["bare_fanout_p99_ms"], 1e-9), 3)
    res["fanout_ratio_p50"] = round(res["fanout_p50_ms"] / max(res["bare_fanout_p50_ms"], 1e-9), 3)
    import aiohttp as _a
    res["machine"] = {"cores": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
                      "aiohttp": _a.__version__, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                      "loop": type(same_loop_as_gateway()).__module__.split(".")[0]}
    log(f"fan-out ratio (p99 gateway ÷ p99 bare): ×{res['fanout_ratio']}  "
        f"(p50 ×{res['fanout_ratio_p50']}; {os.cpu_count()} cores, {args.workers} client processes)")
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="progress to stderr, one JSON line to stdout")
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=4, help="client processes")
    ap.add_argument("--updates", type=int, default=20, help="room updates for the fan-out")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between room updates")
    ap.add_argument("--warmup", type=int, default=3,
                    help="updates sent first and reported apart (both servers)")
    ap.add_argument("--burst-seconds", type=float, default=30.0)
    ap.add_argument("--burst-rate", type=float, default=5000.0, help="messages/s offered in total")
    ap.add_argument("--burst-conversations", type=int, default=1000)
    ap.add_argument("--burst-questions", choices=("repeated", "unique"), default="repeated",
                    help="repeated: 12 pre-sale questions cycled (as viewers repeat each other in "
                         "a sale); unique: each made new by a suffix, so the bot reads every one")
    ap.add_argument("--burst-drain", type=float, default=120.0,
                    help="max seconds to wait for outstanding acks after the last send")
    ap.add_argument("--rate-limit", type=int, default=1000,
                    help="per-socket LIVEDESK_RATE_PER_S for the gateway under test")
    ap.add_argument("--bare-payload", choices=("same", "ascii"), default="same",
                    help="what the bare server broadcasts: the gateway's room.update bytes "
                         "(default) or an ASCII pad of as many characters (before session 3)")
    ap.add_argument("--client-deflate", choices=("on", "off"), default="on",
                    help="on: every client offers permessage-deflate exactly as Chromium does "
                         "(permessage-deflate; client_max_window_bits), to both servers; "
                         "off: none does")
    ap.add_argument("--py-spy", default=None, metavar="DIR",
                    help="record the gateway with py-spy during fan-out and burst (raw stacks)")
    ap.add_argument("--bare-server", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_server is not None:
        bare_server_main(args.bare_server)
        return 0
    res = asyncio.run(run(args))
    print(json.dumps(res, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
