// The SDK against a real gateway: `livedesk serve --dev --no-store` started here on a free
// loopback port (python from $LIVEDESK_PYTHON, else the repository's .venv). Connect, open a
// conversation, talk to the bot, lose the socket, resume, talk again; every frame received
// is checked against the JSON Schema the types were generated from (its type is known and
// its required fields are there). Node 20 needs --experimental-websocket (`make test` and
// `npm test` pass it); without a WebSocket class this test fails, it never skips.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "../src/index.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const SCHEMA = JSON.parse(readFileSync(join(REPO, "docs", "spec", "protocol.schema.json"), "utf8"));

function python() {
  const candidates = [process.env.LIVEDESK_PYTHON, join(REPO, ".venv", "bin", "python")].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no python for the gateway: set LIVEDESK_PYTHON (tried ${candidates.join(", ")})`);
  return found;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let proc;
let base;
let output = "";

before(async () => {
  assert.equal(typeof WebSocket, "function", "no global WebSocket: run node with --experimental-websocket (Node 20) or Node ≥ 22");
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LIVEDESK_")));
  proc = spawn(python(), ["-m", "gateway.cli", "serve", "--dev", "--no-store", "--port", String(port)], {
    cwd: REPO,
    env: { ...env, PYTHONPATH: REPO, LIVEDESK_LOOP: "asyncio", LIVEDESK_DRAIN_S: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout.on("data", (d) => (output += d));
  proc.stderr.on("data", (d) => (output += d));
  const end = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`livedesk serve exited ${proc.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) throw new Error(`livedesk serve did not come up:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

after(async () => {
  if (proc && proc.exitCode === null) {
    const done = new Promise((r) => proc.on("exit", r));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await done;
    clearTimeout(timer);
  }
});

/** The frame's type is in the schema and it has every required field of one of its shapes. */
function checkFrame(f) {
  const refs = SCHEMA["x-events"][f.type];
  assert.ok(refs, `frame type ${f.type} is not in protocol.schema.json`);
  const fits = refs.some((ref) => {
    const def = SCHEMA.$defs[ref.replace("#/$defs/", "")];
    return (def.required || []).every((k) => k in f);
  });
  assert.ok(fits, `${f.type} frame lacks a required field: ${JSON.stringify(f).slice(0, 300)}`);
}

function waitFor(c, type, pred = () => true, ms = 15_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${type} within ${ms} ms`));
    }, ms);
    const off = c.on(type, (f) => {
      if (!pred(f)) return;
      clearTimeout(timer);
      off();
      resolve(f);
    });
  });
}

test("the SDK talks to a real gateway, resumes after a lost socket, and every frame matches the schema", async () => {
  const tokenFor = async () => {
    const r = await fetch(`${base}/api/dev/token?role=viewer&user=sdk-viewer`);
    assert.equal(r.status, 200);
    return (await r.json()).token;
  };
  const c = new Client({ urls: [`${base.replace("http", "ws")}/ws`], getToken: tokenFor, watchBrowser: false, backoffBaseMs: 20, backoffMaxMs: 100 });
  const frames = [];
  c.on("*", (f) => frames.push(f));
  try {
    const welcome = await c.connect();
    assert.equal(welcome.type, "welcome");
    assert.equal(welcome.role, "viewer");
    const room = (await (await fetch(`${base}/api/rooms`)).json()).rooms[0].id;
    const conv = await c.request("conversation.open", { room });
    assert.equal(conv.type, "conversation");
    const cid = conv.conversation;

    const firstAnswer = waitFor(c, "message", (m) => m.conversation === cid && m.from?.role === "bot");
    await c.request("message.send", { conversation: cid, text: "what's the coupon code?", client_msg_id: "sdk-1" });
    await firstAnswer;

    // lose the socket: the SDK reconnects and resumes the same session
    const session = c.session;
    const resumed = waitFor(c, "resumed");
    c.dropSocket();
    await resumed;
    assert.equal(c.session, session);
    assert.equal(c.stats.resumes, 1);
    assert.equal(c.state, "online");

    const secondAnswer = waitFor(c, "message", (m) => m.conversation === cid && m.from?.role === "bot");
    const ack = await c.request("message.send", { conversation: cid, text: "冲锋衣还有货吗", client_msg_id: "sdk-2" });
    assert.ok(["ack", "message"].includes(ack.type), ack.type);
    await secondAnswer;

    // an invalid request is a typed error, the socket stays
    await assert.rejects(c.request("message.send", { conversation: cid }), (e) => e.code === "bad_request");
    assert.equal(c.state, "online");

    const seqs = frames.filter((f) => typeof f.seq === "number").map((f) => f.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "frames delivered in seq order");
    assert.equal(new Set(seqs).size, seqs.length, "no frame delivered twice");
    for (const f of frames) checkFrame(f);
    assert.ok(frames.length >= 6, `only ${frames.length} frames`);
  } finally {
    c.close();
  }
});
