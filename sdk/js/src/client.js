// LiveDesk protocol v1 client — the SDK's core (package @livedesk/client, docs/sdk.md), used
// by the viewer widget, the agent console and the host panel through web/js/client.js, a
// re-export of /sdk/client.js. One JSON object per WebSocket frame. Types: client.d.ts and
// protocol.d.ts (generated from docs/spec/protocol.schema.json by scripts/gen-types.mjs).
//
//  - connect(): hello {token, protocol: 1} → welcome (seq 1 of a new session)
//  - request(type, fields) → Promise of the direct reply (the frame echoing our id);
//    rejects with a ProtocolError on an `error` reply or a timeout
//  - on(type, cb) / on("*", cb): every server frame (events and replies), in seq order
//  - automatic reconnect (docs/protocol.md, "Reconnecting"): capped exponential backoff with
//    full jitter over a list of gateway URLs, a cap small enough that a page is back within
//    1 s of its gateway being reachable again, and an immediate retry when the browser says
//    the network is back (`online`) or the page becomes visible again. On the new socket it
//    sends hello and, as the very next message, resume {session, last_seq}; the server
//    replays what was missed then sends `resumed`. On `resume_failed` the client keeps the
//    fresh session and emits "fresh" (then "welcome") so the page reloads what it shows.
//  - onState(cb): "connecting" | "online" | "reconnecting" | "offline", for the UI's
//    reconnect indicator; lifecycle events "welcome", "resumed", "fresh" via on().

/**
 * The reconnect schedule, in one place (docs/protocol.md explains each figure).
 * - baseMs/capMs: while the page is visible and the outage is young, the wait before the next
 *   attempt is uniform in [0, min(capMs, baseMs·2^attempt)). A gateway that comes back is
 *   then tried within capMs by every page, so the page is online within capMs plus a probe
 *   and a handshake: 500 ms + a few round trips stays under the 1 s promise.
 * - slowCapMs after fastWindowMs of outage: an outage that long is not a restart; each page
 *   then sends its gateway (or the proxy in front) 8 times fewer attempts.
 * - hiddenCapMs while the page is hidden or the browser reports no network: nobody is
 *   looking, and `visibilitychange`/`online` bring an immediate retry anyway.
 * - busyCapMs after the gateway itself said "not now" (close 1013 or 4429): it is up but
 *   shedding load, and a herd retrying every half second would keep it down.
 */
export const RECONNECT = Object.freeze({
  baseMs: 250,
  capMs: 500,
  fastWindowMs: 60_000,
  slowCapMs: 4_000,
  hiddenCapMs: 5_000,
  busyCapMs: 8_000,
});

/** WebSocket.OPEN, without needing a global WebSocket (Node < 22 has none: pass one). */
const OPEN = 1;

/** Close codes by which a reachable gateway asks us to come back later (protocol.md). */
const BUSY_CLOSE_CODES = new Set([1013, 4429]);

/** The gateway closed the socket because this identity was revoked (signed out, account
 * disabled or changed): reconnecting cannot help, the page must sign in again. */
export const CLOSE_REVOKED = 4403;

/** Full jitter: uniform in [0, min(cap, base·2^attempt)), so a herd of pages spreads out. */
export function backoffDelay(attempt, { baseMs, capMs }, rand = Math.random) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 20));
  return Math.floor(rand() * ceiling);
}

export class ProtocolError extends Error {
  constructor(frame) {
    super(frame.message || frame.code);
    this.code = frame.code;
    this.frame = frame;
  }
}

