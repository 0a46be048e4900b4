"""The browser client's reconnect schedule (the SDK's sdk/js/src/client.js, which the pages
import through web/js/client.js), run in headless Chromium against a real gateway on loopback:
the delay formula, which cap applies when, the attempts' spacing measured against a gateway path
that is not there, the immediate retry on `online` and `visibilitychange`, the immediate retry
with a fresh token after close 4401, and that the pages load the SDK's module itself."""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, open_page

pytestmark = pytest.mark.browser

T = 10_000

# an in-page harness: the module the pages use, fetch/WebSocket calls to /x/ recorded
HARNESS = """async () => {
  window.__m = await import("/static/js/client.js");
  window.__calls = [];
  const nativeFetch = window.fetch;
  window.fetch = function (url, opts) {
    if (String(url).includes("/x/")) window.__calls.push(["probe", Date.now()]);
    return nativeFetch.call(this, url, opts);
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      if (String(url).includes("/x/")) window.__calls.push(["ws", Date.now()]);
    }
  };
  return true;
}"""


async def harness(browser, gw):
    page = await open_page(browser, f"{gw.url}/dashboard", DESKTOP)
    assert await page.evaluate(HARNESS)
    return page


async def test_delay_formula_and_caps(gw, browser):
    page = await harness(browser, gw)
    r = await page.evaluate("""() => {
      const { backoffDelay, RECONNECT: R, Client } = window.__m;
      const fast = { baseMs: R.baseMs, capMs: R.capMs };
      const attempts = [0, 1, 2, 3, 10, 40];
      const samples = Array.from({ length: 4000 }, () => backoffDelay(7, fast));
      const c = new Client({ urls: ["ws://127.0.0.1:9/ws"], getToken: async () => "x", watchBrowser: false });
      c.downSince = Date.now();
      const young = c._backoffCapMs({});
      c.downSince = Date.now() - R.fastWindowMs - 1000;
      const old = c._backoffCapMs({});
      const busy = c._backoffCapMs({ busy: true });
      return {
        R, young, old, busy,
        top: attempts.map((a) => backoffDelay(a, fast, () => 0.999999)),
        bottom: attempts.map((a) => backoffDelay(a, fast, () => 0)),
        slowTop: [0, 1, 2, 3, 4, 30].map((a) => backoffDelay(a, { baseMs: R.baseMs, capMs: R.slowCapMs }, () => 0.999999)),
        min: Math.min(...samples), max: Math.max(...samples),
        mean: samples.reduce((a, b) => a + b, 0) / samples.length,
      };
    }""")
    R = r["R"]
    # the figures docs/protocol.md gives
    assert (R["baseMs"], R["capMs"], R["fastWindowMs"]) == (250, 500, 60_000)
    assert (R["slowCapMs"], R["hiddenCapMs"], R["busyCapMs"]) == (4_000, 5_000, 8_000)
    # exponential from 250 ms, capped at 500 ms; full jitter reaches down to 0
    assert r["top"] == [249, 499, 499, 499, 499, 499]
    assert r["bottom"] == [0] * 6
    assert r["slowTop"] == [249, 499, 999, 1999, 3999, 3999]
    assert r["min"] < 25 and r["max"] < 500 and 225 < r["mean"] < 275, r
    # which cap: a young outage 500 ms, an old one 4 s, a gateway that said "later" 8 s
    assert (r["young"], r["old"], r["busy"]) == (500, 4_000, 8_000)


