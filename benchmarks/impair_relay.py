"""A userspace UDP impairment relay for the media path (loss, delay, jitter, reordering,
a bandwidth cap, an outage), on 127.0.0.1.

Why userspace: this machine's kernel has no ``netem`` (``tbf`` alone cannot delay or drop at
random), and a relay in the benchmark process can be switched between scenarios and into an
outage at a known instant, which is what "time to recover after a 2 s outage" needs.

How it gets onto the path (ICE configuration, no routing tricks): the impaired browser is
given *rewritten remote candidates*. Every candidate of the far end (the gateway, or the
other browser) is replaced by a relay port on 127.0.0.1 that stands for it (``port_for``),
and the impaired browser's own candidates are not handed to the far end, which learns it
only as a peer-reflexive address: the relay's port. Each relay port behaves like a NAT
binding with one target: a datagram from anywhere else goes to the target; a datagram from
the target goes back to whoever last sent through this port. Both directions go through the
same :class:`Impairment` settings (``up``: towards the target, ``down``: back).

Network safety (docs/testing.md#network-safety): loopback only, both ways. A relay port is
made only for a loopback target (``port_for`` refuses any other address: None, and the
impaired browser drops that candidate), and it takes datagrams only from loopback sources:
one from any other address is dropped and counted (``refused``), so it never becomes the
port's client and nothing is ever sent back to it. (The relay binds 127.0.0.1, so only a
process of this machine can reach it; a socket bound to eth0's address can, which is what
Chromium's default WebRTC policy does.)
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field

from benchmarks.loopback import is_loopback
from benchmarks.packet_trace import datagram_fields


@dataclass
class Impairment:
    """One direction of the impaired link. Every limit is per direction."""

    loss: float = 0.0  # probability of dropping a datagram
    delay_ms: float = 0.0  # one-way
    jitter_ms: float = 0.0  # ± uniform around the delay (reorders, as netem's jitter does)
    reorder: float = 0.0  # probability that a datagram is held back one extra delay_ms/2
    rate_kbps: float | None = None  # bandwidth cap: datagrams serialised at this rate...
    queue_ms: float = 400.0  # ...behind a queue of at most this many ms (drop-tail beyond)
    outage: bool = False  # drop everything (set and cleared at run time)
    # counters
    sent: int = 0
    dropped: int = 0
    bytes: int = 0
    _free_at: float = field(default=0.0, repr=False)

    def schedule(self, size: int, now: float) -> float | None:
        """Seconds from ``now`` until the datagram leaves, or None (dropped)."""
        if self.outage or (self.loss and random.random() < self.loss):
            self.dropped += 1
            return None
        wait = 0.0
        if self.rate_kbps:
            start = max(now, self._free_at)
            if start - now > self.queue_ms / 1000.0:
                self.dropped += 1
                return None
            self._free_at = start + size * 8 / (self.rate_kbps * 1000.0)
            wait = self._free_at - now
        delay = self.delay_ms
        if self.jitter_ms:
            delay += random.uniform(-self.jitter_ms, self.jitter_ms)
        if self.reorder and random.random() < self.reorder:
            delay += self.delay_ms / 2 or 5.0
        self.sent += 1
        self.bytes += size
        return wait + max(delay, 0.0) / 1000.0


class _Port(asyncio.DatagramProtocol):
    """One relay port standing for ``target``."""

    def __init__(self, relay: ImpairRelay, target: tuple[str, int]):
        self.relay = relay
        self.target = target
        self.client: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        src = (addr[0], addr[1])
        if not is_loopback(src[0]):
            self.relay.refused += 1  # never a client: nothing goes back to that address
            return
        if src == self.target:
            if self.client is None:
                return
            dest, imp = self.client, self.relay.down
        else:
            self.client = src
            dest, imp = self.target, self.relay.up
        wait = imp.schedule(len(data), time.monotonic())
        log = self.relay.log
        if log is not None:  # --trace: the datagram's cleartext header, passed or dropped
            f = datagram_fields(data)
            if f is not None:
                log.append([time.time() * 1000.0, "up" if imp is self.relay.up else "down",
                            int(wait is None), *f])
        if wait is None:
            return
        if wait <= 0.0005:
            self._send(data, dest)
        else:
            self.relay.loop.call_later(wait, self._send, data, dest)

    def _send(self, data: bytes, dest) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, dest)


class ImpairRelay:
    """Relay ports on 127.0.0.1, one per far-end candidate, sharing one impairment."""

    def __init__(self, up: Impairment | None = None, down: Impairment | None = None):
        self.up = up or Impairment()
        self.down = down or Impairment()
        self.loop = asyncio.get_running_loop()
        self._ports: dict[tuple[str, int], _Port] = {}
        self.refused = 0  # datagrams from a non-loopback source, dropped
        self.log: list[list] | None = None  # --trace: one entry per RTP/RTCP datagram

    async def port_for(self, ip: str, port: int) -> int | None:
        """The relay port standing for ``ip:port`` (made on first use); None unless ``ip``
        is an IPv4 loopback address (the relay binds 127.0.0.1): nothing else is relayed."""
        target = (ip, int(port))
        p = self._ports.get(target)
        if p is None:
            if ":" in ip or not is_loopback(ip):
                return None
            p = _Port(self, target)
            await self.loop.create_datagram_endpoint(lambda: p, local_addr=("127.0.0.1", 0))
            self._ports[target] = p
        assert p.transport is not None
        return p.transport.get_extra_info("sockname")[1]

    def set(self, up: Impairment, down: Impairment) -> None:
        """Switch both directions to new settings (counters start again)."""
        self.up, self.down = up, down

    def outage(self, on: bool) -> None:
        self.up.outage = self.down.outage = on

    def close(self) -> None:
        for p in self._ports.values():
            if p.transport is not None:
                p.transport.close()
        self._ports.clear()


# --- in its own process ------------------------------------------------------------------
# The relay runs in a child process so that its timers are not delayed by the gateway's
# event loop (same process, same loop: the gateway's load would become "network jitter"),
# nor the gateway's arrival times by the relay's. One JSON command per line on stdin, one
# JSON reply per line on stdout.

SETTINGS = ("loss", "delay_ms", "jitter_ms", "reorder", "rate_kbps", "queue_ms")


def _impairment(d: dict | None) -> Impairment:
    return Impairment(**{k: v for k, v in (d or {}).items() if k in SETTINGS})


def _counters(i: Impairment) -> dict:
    return {"sent": i.sent, "dropped": i.dropped, "bytes": i.bytes}


async def _serve() -> None:
    relay = ImpairRelay()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout
    while line := await reader.readline():
        cmd = json.loads(line)
        op = cmd.get("op")
        reply: dict = {}
        if op == "port":
            reply["port"] = await relay.port_for(cmd["ip"], cmd["port"])
        elif op == "set":
            relay.set(_impairment(cmd.get("up")), _impairment(cmd.get("down")))
        elif op == "outage":
            relay.outage(bool(cmd["on"]))
        elif op == "stats":
            reply = {"up": _counters(relay.up), "down": _counters(relay.down),
                     "refused": relay.refused}
        elif op == "trace":  # start (again) recording datagrams
            relay.log = [] if cmd.get("on", True) else None
        elif op == "log":  # what was recorded since the last "trace" or "log"
            reply = {"log": relay.log or []}
            if relay.log is not None:
                relay.log = []
        elif op == "quit":
            break
        else:
            reply["error"] = f"unknown op {op!r}"
        out.write(json.dumps(reply) + "\n")
        out.flush()
    relay.close()


class RelayProcess:
    """The parent's handle on a relay child process (``python -m benchmarks.impair_relay``)."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.impair_relay",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 26)  # a --trace log is one line of a few MB

    async def _ask(self, **cmd) -> dict:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        async with self._lock:
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            await self.proc.stdin.drain()
            line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the impairment relay process ended")
        return json.loads(line)

    async def port_for(self, ip: str, port: int) -> int | None:
        return (await self._ask(op="port", ip=ip, port=int(port)))["port"]

    async def set(self, up: Impairment, down: Impairment) -> None:
        pick = lambda i: {k: getattr(i, k) for k in SETTINGS}  # noqa: E731
        await self._ask(op="set", up=pick(up), down=pick(down))

    async def outage(self, on: bool) -> None:
        await self._ask(op="outage", on=on)

    async def stats(self) -> dict:
        return await self._ask(op="stats")

    async def trace(self, on: bool = True) -> None:
        await self._ask(op="trace", on=on)

    async def log(self) -> list[list]:
        return (await self._ask(op="log"))["log"]

    async def close(self) -> None:
        if self.proc is None:
            return
        try:
            await asyncio.wait_for(self._ask(op="quit"), 2)
        except (TimeoutError, RuntimeError, json.JSONDecodeError):
            pass
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