export class Client {
  /**
   * @param {object} opts
   * @param {string[]} opts.urls  WebSocket URLs of gateways, tried in turn
   * @param {() => Promise<string>} opts.getToken  called before each hello
   * @param {number} [opts.requestTimeoutMs]
   * @param {number} [opts.backoffBaseMs]  see RECONNECT (each cap below defaults to its figure)
   * @param {number} [opts.backoffMaxMs]  the cap while visible, in the first fastWindowMs
   * @param {number} [opts.hiddenBackoffMaxMs]  the cap while hidden: a page that must stay
   *   reachable in a background tab (the agent console) passes its visible cap here
   * @param {boolean} [opts.watchBrowser]  retry at once on `online`, `visibilitychange` to
   *   visible and `pageshow` (default true)
   * @param {typeof WebSocket} [opts.WebSocket]  the WebSocket class (default: the global one;
   *   Node 20 needs --experimental-websocket or a class such as the `ws` package's; tests
   *   pass a fake)
   */
  constructor({
    urls, getToken, requestTimeoutMs = 10000, connectTimeoutMs = 8000,
    backoffBaseMs = RECONNECT.baseMs, backoffMaxMs = RECONNECT.capMs, fastWindowMs = RECONNECT.fastWindowMs,
    slowBackoffMaxMs = RECONNECT.slowCapMs, hiddenBackoffMaxMs = RECONNECT.hiddenCapMs,
    busyBackoffMaxMs = RECONNECT.busyCapMs, watchBrowser = true,
    WebSocket: WebSocketImpl = globalThis.WebSocket,
  }) {
    this.WebSocketImpl = WebSocketImpl;
    this.urls = urls && urls.length ? urls : [defaultUrl()];
    this.getToken = getToken;
    this.requestTimeoutMs = requestTimeoutMs;
    this.connectTimeoutMs = connectTimeoutMs;
    this.backoffBaseMs = backoffBaseMs;
    this.backoffMaxMs = backoffMaxMs;
    this.fastWindowMs = fastWindowMs;
    this.slowBackoffMaxMs = slowBackoffMaxMs;
    this.hiddenBackoffMaxMs = hiddenBackoffMaxMs;
    this.busyBackoffMaxMs = busyBackoffMaxMs;
    this.downSince = null; // Date.now() when the outage began (null while online)
    this._wakeSleep = null; // ends the current backoff wait early
    this._abortConnect = null; // gives up the socket still connecting
    this.ws = null;
    this.session = null; // the session id we would resume
    this.lastSeq = 0;
    this.welcome = null; // the last welcome (user, role, ice_servers, room…)
    this.state = "offline";
    this.attempt = 0;
    this.urlIndex = 0;
    this.nextId = 1;
    this.pending = new Map(); // id → {resolve, reject, timer, type}
    this.outbox = []; // frames queued while not online
    this.handlers = new Map();
    this.stateCbs = new Set();
    this.closedByUser = false;
    this.stats = { connects: 0, resumes: 0, fresh: 0, wakes: 0, probes: 0, delays: [] };
    this._connecting = null;
    if (watchBrowser && typeof window !== "undefined" && typeof document !== "undefined") {
      window.addEventListener("online", () => this.wake("online"));
      window.addEventListener("pageshow", (ev) => ev.persisted && this.wake("pageshow"));
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") this.wake("visible");
      });
    }
  }

  // --- public API -------------------------------------------------------------------------
  on(type, cb) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(cb);
    return () => this.handlers.get(type).delete(cb);
  }

  onState(cb) {
    this.stateCbs.add(cb);
    cb(this.state);
    return () => this.stateCbs.delete(cb);
  }

  get user() {
    return this.welcome?.user;
  }

  get role() {
    return this.welcome?.role;
  }

  /** Start (or keep) the connection; resolves after the first welcome. */
  connect() {
    if (!this._connecting) {
      this.closedByUser = false;
      this._connecting = new Promise((resolve) => {
        this._firstOnline = resolve;
      });
      this._loop();
    }
    return this._connecting;
  }

  close() {
    this.closedByUser = true;
    clearInterval(this._keepalive); // nothing keeps a closed client (or a Node process) alive
    if (this._wakeSleep) this._wakeSleep();
    if (this.ws) this.ws.close(1000, "bye");
    this._setState("offline");
  }

  /**
   * Renew the live socket's identity with a fresh token of the same user, role and room
   * (`auth {token}` → `ack {expires_at}`), so a short-lived token never costs the socket.
   * While offline there is nothing to renew: the next hello takes the newest token anyway.
   */
  async reauth(token) {
    if (this.state !== "online") return null;
    return this.request("auth", { token });
  }

  /** Drop the socket without ceremony (tests, "network lost" simulation). */
  dropSocket() {
    if (this.ws) this.ws.close(4000, "dropped");
  }

  /**
   * Something suggests the gateway may be reachable now (the browser is back online, the
   * page is visible again): while waiting between attempts, try now, with the fast schedule
   * again. On `online`, a socket still connecting was begun on the old network and may hang
   * until its timeout: it is given up and retried; an open socket may be dead without a close
   * event: a ping with a short timeout finds out (and closes it, so it is reconnected).
   */
  wake(reason = "wake") {
    if (this.closedByUser || !this._connecting) return;
    this.stats.wakes++;
    if (this.state === "online") {
      const ws = this.ws;
      if (reason === "online" && ws) {
        this.request("ping", {}, { timeoutMs: 3000 }).catch((e) => {
          if (e.code === "timeout" && this.ws === ws) ws.close(4000, "no answer after the network changed");
        });
      }
      return;
    }
    this.attempt = 0;
    this.downSince = Date.now();
    if (this._wakeSleep) this._wakeSleep();
    else if (reason === "online" && this._abortConnect) this._abortConnect();
  }

  /**
   * Send a request; resolves with the reply frame (echoing our id) or rejects on error.
   * While offline it waits in the outbox for the connection to come back; its timeout runs
   * from when it is written to a socket, so it measures the server, not the outage (a
   * restart that takes 20 s must not fail what the user typed meanwhile).
   */
  request(type, fields = {}, { timeoutMs } = {}) {
    const id = this.nextId++;
    const frame = { type, id, ...fields };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, timer: null, type, timeoutMs: timeoutMs ?? this.requestTimeoutMs });
      this._send(frame);
    });
  }

  /** Fire and forget (still carries an id so errors can be attributed). */
  send(type, fields = {}) {
    const id = this.nextId++;
    this._send({ type, id, ...fields });
    return id;
  }

  // --- internals --------------------------------------------------------------------------
  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    for (const cb of this.stateCbs) {
      try {
        cb(s);
      } catch (e) {
        console.error(e);
      }
    }
  }

  _emit(type, frame) {
    for (const key of [type, "*"]) {
      const hs = this.handlers.get(key);
      if (!hs) continue;
      for (const cb of [...hs]) {
        try {
          cb(frame);
        } catch (e) {
          console.error("handler for", type, "failed", e);
        }
      }
    }
  }

  _send(frame) {
    if (this.state === "online" && this.ws && this.ws.readyState === OPEN) {
      this.ws.send(JSON.stringify(frame));
      const p = frame.id === undefined ? undefined : this.pending.get(frame.id);
      if (p && !p.timer) {
        p.timer = setTimeout(() => {
          if (this.pending.get(frame.id) !== p) return;
          this.pending.delete(frame.id);
          p.reject(new ProtocolError({ code: "timeout", message: `${p.type}: no reply` }));
        }, p.timeoutMs);
      }
    } else {
      this.outbox.push(frame);
    }
  }

  _flushOutbox() {
    const q = this.outbox;
    this.outbox = [];
    for (const f of q) this._send(f);
  }

  /** The cap on the next wait (RECONNECT explains each). */
  _backoffCapMs(closed, now = Date.now()) {
    if (closed.busy) return this.busyBackoffMaxMs;
    const old = this.downSince !== null && now - this.downSince > this.fastWindowMs;
    const visibleCap = old ? this.slowBackoffMaxMs : this.backoffMaxMs;
    const hidden = typeof document !== "undefined" && document.visibilityState === "hidden";
    const noNetwork = typeof navigator !== "undefined" && navigator.onLine === false;
    return hidden || noNetwork ? Math.max(this.hiddenBackoffMaxMs, visibleCap) : visibleCap;
  }

  /** The wait before the next attempt after a socket ended as `closed`. */
  _nextDelayMs(closed) {
    // a token the gateway no longer accepts (it restarted with a new dev secret, or the token
    // expired while we were away): fetch a new one and try again at once, once
    if (closed.unauthorized && !this._freshTokenTried) {
      this._freshTokenTried = true;
      return 0;
    }
    if (closed.immediate) return 0;
    return backoffDelay(this.attempt, { baseMs: this.backoffBaseMs, capMs: this._backoffCapMs(closed) });
  }

  /** Wait ms, or less if wake() is called meanwhile. */
  _sleep(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this._wakeSleep === done) this._wakeSleep = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this._wakeSleep = done;
    });
  }

  async _loop() {
    while (!this.closedByUser) {
      this._setState(this.session ? "reconnecting" : "connecting");
      const url = this.urls[this.urlIndex % this.urls.length];
      let closed;
      try {
        closed = await this._runSocket(url);
      } catch (e) {
        closed = { ok: false, error: e };
      }
      if (this.closedByUser) break;
      if (closed.code === CLOSE_REVOKED) {
        // terminal: no reconnect with an identity the gateway has revoked
        this.closedByUser = true;
        this.revoked = { code: closed.code, reason: closed.reason || this.revoked?.reason || "" };
        this._failPending("revoked");
        this._emit("revoked", { type: "revoked", reason: this.revoked.reason, code: closed.code });
        break;
      }
      if (closed.ok) {
        this.attempt = 0; // it had been online: the outage starts now
        this.downSince = Date.now();
      } else {
        this.attempt++;
        if (this.downSince === null) this.downSince = Date.now();
        if (!closed.unauthorized) this.urlIndex++; // next gateway in the list
      }
      if (closed.unauthorized) this._tokenStale = true;
      this._setState("reconnecting");
      const delay = this._nextDelayMs(closed);
      this.stats.delays.push(delay);
      if (this.stats.delays.length > 50) this.stats.delays.shift();
      if (delay > 0) await this._sleep(delay);
    }
    this._setState("offline");
  }

  /** One socket lifetime. Resolves when the socket closes: {ok: was it ever online}. */
  async _runSocket(url) {
    // reconnecting (an outage is under way): ask over HTTP first whether the gateway is there
    if (this.downSince !== null) {
      const probe = await this._probe(url);
      if (!probe.ok) return { ok: false, code: 0, probed: true, immediate: probe.woken };
    }
    const token = await this.getToken({ refresh: !!this._tokenStale });
    this._tokenStale = false;
    if (typeof this.WebSocketImpl !== "function") throw new Error("no WebSocket class: pass opts.WebSocket");
    const ws = new this.WebSocketImpl(url);
    this.ws = ws;
    this.stats.connects++;
    let online = false;
    const resuming = this.session ? { session: this.session, last_seq: this.lastSeq } : null;
    let helloId = null;
    let resumeId = null;

    return await new Promise((resolve) => {
      const giveUp = (result) => {
        clearTimeout(openTimer);
        this._abortConnect = null;
        ws.onopen = ws.onmessage = ws.onclose = null;
        try {
          ws.close();
        } catch {
          /* already closing */
        }
        if (this.ws === ws) this.ws = null;
        resolve(result);
      };
      // A socket that never opens (a black-holed gateway, or one the page's CSP blocks:
      // Chromium then fires no close event) must not stall the reconnect loop for good.
      const openTimer = setTimeout(() => {
        if (ws.readyState !== OPEN) giveUp({ ok: false, code: 0, timedOut: true });
      }, this.connectTimeoutMs);
      this._abortConnect = () => giveUp({ ok: false, code: 0, immediate: true });
      ws.onopen = () => {
        clearTimeout(openTimer);
        this._abortConnect = null;
        helloId = this.nextId++;
        ws.send(JSON.stringify({ type: "hello", id: helloId, token, protocol: 1 }));
        if (resuming) {
          resumeId = this.nextId++;
          ws.send(JSON.stringify({ type: "resume", id: resumeId, ...resuming }));
        }
      };
      ws.onmessage = (ev) => {
        let f;
        try {
          f = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (f.type === "welcome" && f.id === helloId) {
          this.welcome = f;
          if (!resuming) {
            this.session = f.session;
            this.lastSeq = f.seq || 1;
            online = true;
            this._goOnline();
            this._emit("welcome", f);
          } else {
            this._freshCandidate = f; // used if the resume fails
          }
          return;
        }
        if (resuming && f.id === resumeId) {
          if (f.type === "resumed") {
            online = true;
            this.stats.resumes++;
            if (typeof f.seq === "number") this.lastSeq = Math.max(this.lastSeq, f.seq);
            this._goOnline();
            this._emit("resumed", f);
          } else if (f.type === "error") {
            // resume_failed (or anything else): keep the fresh session, start afresh
            const w = this._freshCandidate;
            this.session = w ? w.session : null;
            this.lastSeq = f.seq || (w && w.seq) || 1;
            online = true;
            this.stats.fresh++;
            this._failPending("resume_failed");
            this.outbox = []; // their requests were just rejected
            this._goOnline();
            this._emit("fresh", f);
            this._emit("welcome", w || {});
          }
          return;
        }
        if (f.type === "error" && f.id === helloId) {
          if (f.code === "unauthenticated") this._tokenStale = true;
          this._emit("error", f);
          return;
        }
        this._dispatch(f);
      };
      ws.onclose = (ev) => {
        clearTimeout(openTimer);
        this._abortConnect = null;
        if (this.ws === ws) this.ws = null;
        if (ev.code === 4401) this._tokenStale = true;
        if (!this.closedByUser) this._setState("reconnecting");
        resolve({ ok: online, code: ev.code, reason: ev.reason, unauthorized: ev.code === 4401, busy: BUSY_CLOSE_CODES.has(ev.code) });
      };
      ws.onerror = () => {
        /* onclose follows */
      };
    });
  }

  /**
   * Whether the gateway behind ``url`` answers HTTP now: GET /healthz beside its /ws. Why not
   * just open the WebSocket: browsers hold failed WebSocket attempts against the page.
   * Chromium delays each new WebSocket of a renderer by a random 1–5 s × 2^(failed ÷
   * (succeeded + 1)) ÷ 65,536 (counted over the last 2–4 minutes), so after about 30
   * refused attempts (10 s of a restart at our pace) every attempt waits 1–5 s more, which
   * is what made a restart cost 3–4 s in our test; Firefox delays reconnects after failures
   * too. A
   * failed fetch costs nothing of the kind, so a WebSocket is opened only to a gateway that
   * answered. Only for the page's own origin (its CSP allows that fetch; another gateway of
   * ?gw= is tried directly). A wake() cuts the probe short.
   */
  async _probe(url) {
    let u;
    try {
      u = new URL(url);
    } catch {
      return { ok: true };
    }
    if (typeof location === "undefined" || typeof fetch !== "function" || u.host !== location.host || !/\/ws$/.test(u.pathname)) {
      return { ok: true };
    }
    const probeUrl = `${location.protocol}//${u.host}${u.pathname.replace(/\/ws$/, "/healthz")}`;
    const ctrl = new AbortController();
    let woken = false;
    const timer = setTimeout(() => ctrl.abort(), this.connectTimeoutMs);
    this._abortConnect = () => {
      woken = true;
      ctrl.abort();
    };
    this.stats.probes++;
    try {
      const r = await fetch(probeUrl, { cache: "no-store", credentials: "omit", signal: ctrl.signal });
      return { ok: r.ok, woken };
    } catch {
      return { ok: false, woken };
    } finally {
      clearTimeout(timer);
      this._abortConnect = null;
    }
  }

  _goOnline() {
    this.downSince = null;
    this._freshTokenTried = false;
    this._setState("online");
    this._startKeepalive(this.ws);
    this._flushOutbox();
    if (this._firstOnline) {
      this._firstOnline(this.welcome);
      this._firstOnline = null;
    }
  }

  /** App-level ping: a socket that stops answering is closed (and so reconnected). */
  _startKeepalive(ws) {
    clearInterval(this._keepalive);
    this._keepalive = setInterval(() => {
      if (this.ws !== ws || ws.readyState !== OPEN) {
        clearInterval(this._keepalive);
        return;
      }
      this.request("ping", {}, { timeoutMs: 8000 }).catch((e) => {
        if (e.code === "timeout" && this.ws === ws) ws.close(4000, "keepalive timeout");
      });
    }, 15000);
  }

  _failPending(code) {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ProtocolError({ code, message: `${p.type}: connection restarted` }));
    }
    this.pending.clear();
  }

  _dispatch(f) {
    if (typeof f.seq === "number") {
      if (f.seq <= this.lastSeq && f.type !== "resumed") return; // already seen (replay overlap)
      this.lastSeq = f.seq;
    }
    if (f.id !== undefined && f.id !== null && this.pending.has(f.id)) {
      const p = this.pending.get(f.id);
      this.pending.delete(f.id);
      clearTimeout(p.timer);
      if (f.type === "error") p.reject(new ProtocolError(f));
      else p.resolve(f);
    }
    this._emit(f.type, f);
  }
}

