// The demo live-stream page with the viewer support widget (mobile-first overlay).
import { Client, devTokenSource, gatewayUrls } from "./client.js";
import { t, tOr, applyI18n, duration } from "./i18n.js";
import { $, h, icon, hydrateIcons, fmtTime, param, bindConnBadge, bindLangSwitch, toast, RoomState } from "./common.js";
import { CallManager, CallView } from "./call.js";

const ident = devTokenSource("viewer", { room: param("room") || "" });
const client = new Client({ urls: gatewayUrls(), getToken: ident.getToken });
let room = param("room") || null;
let roomState = null;

const ui = {
  widget: $('[data-testid="widget"]'),
  log: $('[data-testid="chat-log"]'),
  input: $('[data-testid="chat-input"]'),
  form: $('[data-testid="chat-form"]'),
  state: $('[data-testid="conv-state"]'),
  queue: $('[data-testid="queue-banner"]'),
  pinned: $('[data-testid="pinned"]'),
  human: $('[data-testid="talk-to-person"]'),
  video: $('[data-testid="video-call"]'),
  voice: $('[data-testid="voice-call"]'),
  product: $('[data-testid="on-screen-product"]'),
  promos: $('[data-testid="promo-counters"]'),
  ticker: $('[data-testid="stream-announcement"]'),
};

// --- conversation state -----------------------------------------------------------------
const conv = {
  id: null,
  state: null,
  messages: new Map(), // message_id → message
  order: [],
  pending: new Map(), // client_msg_id → {text, status}
  queue: null,
  agent: null,
  pinned: [],
  notices: [], // local lines: {after: message_id|null, text, ts}
};
let widgetOpened = localStorage.getItem("ld.viewer.widget") === "1";
let opening = null;
let msgCounter = 0;

function newClientMsgId() {
  return `${client.user || "v"}-${Date.now().toString(36)}-${(msgCounter++).toString(36)}`;
}

function resetConversation(snap) {
  conv.id = snap.conversation;
  conv.state = snap.state;
  conv.messages = new Map();
  conv.order = [];
  conv.agent = snap.agent || null;
  conv.pinned = [...(snap.pinned || [])];
  conv.queue = null;
  conv.notices = [];
  for (const m of snap.messages || []) addMessage(m, false);
  renderAll();
}

function addMessage(m, render = true) {
  if (m.conversation && conv.id && m.conversation !== conv.id) return;
  if (conv.messages.has(m.message_id)) return;
  conv.messages.set(m.message_id, m);
  conv.order.push(m.message_id);
  if (m.client_msg_id && m.from?.user === client.user) conv.pending.delete(m.client_msg_id);
  if (m.kind === "announcement") conv.pinned.push({ text: m.text, ts: m.ts, by: m.from?.name });
  if (render) renderAll();
}

async function openConversation() {
  if (!room) return;
  if (!opening) {
    opening = client
      .request("conversation.open", { room })
      .then((snap) => {
        resetConversation(snap);
        return snap;
      })
      .catch((e) => {
        toast(t("common.error", { msg: e.message }));
        throw e;
      })
      .finally(() => (opening = null));
  }
  return opening;
}

async function ensureOpenConversation() {
  if (!conv.id || conv.state === "resolved") await openConversation();
  return conv.id;
}

async function sendText(text, cmid = newClientMsgId()) {
  text = text.trim();
  if (!text) return;
  conv.pending.set(cmid, { text, status: "pending", ts: Date.now() / 1000 });
  renderAll();
  try {
    const id = await ensureOpenConversation();
    const m = await client.request("message.send", { conversation: id, text, client_msg_id: cmid });
    addMessage(m);
  } catch (e) {
    const p = conv.pending.get(cmid);
    if (p) p.status = "failed";
    renderAll();
    toast(t("common.error", { msg: e.message }));
  }
}

// --- rendering ----------------------------------------------------------------------------
function authorLabel(m) {
  const f = m.from || {};
  if (f.role === "bot") return f.name || t("widget.bot");
  if (f.role === "viewer") return t("widget.you");
  if (f.role === "agent") return t("widget.agent", { name: f.name || f.user });
  if (f.role === "host") return t("role.host") + (f.name ? " " + f.name : "");
  return f.name || f.user || "";
}

function messageEl(m) {
  const f = m.from || {};
  const mine = f.role === "viewer" && f.user === client.user && !m.kind;
  const cls = ["msg", mine ? "mine" : "", f.role === "bot" && !m.kind ? "bot" : "", m.kind || "", f.role ? `from-${f.role}` : ""].filter(Boolean).join(".");
  return h(`div.${cls}`, { testid: f.role === "bot" && !m.kind ? "msg-bot" : mine ? "msg-mine" : `msg-${m.kind || f.role}`, dataset: { id: m.message_id } },
    h("div.meta", { text: `${authorLabel(m)} · ${fmtTime(m.ts)}` }),
    h("div.bubble", { text: m.text }),
  );
}