# The impaired browser's side: remote candidates rewritten to relay ports (through the
# exposed binding ``__relayFor(ip, port) → port | null``), its own candidates kept back.
IMPAIR_JS = r"""
(() => {
  const Orig = window.RTCPeerConnection;
  if (!Orig || Orig.__impaired) return;
  window.__pcs = window.__pcs || [];
  const CAND = /^(a=)?(candidate:\S+ \d+ udp \d+ )(\S+) (\d+)( typ .*)$/i;
  async function rewriteLine(line) {
    const m = CAND.exec(line.trim());
    if (!m) return line.startsWith('a=candidate') || line.startsWith('candidate') ? null : line;
    const port = await window.__relayFor(m[3], Number(m[4]));
    if (port == null) return null;
    return `${m[1] || ''}${m[2]}127.0.0.1 ${port}${m[5]}`;
  }
  async function rewriteSdp(sdp) {
    const out = [];
    for (const line of sdp.split('\r\n')) {
      const r = await rewriteLine(line);
      if (r !== null) out.push(r);
    }
    return out.join('\r\n');
  }
  function Impaired(...args) {
    const pc = new Orig(...args);
    window.__pcs.push(pc);
    const srd = pc.setRemoteDescription.bind(pc);
    pc.setRemoteDescription = async (d) => srd(d && d.sdp ? {type: d.type, sdp: await rewriteSdp(d.sdp)} : d);
    const aic = pc.addIceCandidate.bind(pc);
    pc.addIceCandidate = async (c) => {
      if (!c || !c.candidate) return aic(c);
      const r = await rewriteLine(c.candidate);
      if (r === null) return;
      return aic({candidate: r, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex});
    };
    // our own candidates never reach the far end: it must answer the relay's port
    Object.defineProperty(pc, 'onicecandidate', {set() {}, get() { return null; }});
    const ael = pc.addEventListener.bind(pc);
    pc.addEventListener = (type, ...rest) => type === 'icecandidate' ? undefined : ael(type, ...rest);
    return pc;
  }
  Impaired.prototype = Orig.prototype;
  Impaired.__impaired = true;
  Object.setPrototypeOf(Impaired, Orig);
  window.RTCPeerConnection = Impaired;
})();
"""


if __name__ == "__main__":
    asyncio.run(_serve())