async def test_attempts_against_a_missing_gateway_are_probes_spaced_under_the_cap(gw, browser):
    """/x/ws is not there (404): the first attempt opens a WebSocket, every later one is a
    GET /x/healthz (404: not reachable) and no further WebSocket is opened."""
    page = await harness(browser, gw)
    await page.evaluate("""() => {
      const c = new window.__m.Client({ urls: [`ws://${location.host}/x/ws`], getToken: async () => "x" });
      window.__c = c;
      c.connect();
    }""")
    await page.wait_for_timeout(3000)
    calls, delays = await page.evaluate(
        "() => { window.__c.close(); return [window.__calls, window.__c.stats.delays]; }")
    sockets = [at for kind, at in calls if kind == "ws"]
    probes = [at for kind, at in calls if kind == "probe"]
    assert len(sockets) == 1, calls
    assert len(probes) >= 6, calls  # 3 s at a mean of ~250 ms (+ the request) apart
    gaps = sorted(b - a for a, b in zip(probes, probes[1:], strict=False))
    assert gaps[len(gaps) // 2] <= 500 and gaps[-1] <= 1500, gaps
    assert delays and max(delays) < 500, delays


async def test_online_and_visible_retry_at_once(gw, browser):
    """With a backoff of ~59 s, nothing would happen for a minute: `online` and
    `visibilitychange` (to visible) each bring an attempt within moments."""
    page = await harness(browser, gw)
    await page.evaluate("""() => {
      Math.random = () => 0.99;
      const c = new window.__m.Client({
        urls: [`ws://${location.host}/x/ws`], getToken: async () => "x",
        backoffBaseMs: 60000, backoffMaxMs: 60000,
      });
      window.__c = c;
      c.connect();
    }""")
    await page.wait_for_function("() => window.__c.stats.delays.length === 1", timeout=T)
    await page.wait_for_timeout(500)
    assert await page.evaluate("() => window.__calls.length") == 1  # the first socket only
    assert await page.evaluate("() => window.__c.stats.delays[0]") > 50_000

    await page.evaluate("() => window.dispatchEvent(new Event('online'))")
    await page.wait_for_function(
        "() => window.__calls.filter(([k]) => k === 'probe').length === 1", timeout=1000)
    await page.wait_for_function("() => window.__c.stats.delays.length === 2", timeout=T)
    await page.wait_for_timeout(300)
    assert await page.evaluate("() => document.visibilityState") == "visible"
    await page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    await page.wait_for_function(
        "() => window.__calls.filter(([k]) => k === 'probe').length === 2", timeout=1000)
    assert await page.evaluate("() => window.__c.stats.wakes") == 2
    await page.evaluate("() => window.__c.close()")


async def test_a_refused_token_is_replaced_at_once(gw, browser):
    """A gateway that restarted with a new secret refuses the page's token (close 4401):
    the client fetches a new one and tries again without waiting."""
    page = await harness(browser, gw)
    r = await page.evaluate("""async () => {
      const good = (await (await fetch("/api/dev/token?role=viewer&user=v-sched")).json()).token;
      const asked = [];
      const c = new window.__m.Client({
        urls: [`ws://${location.host}/ws`],
        getToken: async ({ refresh } = {}) => { asked.push(!!refresh); return refresh ? good : "not-a-token"; },
      });
      const t0 = performance.now();
      await c.connect();
      const ms = performance.now() - t0;
      c.close();
      return { ms, asked, delays: c.stats.delays, user: c.user };
    }""")
    assert r["asked"] == [False, True] and r["delays"] == [0], r
    assert r["user"] == "v-sched"
    assert r["ms"] < 1000, r


async def test_the_pages_run_the_sdk_module(gw, browser):
    """The pages' client is the SDK's own module (sdk/js/src/client.js served at /sdk/):
    web/js/client.js only re-exports it, so the page loaded /sdk/client.js and both imports
    give the same class (a copy would be a second module with classes of its own)."""
    page = await open_page(browser, f"{gw.url}/dashboard", DESKTOP)
    r = await page.evaluate("""async () => {
      const viaPage = await import("/static/js/client.js");
      const sdk = await import("/sdk/client.js");
      const index = await import("/sdk/index.js");
      return {
        same: viaPage.Client === sdk.Client && index.Client === sdk.Client,
        loaded: performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname),
      };
    }""")
    assert r["same"]
    assert "/sdk/client.js" in r["loaded"], r["loaded"]
    await page.close()
