// The SDK's reconnect/resume logic against a fake socket (fake_socket.mjs): what goes on the
// wire and in which order, what the page is told, and what is never done twice.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, backoffDelay, CLOSE_REVOKED, ProtocolError, RECONNECT } from "../src/index.js";
import { FakeGateway, until } from "../test_support/fake_socket.mjs";

function client(gw, extra = {}) {
  const tokens = [];
  const c = new Client({
    urls: ["ws://gateway.test/ws", "ws://second.test/ws"],
    getToken: async (opts) => {
      tokens.push(opts);
      return `tok-${tokens.length}`;
    },
    WebSocket: gw.WebSocket,
    backoffBaseMs: 1,
    backoffMaxMs: 4,
    watchBrowser: false,
    requestTimeoutMs: 500,
    ...extra,
  });
  c.tokens = tokens;
  return c;
}

test("connect sends hello with the token and protocol 1, and resolves with the welcome", async () => {
  const gw = new FakeGateway();
  const c = client(gw);
  const states = [];
  c.onState((s) => states.push(s));
  const welcome = await c.connect();
  assert.equal(welcome.session, "s_1");
  assert.deepEqual(gw.received[0].frame, { type: "hello", id: 1, token: "tok-1", protocol: 1 });
  assert.equal(c.state, "online");
  assert.deepEqual(states, ["offline", "connecting", "online"]);
  assert.equal(c.lastSeq, 1);
  c.close();
  assert.equal(c.state, "offline");
});

test("a dropped socket is resumed: hello, then resume {session, last_seq} as the very next frame; missed frames replayed once, in order", async () => {
  const gw = new FakeGateway();
  const c = client(gw);
  const got = [];
  c.on("message", (f) => got.push(f.text));
  let resumed = 0;
  c.on("resumed", () => resumed++);
  await c.connect();
  const first = gw.last;
  gw.push(first, { type: "message", text: "a" });
  gw.push(first, { type: "message", text: "b" });
  await until(() => got.length === 2, 1000, "two messages");
  assert.equal(c.lastSeq, 3);
  // frames the server sent while the connection was dying: the client never saw them
  first.readyState = 3; // nothing more reaches this socket
  const s = gw.sessions.get("s_1");
  for (const text of ["c", "d"]) {
    s.seq += 1;
    s.frames.push({ type: "message", text, seq: s.seq });
  }
  first.readyState = 1;
  first.serverClose(1006);
  await until(() => resumed === 1, 2000, "resumed");
  const second = gw.last;
  assert.notEqual(second, first);
  assert.deepEqual(second.sent.map((f) => f.type), ["hello", "resume"]);
  assert.deepEqual(second.sent[1], { type: "resume", id: second.sent[1].id, session: "s_1", last_seq: 3 });
  assert.deepEqual(got, ["a", "b", "c", "d"]);
  assert.equal(c.session, "s_1");
  assert.equal(c.stats.resumes, 1);
  assert.equal(c.state, "online");
  c.close();
});

test("replayed frames the client already has are not delivered twice", async () => {
  const gw = new FakeGateway();
  const c = client(gw);
  const got = [];
  c.on("message", (f) => got.push(f.seq));
  await c.connect();
  const sock = gw.last;
  gw.push(sock, { type: "message", text: "x" });
  await until(() => got.length === 1);
  // the server replays from an older last_seq than the client's (overlap): duplicates dropped
  sock.deliver({ type: "message", text: "x", seq: 2 });
  sock.deliver({ type: "message", text: "y", seq: 3 });
  await until(() => got.length === 2);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, [2, 3]);
  c.close();
});

test("a failed resume keeps the fresh session and tells the page (fresh, then welcome)", async () => {
  const gw = new FakeGateway();
  const c = client(gw);
  const events = [];
  c.on("fresh", (f) => events.push(["fresh", f.code]));
  c.on("welcome", (f) => events.push(["welcome", f.session]));
  await c.connect();
  gw.forgetSessions = true;
  gw.last.serverClose(1012, "restart");
  await until(() => events.length === 3, 2000, "fresh + welcome");
  assert.deepEqual(events, [["welcome", "s_1"], ["fresh", "resume_failed"], ["welcome", "s_2"]]);
  assert.equal(c.session, "s_2");
  assert.equal(c.stats.fresh, 1);
  c.close();
});

