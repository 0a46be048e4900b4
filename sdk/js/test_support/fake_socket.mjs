// A fake WebSocket and a fake gateway behind it, in memory: enough of protocol v1 (hello →
// welcome, resume → replay + resumed or error resume_failed, ping → pong, numbered frames) to
// drive the client's reconnect/resume logic deterministically, with no network.
export class FakeGateway {
  constructor() {
    this.sockets = [];
    this.sessions = new Map(); // session → {seq, frames: [{seq, frame}]}
    this.nextSession = 1;
    this.accept = true; // false: sockets close at once (gateway down)
    this.forgetSessions = false; // true: every resume fails (a restarted gateway)
    this.received = []; // every frame a client sent, in order, with its socket index
    this.silent = new Set(); // message types the fake does not answer (the test does)
  }

  /** The WebSocket class to hand to the client. */
  get WebSocket() {
    const gw = this;
    return class FakeSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.sent = [];
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        this.index = gw.sockets.length;
        gw.sockets.push(this);
        queueMicrotask(() => {
          if (!gw.accept) return this._closed(1006, "refused");
          this.readyState = 1;
          this.onopen?.();
        });
      }
      send(data) {
        if (this.readyState !== 1) throw new Error("send on a socket that is not open");
        const f = JSON.parse(data);
        this.sent.push(f);
        gw.received.push({ socket: this.index, frame: f });
        gw._handle(this, f);
      }
      close(code = 1000, reason = "") {
        if (this.readyState >= 2) return;
        this.readyState = 2;
        queueMicrotask(() => this._closed(code, reason));
      }
      /** The server side drops the connection. */
      serverClose(code = 1006, reason = "") {
        this._closed(code, reason);
      }
      deliver(frame) {
        queueMicrotask(() => this.readyState === 1 && this.onmessage?.({ data: JSON.stringify(frame) }));
      }
      _closed(code, reason) {
        if (this.readyState === 3) return;
        this.readyState = 3;
        this.onclose?.({ code, reason });
      }
    };
  }

  get last() {
    return this.sockets[this.sockets.length - 1];
  }

  /** A numbered event on `socket`'s session (kept for replay). */
  push(socket, frame) {
    const s = this.sessions.get(socket.session);
    s.seq += 1;
    const numbered = { ...frame, seq: s.seq };
    s.frames.push(numbered);
    socket.deliver(numbered);
    return numbered;
  }

  _handle(socket, f) {
    if (f.type === "hello") {
      const session = `s_${this.nextSession++}`;
      this.sessions.set(session, { seq: 0, frames: [] });
      socket.session = session;
      socket.token = f.token;
      this.push(socket, { type: "welcome", id: f.id, session, user: "v-1", role: "viewer", protocol: 1, ice_servers: [] });
      return;
    }
    if (f.type === "resume") {
      const old = this.sessions.get(f.session);
      if (!old || this.forgetSessions) {
        this.push(socket, { type: "error", id: f.id, code: "resume_failed", message: "unknown session" });
        return;
      }
      // the fresh session of this socket's hello is dropped; the old one continues
      this.sessions.delete(socket.session);
      socket.session = f.session;
      for (const fr of old.frames.filter((x) => x.seq > f.last_seq)) socket.deliver(fr);
      this.push(socket, { type: "resumed", id: f.id, session: f.session, last_seq: f.last_seq });
      return;
    }
    if (f.type === "ping") {
      this.push(socket, { type: "pong", id: f.id, ts: 1 });
      return;
    }
    if (!this.silent.has(f.type)) this.push(socket, { type: "ack", id: f.id });
  }
}

/** Resolves when `predicate()` holds (checked every ms), or rejects after `ms`. */
export async function until(predicate, ms = 2000, what = "condition") {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