function renderAll() {
  const els = [];
  const noticeAfter = new Map();
  for (const n of conv.notices) {
    const k = n.after || "";
    if (!noticeAfter.has(k)) noticeAfter.set(k, []);
    noticeAfter.get(k).push(n);
  }
  const pushNotices = (k) => {
    for (const n of noticeAfter.get(k) || []) els.push(h("div.msg.notice", { testid: "msg-local-notice" }, h("div.bubble", { text: n.text })));
  };
  pushNotices("");
  for (const id of conv.order) {
    els.push(messageEl(conv.messages.get(id)));
    pushNotices(id);
  }
  for (const [cmid, p] of conv.pending) {
    const el = h(`div.msg.mine.${p.status}`, { testid: "msg-pending", dataset: { cmid } },
      h("div.meta", { text: p.status === "failed" ? t("widget.failed") : t("widget.sending") }),
      h("div.bubble", { text: p.text }));
    if (p.status === "failed") {
      el.addEventListener("click", () => {
        conv.pending.delete(cmid);
        sendText(p.text, cmid);
      });
    }
    els.push(el);
  }
  ui.log.replaceChildren(...els);
  ui.log.scrollTop = ui.log.scrollHeight;
  renderState();
}

function renderState() {
  const s = conv.state;
  ui.state.className = `badge ${s || ""}`;
  ui.state.textContent = s ? tOr(`state.${s}`, s) : "";
  ui.state.dataset.state = s || "";
  // queue
  const q = conv.queue;
  ui.queue.classList.toggle("hidden", !(s === "queued" && q));
  if (s === "queued" && q) {
    const ahead = Math.max(0, q.position - 1);
    const wait = q.estimated_wait_s > 0 ? t("queue.wait", { wait: duration(q.estimated_wait_s) }) : t("queue.wait.none");
    ui.queue.replaceChildren(
      h("span.spinner"),
      h("span", { testid: "queue-position", dataset: { position: q.position }, text: ahead ? t("queue.position", { ahead }) : t("queue.first") }),
      h("span.muted", { testid: "queue-wait", text: ` · ${wait}` }),
    );
  }
  ui.human.disabled = s === "queued" || s === "assigned";
  ui.human.classList.toggle("hidden", s === "assigned");
  // pinned announcement: the latest
  const last = conv.pinned[conv.pinned.length - 1] || roomState?.state?.announcements?.slice(-1)[0];
  ui.pinned.classList.toggle("hidden", !last);
  if (last) ui.pinned.replaceChildren(h("b", {}, icon("pin"), " " + t("widget.pinned")), h("span", { testid: "pinned-text", text: last.text }));
  const busy = calls.inCall;
  ui.video.disabled = ui.voice.disabled = busy || !conv.id;
}

function renderRoom() {
  const s = roomState?.state;
  if (!s) return;
  $('[data-testid="room-title"]').textContent = s.title || s.room;
  if (s.host) $('[data-testid="host-name"]').textContent = t("live.host", { name: typeof s.host === "object" ? s.host.name : s.host });
  const sku = s.on_screen;
  const p = sku ? roomState.product(sku) : null;
  if (p) {
    const stock = roomState.stock(sku);
    ui.product.replaceChildren(
      h("div.pc-tag", { text: t("live.onscreen") }),
      h("div.pc-body", {},
        h("div.pc-img", { text: (p.name || "?").slice(0, 1) }),
        h("div.pc-info", {},
          h("div.pc-name", { testid: "product-name", text: p.name }),
          h("div.pc-price", {}, h("b", { text: t("live.price", { price: p.price }) }), p.list_price ? h("s.muted", { text: t("live.listprice", { price: p.list_price }) }) : null),
          h("div.pc-stock", { testid: "product-stock", dataset: { stock }, text: t("live.stock", { n: stock }) })),
        h("button.primary.buy", { text: t("live.buy") })),
    );
  } else {
    ui.product.replaceChildren(h("div.muted", { text: t("live.nothing") }));
  }
  const gifts = roomState.gifts().filter((g) => g.active !== false);
  ui.promos.replaceChildren(
    ...gifts.map((g) =>
      h("div.promo", { testid: "promo-counter", dataset: { promo: g.id, left: g.left } },
        icon("gift"),
        h("span", { text: g.left > 0 ? t("live.gifts", { left: g.left, limit: g.limit }) : t("live.gift.ended") }),
        g.gift ? h("span.muted", { text: g.gift }) : null)),
    ...(s.promotions || []).filter((p) => p.kind !== "first_n_gift" && p.active !== false).slice(0, 2)
      .map((p) => h("div.promo.other", { testid: "promo-other", text: p.text || p.code || p.id })),
  );
  const ann = s.announcements?.slice(-1)[0];
  ui.ticker.classList.toggle("hidden", !ann);
  if (ann) ui.ticker.replaceChildren(icon("megaphone"), " " + ann.text);
}

