"""Issue 21, item 1: a real Chromium WebSocket (it offers ``permessage-deflate;
client_max_window_bits``, as every browser does) receives a few thousand broadcast frames
that the gateway compressed once per broadcast and spliced per socket
(``signaling/wsdeflate.py``), and a script in the page parses every one.

The broadcasts go through the hub's topic fan-out (``Hub.publish_local``, the path a room
update takes): each is serialized once, its head compressed once, and each session splices
its own ``seq``. They are sent in bursts of 500 without waiting; part of them go through
the session's writer task, spliced from the same one compression when written (the
test pauses the transport for one burst, as the transport does when the socket falls
behind, so that path is always taken). The page checks every frame: it parses as JSON, its
``seq`` is the previous one + 1, its ``i`` is the next one, and its text is what the test
derived from ``i``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import DESKTOP

pytestmark = [pytest.mark.browser]

N = 3_000
TOPIC = "deflate-e2e"

# the page's side: one socket, hello + watch, then a check of every frame as it arrives
PAGE_SCRIPT = """
([url, token]) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  const st = window.__deflate = {received: 0, bad: [], lastSeq: null, nextI: 0,
                                 extensions: null, welcome: false};
  const pad = (i) => ("冲锋衣 " + i + " 防水 ").repeat(20 + (i % 50));
  ws.onmessage = (ev) => {
    let f;
    try { f = JSON.parse(ev.data); } catch (e) { st.bad.push("unparsable: " + String(ev.data).slice(0, 80)); return; }
    if (f.type === "welcome") { st.welcome = true; st.lastSeq = f.seq; st.extensions = ws.extensions; resolve(ws.extensions); return; }
    if (f.type !== "bench.frame") return;
    if (f.seq !== st.lastSeq + 1) st.bad.push(`seq ${f.seq} after ${st.lastSeq}`);
    if (f.i !== st.nextI) st.bad.push(`i ${f.i}, expected ${st.nextI}`);
    if (f.pad !== pad(f.i)) st.bad.push(`text of ${f.i} differs`);
    st.lastSeq = f.seq; st.nextI = f.i + 1; st.received += 1;
  };
  ws.onerror = () => reject(new Error("socket error"));
  ws.onclose = (ev) => { st.closed = ev.code; };
  ws.onopen = () => ws.send(JSON.stringify({type: "hello", token, protocol: 1, id: 1}));
})
"""


def pad(i: int) -> str:
    return f"冲锋衣 {i} 防水 " * (20 + i % 50)


async def test_chromium_parses_thousands_of_shared_compressed_frames(gw, browser):
    t_start = time.monotonic()
    ctx = await browser.new_context(viewport=DESKTOP)
    page = await ctx.new_page()
    await page.goto(f"{gw.url}/healthz")  # the gateway's origin
    hub = gw.gw.hub
    ws_url = gw.url.replace("http", "ws", 1) + "/ws"
    ext = await page.evaluate(PAGE_SCRIPT, [ws_url, gw.token("viewer", "deflate-e2e")])
    assert ext == ("permessage-deflate; server_no_context_takeover; "
                   "client_no_context_takeover"), ext

    [session] = hub.user_sessions("deflate-e2e") or [
        s for s in hub.sessions.values() if s.user == "deflate-e2e"]
    assert session._direct is not None and session._direct.wbits == 15
    hub.watch(session, TOPIC)
    prefixes = []
    deflater = session._direct.deflater
    real_prefix = deflater.prefix

    def counted(head, wbits):  # the real compression, counted
        out = real_prefix(head, wbits)
        prefixes.append(len(out or b""))
        return out

    deflater.prefix = counted
    queued = 0
    protocol = session._direct._protocol
    try:
        for i in range(N):
            if i == 1_000:  # what the transport does when the socket falls behind
                protocol.pause_writing()
            hub.publish_local(TOPIC, {"type": "bench.frame", "i": i, "pad": pad(i)})
            queued += session._writer is not None
            if i % 500 == 499:
                if protocol._paused:
                    protocol.resume_writing()  # the writer task drains what was queued
                await asyncio.sleep(0)  # bursts of 500
        await page.wait_for_function(f"() => window.__deflate.received >= {N} "
                                     f"|| window.__deflate.bad.length > 0", timeout=15_000)
        # every broadcast compressed once and spliced (each ~3-5 KB of text to < 600 bytes),
        # the queued ones too, when the writer task wrote them
        assert len(prefixes) == N and all(0 < n < 600 for n in prefixes)
    finally:
        deflater.prefix = real_prefix
    st = await page.evaluate("() => window.__deflate")
    assert st["bad"] == [], st["bad"][:5]
    assert st["received"] == N and st["nextI"] == N
    assert st.get("closed") is None, "the socket stayed open"
    assert queued >= 500, "a burst went through the writer task (flow control)"
    await ctx.close()
    assert time.monotonic() - t_start < 15