export function defaultUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/ws`;
}

/** The gateway origins this page may connect to: its own, plus the list the server put in
 * <meta name="livedesk-gateways"> (Config.gateway_origins). */
export function allowedGatewayOrigins() {
  const own = new URL(defaultUrl()).origin;
  const meta = document.querySelector('meta[name="livedesk-gateways"]');
  const listed = (meta?.content || "").split(/\s+/).filter(Boolean);
  return new Set([own, ...listed]);
}

/**
 * Gateway URLs: ?gw=url1,url2 (ws:// or http://), each accepted only when its origin is one
 * the server allows (so a link cannot send this page's socket and token to another server);
 * otherwise, or when none is left, the page's own origin.
 */
export function gatewayUrls() {
  const p = new URLSearchParams(location.search).get("gw");
  if (!p) return [defaultUrl()];
  const allowed = allowedGatewayOrigins();
  const urls = [];
  for (let u of p.split(",").map((x) => x.trim()).filter(Boolean)) {
    u = u.replace(/^http/, "ws");
    u = u.endsWith("/ws") ? u : u.replace(/\/$/, "") + "/ws";
    let origin = null;
    try {
      origin = new URL(u).origin;
    } catch {
      origin = null;
    }
    if (origin && allowed.has(origin) && /^wss?:$/.test(new URL(u).protocol)) urls.push(u);
    else console.warn(`ignoring ?gw= entry ${JSON.stringify(u)}: not a gateway this server lists`);
  }
  return urls.length ? urls : [defaultUrl()];
}

/**
 * A token handed to the page in the address bar's fragment (#token=…), read once when this
 * module loads and removed from the address bar at once (history.replaceState), so it is
 * not in the history, a bookmark, a screenshot or a Referer. Never from the query string:
 * a query reaches the server's and every proxy's logs (a ?token= is removed and ignored).
 * Kept for tools and scripts that hold a token of their own (a `livedesk token` for a wall
 * display, the test that greps the server's output); people sign in (docs/accounts.md).
 * Outside a browser (Node) there is no address bar: null.
 */
const FRAGMENT_TOKEN = (() => {
  if (typeof location === "undefined" || typeof history === "undefined") return null; // Node
  const url = new URL(location.href);
  const frag = new URLSearchParams(url.hash.replace(/^#/, ""));
  const token = frag.get("token");
  let changed = false;
  if (frag.has("token")) {
    frag.delete("token");
    const rest = frag.toString();
    url.hash = rest ? `#${rest}` : "";
    changed = true;
  }
  if (url.searchParams.has("token")) {
    url.searchParams.delete("token");
    changed = true;
    console.warn("?token= is ignored (a query string reaches logs); use #token= instead");
  }
  if (changed) history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  return token || null;
})();