test("requests made while offline wait in the outbox and are sent once online; their timeout runs from the send", async () => {
  const gw = new FakeGateway();
  const c = client(gw, { requestTimeoutMs: 200 });
  await c.connect();
  gw.accept = false;
  gw.last.serverClose(1006);
  await until(() => c.state === "reconnecting");
  const reply = c.request("ping");
  await new Promise((r) => setTimeout(r, 300)); // longer than the timeout: still waiting
  assert.equal(c.outbox.length, 1);
  gw.accept = true;
  const pong = await reply;
  assert.equal(pong.type, "pong");
  assert.ok(c.stats.connects >= 3, `connects ${c.stats.connects}`);
  c.close();
});

test("an error reply rejects the request with a typed ProtocolError", async () => {
  const gw = new FakeGateway();
  gw.silent.add("message.send");
  const c = client(gw);
  await c.connect();
  const p = c.request("message.send", { conversation: "c_1", text: "hi", client_msg_id: "m1" });
  const sent = gw.last.sent.at(-1);
  assert.equal(sent.type, "message.send");
  gw.last.deliver({ type: "error", id: sent.id, code: "not_member", message: "no", seq: 9 });
  await assert.rejects(p, (e) => e instanceof ProtocolError && e.code === "not_member");
  c.close();
});

test("close 4403 (identity revoked) is terminal: revoked is emitted, nothing reconnects, pending requests fail", async () => {
  const gw = new FakeGateway();
  const c = client(gw);
  let revoked = null;
  c.on("revoked", (f) => (revoked = f));
  await c.connect();
  const p = c.request("queue.get");
  gw.last.serverClose(CLOSE_REVOKED, "signed out");
  await assert.rejects(p, (e) => e.code === "revoked");
  assert.equal(revoked.code, CLOSE_REVOKED);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(gw.sockets.length, 1, "no reconnect after a revocation");
  assert.equal(c.state, "offline");
});

test("close 4401 (token refused) fetches a fresh token for the next hello, at once", async () => {
  const gw = new FakeGateway();
  const c = client(gw);
  await c.connect();
  gw.last.serverClose(4401, "token expired");
  await until(() => gw.sockets.length === 2 && gw.last.sent.length >= 1, 2000, "second hello");
  assert.deepEqual(c.tokens.map((t) => t.refresh), [false, true]);
  assert.equal(gw.last.sent[0].token, "tok-2");
  c.close();
});

test("a gateway that refuses: attempts go round the URL list with backoff within the cap", async () => {
  const gw = new FakeGateway();
  gw.accept = false;
  const c = client(gw);
  c.connect();
  await until(() => gw.sockets.length >= 5, 3000, "five attempts");
  const urls = gw.sockets.slice(0, 4).map((s) => s.url);
  assert.deepEqual(urls, ["ws://gateway.test/ws", "ws://second.test/ws", "ws://gateway.test/ws", "ws://second.test/ws"]);
  assert.ok(c.stats.delays.every((d) => d >= 0 && d < 4), c.stats.delays.join(","));
  assert.equal(c.state, "reconnecting");
  gw.accept = true;
  await until(() => c.state === "online", 2000, "online");
  c.close();
});

test("backoffDelay: full jitter under min(cap, base·2^attempt)", () => {
  assert.equal(backoffDelay(0, RECONNECT, () => 0), 0);
  assert.equal(backoffDelay(0, RECONNECT, () => 0.999), 249);
  assert.equal(backoffDelay(10, RECONNECT, () => 0.999), 499);
  assert.equal(backoffDelay(50, { baseMs: 250, capMs: 4000 }, () => 0.5), 2000);
  assert.equal(backoffDelay(-3, RECONNECT, () => 0.5), 125);
});
