// LiveDesk protocol v1 client, shared by the viewer widget, the agent console and the host
// panel. One JSON object per WebSocket frame.
//
//  - connect(): hello {token, protocol: 1} → welcome (seq 1 of a new session)
//  - request(type, fields) → Promise of the direct reply (the frame echoing our id);
//    rejects with a ProtocolError on an `error` reply or a timeout
//  - on(type, cb) / on("*", cb): every server frame (events and replies), in seq order
//  - automatic reconnect: exponential backoff with full jitter over a list of gateway URLs;
//    on the new socket it sends hello and, as the very next message, resume {session,
//    last_seq}; the server replays what was missed then sends `resumed`. On `resume_failed`
//    the client keeps the fresh session and emits "fresh" so the page starts afresh.
//  - onState(cb): "connecting" | "online" | "reconnecting" | "offline", for the UI's
//    reconnect indicator; lifecycle events "welcome", "resumed", "fresh" via on().

export class ProtocolError extends Error {
  constructor(frame) {
    super(frame.message || frame.code);
    this.code = frame.code;
    this.frame = frame;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Client {
  /**
   * @param {object} opts
   * @param {string[]} opts.urls  WebSocket URLs of gateways, tried in turn
   * @param {() => Promise<string>} opts.getToken  called before each hello
   * @param {number} [opts.requestTimeoutMs]
   */
  constructor({ urls, getToken, requestTimeoutMs = 10000, backoffBaseMs = 300, backoffMaxMs = 8000, connectTimeoutMs = 8000 }) {
    this.urls = urls && urls.length ? urls : [defaultUrl()];
    this.getToken = getToken;
    this.requestTimeoutMs = requestTimeoutMs;
    this.connectTimeoutMs = connectTimeoutMs;
    this.backoffBaseMs = backoffBaseMs;
    this.backoffMaxMs = backoffMaxMs;
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
    this.stats = { connects: 0, resumes: 0, fresh: 0 };
    this._connecting = null;
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
    if (this.ws) this.ws.close(1000, "bye");
    this._setState("offline");
  }

  /** Drop the socket without ceremony (tests, "network lost" simulation). */
  dropSocket() {
    if (this.ws) this.ws.close(4000, "dropped");
  }

  /** Send a request; resolves with the reply frame (echoing our id) or rejects on error. */
  request(type, fields = {}, { timeoutMs } = {}) {
    const id = this.nextId++;
    const frame = { type, id, ...fields };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new ProtocolError({ code: "timeout", message: `${type}: no reply` }));
      }, timeoutMs ?? this.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer, type });
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
    if (this.state === "online" && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
    } else {
      this.outbox.push(frame);
    }
  }

  _flushOutbox() {
    const q = this.outbox;
    this.outbox = [];
    for (const f of q) this._send(f);
  }

  _backoffMs() {
    const cap = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(this.attempt, 10));
    return Math.round(cap / 2 + Math.random() * (cap / 2)); // "equal jitter": never zero
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
      if (closed.ok) this.attempt = 0; // it had been online: retry promptly
      else {
        this.attempt++;
        this.urlIndex++; // next gateway in the list
      }
      if (closed.unauthorized) this._tokenStale = true;
      this._setState("reconnecting");
      await sleep(closed.ok ? 100 + Math.random() * 300 : this._backoffMs());
    }
    this._setState("offline");
  }

  /** One socket lifetime. Resolves when the socket closes: {ok: was it ever online}. */
  async _runSocket(url) {
    const token = await this.getToken({ refresh: !!this._tokenStale });
    this._tokenStale = false;
    const ws = new WebSocket(url);
    this.ws = ws;
    this.stats.connects++;
    let online = false;
    const resuming = this.session ? { session: this.session, last_seq: this.lastSeq } : null;
    let helloId = null;
    let resumeId = null;

    return await new Promise((resolve) => {
      // A socket that never opens (a black-holed gateway, or one the page's CSP blocks:
      // Chromium then fires no close event) must not stall the reconnect loop for good.
      const openTimer = setTimeout(() => {
        if (ws.readyState === WebSocket.OPEN) return;
        try {
          ws.close();
        } catch {
          /* already closing */
        }
        if (this.ws === ws) this.ws = null;
        resolve({ ok: false, code: 0, timedOut: true });
      }, this.connectTimeoutMs);
      ws.onopen = () => {
        clearTimeout(openTimer);
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
        if (this.ws === ws) this.ws = null;
        if (ev.code === 4401) this._tokenStale = true;
        if (!this.closedByUser) this._setState("reconnecting");
        resolve({ ok: online, code: ev.code, unauthorized: ev.code === 4401 });
      };
      ws.onerror = () => {
        /* onclose follows */
      };
    });
  }

  _goOnline() {
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
      if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) {
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
 * The sign-in issue replaces this.
 */
const FRAGMENT_TOKEN = (() => {
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