/**
 * A token source for the demo pages: a #token= fragment (see above) wins; otherwise (dev
 * mode) /api/dev/token with the user id from ?user= or localStorage (so a reload is the
 * same user).
 */
export function devTokenSource(role, { defaultUser, name, room } = {}) {
  const q = new URLSearchParams(location.search);
  const key = `ld.${role}.user`;
  let user = q.get("user") || localStorage.getItem(key) || defaultUser || `${role}-${Math.random().toString(36).slice(2, 8)}`;
  localStorage.setItem(key, user);
  name = q.get("name") || name || "";
  room = q.get("room") || room || "";
  const fixed = FRAGMENT_TOKEN;
  let cached = null;
  return {
    user,
    async getToken({ refresh } = {}) {
      if (fixed) return fixed;
      if (cached && !refresh) return cached;
      const params = new URLSearchParams({ role, user });
      if (name) params.set("name", name);
      if (room) params.set("room", room);
      const r = await fetch(`/api/dev/token?${params}`);
      if (!r.ok) throw new Error(`dev token: HTTP ${r.status}`);
      cached = (await r.json()).token;
      return cached;
    },
  };
}

/** How this gateway hands staff pages their identity: "dev" (demo identities from
 * /api/dev/token, `--dev` only) or "signin" (a sign-in session, exchanged for tokens). The
 * server says which in <meta name="livedesk-auth">. */