// --- calls -------------------------------------------------------------------------------
const calls = new CallManager(client, { onChange: () => renderCall(), log: console.warn });
const callView = new CallView($('[data-testid="call-view"]'), calls);
function renderCall() {
  callView.render();
  ui.widget.classList.toggle("in-call", calls.inCall);
  renderState();
  const ended = calls.lastEnded;
  if (ended && !calls.call && ended !== renderCall.shown) {
    renderCall.shown = ended;
    const key = `call.ended.${ended.reason}`;
    const text = ended.reason === "error" ? t("call.ended.error", { msg: ended.message || "" }) : tOr(key, t("call.ended"));
    conv.notices.push({ after: conv.order[conv.order.length - 1] || null, text });
    renderAll();
  }
}

async function startCall(video) {
  try {
    await ensureOpenConversation();
    await calls.request(conv.id, video);
  } catch (e) {
    toast(t("common.error", { msg: e.message }));
  }
}

// --- wiring ------------------------------------------------------------------------------
client.on("message", (m) => {
  if (m.conversation === conv.id) addMessage(m);
});
client.on("conversation.state", (f) => {
  if (f.conversation !== conv.id) return;
  conv.state = f.state;
  if (f.agent) conv.agent = f.agent;
  if (f.state !== "queued") conv.queue = null;
  if (f.state === "resolved") conv.notices.push({ after: conv.order[conv.order.length - 1] || null, text: t("resolved.notice") });
  renderAll();
});
client.on("queue", (f) => {
  if (f.conversation !== conv.id) return;
  conv.queue = f;
  renderState();
});
client.on("conversation.assigned", (f) => {
  if (f.conversation !== conv.id) return;
  conv.agent = f.agent;
  conv.state = "assigned";
  conv.queue = null;
  conv.notices.push({ after: conv.order[conv.order.length - 1] || null, text: t("assigned.notice", { name: f.agent?.name || f.agent?.user }) });
  renderAll();
});
client.on("room.announcement", (f) => {
  if (f.room !== room) return;
  if (!conv.pinned.some((p) => p.text === f.text && Math.abs((p.ts || 0) - (f.ts || 0)) < 2)) conv.pinned.push(f);
  renderState();
});
client.on("welcome", async () => {
  // first connect, or a fresh start after resume_failed
  room = room || client.welcome?.room;
  if (!roomState || roomState.room !== room) {
    roomState = new RoomState(client, room);
    roomState.onChange(() => {
      renderRoom();
      renderState();
    });
  }
  const st = await roomState.watch();
  if (!st) fallbackRoomInfo();
  if (widgetOpened || conv.id) openConversation().catch(() => {});
});

async function fallbackRoomInfo() {
  try {
    const r = await (await fetch("/api/rooms")).json();
    const info = (r.rooms || []).find((x) => x.id === room) || r.rooms?.[0];
    if (info) {
      $('[data-testid="room-title"]').textContent = info.title;
      $('[data-testid="host-name"]').textContent = t("live.host", { name: info.host });
    }
  } catch {}
}

bindConnBadge(client, $('[data-testid="conn-state"]'));
client.onState((s) => ui.widget.dataset.conn = s);
bindLangSwitch($('[data-testid="lang-switch"]'), () => {
  renderAll();
  renderRoom();
  callView.render();
});

function openWidget() {
  widgetOpened = true;
  localStorage.setItem("ld.viewer.widget", "1");
  ui.widget.classList.remove("hidden");
  document.body.classList.add("widget-open");
  if (client.state === "online" && !conv.id) openConversation().catch(() => {});
  setTimeout(() => ui.input.focus(), 50);
}
$('[data-testid="open-support"]').addEventListener("click", openWidget);
$('[data-testid="close-support"]').addEventListener("click", () => {
  widgetOpened = false;
  localStorage.setItem("ld.viewer.widget", "0");
  ui.widget.classList.add("hidden");
  document.body.classList.remove("widget-open");
});
ui.form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = ui.input.value;
  ui.input.value = "";
  sendText(text);
});
ui.human.addEventListener("click", async () => {
  try {
    const id = await ensureOpenConversation();
    await client.request("conversation.escalate", { conversation: id });
  } catch (e) {
    toast(t("common.error", { msg: e.message }));
  }
});
ui.video.addEventListener("click", () => startCall(true));
ui.voice.addEventListener("click", () => startCall(false));

hydrateIcons();
applyI18n();
if (widgetOpened) openWidget();
renderState();
client.connect();

window.__ld = { client, conv, calls, get roomState() { return roomState; } };