export function authMode() {
  const meta = document.querySelector('meta[name="livedesk-auth"]');
  return meta?.content === "signin" ? "signin" : "dev";
}

/** Where a page sends someone who must sign in; `next` brings them back here afterwards. */
export function loginUrl(reason = "") {
  const q = new URLSearchParams({ next: location.pathname + location.search });
  if (reason) q.set("reason", reason);
  return `/login?${q}`;
}

function goToLogin(reason) {
  location.assign(loginUrl(reason));
  return new Promise(() => {}); // the page is going away
}

/**
 * Socket tokens from the sign-in session (the HttpOnly cookie, which this script never
 * sees): POST /api/auth/token for the first of `roles` the account has (and `room` for a
 * host). No session → /login, back here afterwards. Each token is renewed at 80 % of its
 * lifetime (at least 30 s before it expires) and handed to the live socket with
 * client.reauth(), so the socket is never dropped for it (docs/accounts.md, "Token refresh").
 */
export function signInTokenSource(roles, { room } = {}) {
  roles = Array.isArray(roles) ? roles : [roles];
  let cached = null; // {token, expires_at, role}
  let client = null;
  let timer = null;

  async function fetchToken() {
    for (const role of roles) {
      const body = { role };
      if (room && role === "host") body.room = room;
      const r = await fetch("/api/auth/token", {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (r.status === 401) return goToLogin("signin");
      if (r.status === 403) continue; // the account has not this role: try the next
      if (!r.ok) throw new Error(`token: HTTP ${r.status}`);
      return r.json();
    }
    return goToLogin("forbidden");
  }

  function schedule() {
    clearTimeout(timer);
    if (!cached) return;
    const left = cached.expires_at * 1000 - Date.now();
    const wait = Math.max(5_000, Math.min(left * 0.8, left - 30_000));
    timer = setTimeout(refresh, wait);
  }

  async function refresh() {
    try {
      cached = await fetchToken();
      schedule();
      if (client) await client.reauth(cached.token);
    } catch (e) {
      console.warn("token refresh failed; retrying in 10 s", e?.message || e);
      clearTimeout(timer);
      timer = setTimeout(refresh, 10_000);
    }
  }

  return {
    mode: "signin",
    user: null,
    get expiresAt() {
      return cached?.expires_at ?? null;
    },
    attach(c) {
      client = c;
    },
    refresh,
    async getToken({ refresh: stale } = {}) {
      if (!cached || stale || cached.expires_at * 1000 - Date.now() < 30_000) {
        cached = await fetchToken();
        schedule();
      }
      return cached.token;
    },
    async signOut() {
      clearTimeout(timer);
      await fetch("/api/auth/logout", {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Content-Type": "application/json" }, body: "{}",
      });
    },
  };
}

/**
 * The identity of a staff page: a #token= fragment if one was handed over; with --dev the
 * demo identities (devTokenSource, ?user= picks one); otherwise the sign-in session.
 */
export function staffTokenSource(role, opts = {}) {
  if (FRAGMENT_TOKEN) return { mode: "fragment", user: null, getToken: async () => FRAGMENT_TOKEN };
  if (authMode() === "dev") return { mode: "dev", ...devTokenSource(Array.isArray(role) ? role[0] : role, opts) };
  return signInTokenSource(role, opts);
}
