// The demo live-stream page with the viewer support widget (mobile-first overlay).
// Besides the chat: browsing reports (browse.event: product_view / add_to_cart /
// support_opened / stream_time), proactive shop notices (notice), the CSAT prompt
// (csat.request → csat.submit, kept in localStorage so it survives a reconnect or reload)
// and ending the conversation (conversation.close).
// The same module is the embedded widget (/embed, <body data-embed="1">): there the stream
// parts of the page are absent, the identity comes from the shop's page through the bridge
// (embed.js: postMessage, never a URL), and browsing reports come from the shop's page
// (LiveDesk.track / LiveDesk.onScreen).
import { Client, devTokenSource, gatewayUrls } from "./client.js";
import { t, tOr, applyI18n, duration, getLang } from "./i18n.js";
import { ChatSignals } from "./chat_state.js";
import { $, h, icon, setText, hydrateIcons, fmtTime, serverText, param, bindConnBadge, bindLangSwitch, toast, toastError, money, RoomState } from "./common.js";
import { CallManager, CallView } from "./call.js";
import { Sheet, CallDock, stickToBottom, publishSheetHeight } from "./viewer_sheet.js";
import { Evidence, PhotoPicker, attachmentErrorText } from "./evidence.js";
import { te } from "./i18n_evidence.js";

const EMBED = document.body.dataset.embed === "1";
const bridge = EMBED ? (await import("./embed.js")).startBridge() : null;
const ident = bridge ? bridge.identity : devTokenSource("viewer", { room: param("room") || "" });
const client = new Client({ urls: gatewayUrls(), getToken: ident.getToken });
// typing and read marks (chat_state.js); conv is read when it fires, after it is defined
const signals = new ChatSignals(client, { onChange: (id) => id === conv.id && renderAll() });
let room = (bridge ? bridge.room : param("room")) || null;
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
  noticeBanner: $('[data-testid="notice-banner"]'),
  csat: $('[data-testid="csat"]'),
  end: $('[data-testid="end-conversation"]'),
  dot: $('[data-testid="launcher-dot"]'),
  shelf: $('[data-testid="shelf"]'),
  shelfList: $('[data-testid="shelf-list"]'),
  cartCount: $('[data-testid="cart-count"]'),
};

// the chat log stays at its end when a card (rating, call) takes room below it
const logEnd = stickToBottom(ui.log);

// photos in the chat (evidence.js): uploads and reads with this viewer's token
const evidence = new Evidence(ident.getToken);
const photos = new PhotoPicker({
  evidence,
  button: $('[data-testid="photo-button"]'),
  input: $('[data-testid="photo-input"]'),
  chips: $('[data-testid="photo-chips"]'),
  conversation: () => ensureOpenConversation(),
  onChange: () => logEnd.toEnd(),
});

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
  // local lines: {after: message_id|null, key, vars} — worded when drawn, so a language
  // switch rewords them too
  notices: [],
};
let widgetOpened = !EMBED && localStorage.getItem("ld.viewer.widget") === "1";
let opening = null;
let msgCounter = 0;
// settled once the page knows what the server has after a (re)connect (restoreConversation)
let restoring = Promise.resolve();
let freshSession = false; // the last welcome came after resume_failed
let goneBefore = null; // {conversation, why}: shown closed; the next new one says so at its top

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
  if (goneBefore && goneBefore.conversation !== snap.conversation) {
    conv.notices.push({ after: null, key: `resolved.${goneBefore.why}.new`, why: goneBefore.why });
    goneBefore = null;
  }
  for (const m of snap.messages || []) addMessage(m, false);
  signals.seed(conv.id, snap.read_marks); // the agent's read mark, kept by the gateway
  if (snap.state === "resolved") conv.notices.push({ after: conv.order[conv.order.length - 1] || null, key: "resolved.notice" });
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
        toastError(e);
        throw e;
      })
      .finally(() => (opening = null));
  }
  return opening;
}

/**
 * The server no longer has the conversation shown (``why``: "restart" after a fresh session,
 * "gone" when a send found it unknown): it stays on screen as closed, saying so in words, the
 * same way as a conversation the state store lost; the next message starts a new one, with
 * the bot (ensureOpenConversation), which begins by saying what happened to this one.
 */
function conversationGone(why) {
  if (conv.state === "resolved") return;
  conv.state = "resolved";
  conv.agent = null;
  conv.queue = null;
  conv.notices.push({ after: conv.order[conv.order.length - 1] || null, key: `resolved.${why}`, why });
  goneBefore = { conversation: conv.id, why };
  renderAll();
}

/**
 * After a (re)load: show the viewer's latest conversation in this room, even a resolved one
 * (its history and the rating prompt belong together), instead of starting an empty one;
 * writing to a resolved conversation starts a new one (ensureOpenConversation).
 * After a fresh session (the server restarted, or we were away too long to resume), the open
 * conversation shown is asked for again: reloaded with its history when the server still has
 * it, otherwise shown closed in words (conversationGone) instead of silently replaced.
 */
async function restoreConversation({ fresh = false } = {}) {
  if (fresh && conv.id && conv.state !== "resolved") {
    try {
      resetConversation(await client.request("conversation.get", { conversation: conv.id }));
      return conv.id;
    } catch (e) {
      if (!["not_found", "not_member"].includes(e.code)) throw e;
      conversationGone("restart");
      return conv.id;
    }
  }
  if (fresh && conv.id) return conv.id; // closed already: the next message opens a new one
  if (!conv.id) {
    try {
      const r = await client.request("conversation.list");
      const last = (r.conversations || []).filter((c) => c.room === room).sort((a, b) => (b.created_at || 0) - (a.created_at || 0))[0];
      if (last && last.state === "resolved") {
        resetConversation(await client.request("conversation.get", { conversation: last.conversation }));
        return conv.id;
      }
    } catch (e) {
      console.warn("conversation.list", e.message);
    }
  }
  return openConversation();
}

async function ensureOpenConversation() {
  if (!conv.id || conv.state === "resolved") await openConversation();
  return conv.id;
}

/**
 * Run ``fn(conversationId)`` on the open conversation (opened when needed). When the server
 * no longer knows it (not_found: it went while the page was not told), say so
 * (conversationGone) and run ``fn`` once more, on a new conversation.
 */
async function onOpenConversation(fn) {
  const id = await ensureOpenConversation();
  try {
    return await fn(id);
  } catch (e) {
    if (e.code !== "not_found" || id !== conv.id) throw e;
    conversationGone("gone");
    return fn(await ensureOpenConversation());
  }
}

/**
 * Send ``text`` (kept as pending until the server echoes it). Nothing typed is lost: a send
 * caught by a restarted connection (resume_failed) waits until the page knows what the server
 * has, then goes again with the same client_msg_id, to a new conversation when the old one is
 * gone; so does a send to a conversation the server no longer knows (not_found).
 */
async function sendText(text, cmid = newClientMsgId(), retried = false, attachments = []) {
  text = text.trim();
  if (!text && !attachments.length) return;
  conv.pending.set(cmid, { text, attachments, status: "pending", ts: Date.now() / 1000 });
  if (csat && csat.status !== "ask" && csat.status !== "sending") setCsat(null);
  renderAll();
  const ids = attachments.map((a) => a.attachment);
  try {
    addMessage(await onOpenConversation((id) => client.request("message.send", { conversation: id, text, client_msg_id: cmid, ...(ids.length ? { attachments: ids } : {}) })));
  } catch (e) {
    if (!retried && e.code === "resume_failed") {
      await restoring;
      return sendText(text, cmid, true, attachments);
    }
    const p = conv.pending.get(cmid);
    if (p) p.status = "failed";
    renderAll();
    toastError(e);
  }
}

// --- rendering ----------------------------------------------------------------------------
function authorLabel(m) {
  const f = m.from || {};
  if (f.role === "bot") return t("widget.bot"); // the bot's name is the server's (zh): the page's word
  if (f.role === "viewer") return t("widget.you");
  if (f.role === "agent") return t("widget.agent", { name: f.name || f.user });
  if (f.role === "host") return t("role.host") + (f.name ? " " + f.name : "");
  if (m.kind === "notice") return t("widget.notice");
  if (f.role === "system") return t("widget.system");
  return f.name || f.user || "";
}

function messageEl(m) {
  const f = m.from || {};
  const mine = f.role === "viewer" && f.user === client.user && !m.kind;
  const cls = ["msg", mine ? "mine" : "", f.role === "bot" && !m.kind ? "bot" : "", m.kind || "", f.role ? `from-${f.role}` : ""].filter(Boolean).join(".");
  return h(`div.${cls}`, { testid: f.role === "bot" && !m.kind ? "msg-bot" : mine ? "msg-mine" : `msg-${m.kind || f.role}`, dataset: { id: m.message_id } },
    h("div.meta", { text: `${authorLabel(m)} · ${fmtTime(m.ts)}` }),
    // what people (and the bot, in the asker's language) wrote is user content: not translated
    m.text || !m.attachments?.length
      ? h("div.bubble", { dataset: f.role === "system" || m.text_key ? {} : { userContent: "" } },
        m.kind === "notice" ? icon("bell") : null, m.kind === "notice" ? " " : null, serverText(m))
      : null,
    m.attachments?.length ? evidence.thumbs(m.attachments) : null,
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
    for (const n of noticeAfter.get(k) || []) els.push(h("div.msg.notice", { testid: "msg-local-notice" }, h("div.bubble", { text: t(n.key, n.vars) })));
  };
  pushNotices("");
  // typing and read state (chat_state.js): the mark goes under the viewer's last message
  const authorOf = (id) => conv.messages.get(id)?.from?.user;
  const lastMine = [...conv.order].reverse().find((id) => authorOf(id) === client.user);
  for (const id of conv.order) {
    const el = messageEl(conv.messages.get(id));
    if (id === lastMine && conv.state !== "bot") el.append(signals.markEl(signals.markOf(conv.id, conv.order, id)));
    els.push(el);
    pushNotices(id);
  }
  for (const [cmid, p] of conv.pending) {
    const el = h(`div.msg.mine.${p.status}`, { testid: "msg-pending", dataset: { cmid } },
      h("div.meta", { text: p.status === "failed" ? t("widget.failed") : t("widget.sending") }),
      p.text ? h("div.bubble", { text: p.text }) : null,
      p.attachments?.length ? h("div.bubble", { testid: "pending-photos", text: te("photo.count", { n: p.attachments.length }) }) : null);
    if (p.status === "failed") {
      el.addEventListener("click", () => {
        conv.pending.delete(cmid);
        sendText(p.text, cmid, false, p.attachments || []);
      });
    }
    els.push(el);
  }
  const typing = signals.typingEl(conv.id, (by) => (by.role === "agent" ? t("widget.agent", { name: by.name || by.user }) : by.name || by.user));
  if (typing) els.push(typing);
  ui.log.replaceChildren(...els);
  logEnd.toEnd();
  renderState();
  markSeen();
}

/** Read when the widget is on screen in a visible, focused page; delivered otherwise. */
function markSeen() {
  const shown = widgetOpened && !ui.widget.classList.contains("hidden");
  signals.seen(conv.id, conv.order, (id) => conv.messages.get(id)?.from?.user, shown);
}

function renderState() {
  const s = conv.state;
  ui.state.className = `badge ${s || ""}`;
  setText(ui.state, s ? tOr(`state.${s}`, s) : "");
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
  const pinnedSig = last ? `${getLang()}\n${last.text}` : "";
  if (last && ui.pinned.dataset.sig !== pinnedSig) {
    ui.pinned.dataset.sig = pinnedSig;
    ui.pinned.replaceChildren(h("b", {}, icon("pin"), " " + t("widget.pinned")), h("span", { testid: "pinned-text", text: last.text }));
  }
  const busy = calls.inCall;
  ui.video.disabled = ui.voice.disabled = busy || !conv.id;
  const canEnd = !!conv.id && conv.state !== "resolved";
  ui.end.disabled = !canEnd;
  ui.end.classList.toggle("hidden", !canEnd);
  const armed = canEnd && Date.now() - endArmedAt < END_CONFIRM_MS;
  ui.end.classList.toggle("armed", armed);
  setText(ui.end, armed ? t("widget.end.confirm") : t("widget.end"));
}

function renderRoom() {
  const s = roomState?.state;
  if (!s || EMBED) return; // the embed has no stream page around it
  $('[data-testid="room-title"]').textContent = s.title || s.room;
  if (s.host) $('[data-testid="host-name"]').textContent = t("live.host", { name: typeof s.host === "object" ? s.host.name : s.host });
  const sku = s.on_screen;
  const p = sku ? roomState.product(sku) : null;
  if (p) {
    const stock = roomState.stock(sku);
    ui.product.replaceChildren(
      h("div.pc-tag", { text: t("live.onscreen") }),
      h("div.pc-body", { testid: "product-card", dataset: { sku }, on: { click: () => viewProduct(sku) } },
        h("div.pc-img", { text: (p.name || "?").slice(0, 1), dataset: { product: "" } }),
        h("div.pc-info", {},
          h("div.pc-name", { testid: "product-name", text: p.name }),
          h("div.pc-price", {}, h("b", { text: t("live.price", { price: p.price }) }), p.list_price ? h("s.muted", { text: t("live.listprice", { price: p.list_price }) }) : null),
          h("div.pc-stock", { testid: "product-stock", dataset: { stock }, text: t("live.stock", { n: stock }) })),
        addCartButton(sku, "add-to-cart")),
    );
  } else {
    ui.product.replaceChildren(h("div.muted", { text: t("live.nothing") }));
  }
  const gifts = roomState.gifts().filter((g) => g.active !== false);
  ui.promos.replaceChildren(
    ...gifts.map((g) =>
      h("div.promo", { testid: "promo-counter", dataset: { promo: g.id, left: g.left, capped: String(!!g.capped) } },
        icon("gift"),
        h("span", { text: giftWords(g) }),
        g.gift ? h("span.muted", { text: g.gift }) : null)),
    ...(s.promotions || []).filter((p) => p.kind !== "first_n_gift" && p.active !== false).slice(0, 2)
      .map((p) => h("div.promo.other", { testid: "promo-other", text: p.text || p.code || p.id })),
  );
  const ann = s.announcements?.slice(-1)[0];
  ui.ticker.classList.toggle("hidden", !ann);
  if (ann) ui.ticker.replaceChildren(icon("megaphone"), " " + ann.text);
  renderShelf();
}

/**
 * The viewer's words for a first-N gift's live count (RoomState.gifts(): the room's live
 * counters). When the gift's stock caps it, the cap is what is said — "赠品剩余 3（受库存
 * 限制）" — not "3/100", which reads as if 97 had been claimed (issue 18, live numbers).
 */
function giftWords(g) {
  if (!(g.left > 0)) return t("live.gift.ended");
  return g.capped ? t("live.gifts.capped", { left: g.left }) : t("live.gifts", { left: g.left, limit: g.limit });
}

// --- product shelf and cart ----------------------------------------------------------------
const cart = new Set(JSON.parse(sessionStorage.getItem("ld.viewer.cart") || "[]"));

function addCartButton(sku, testid) {
  const inCart = cart.has(sku);
  return h(`button.primary.addcart${inCart ? ".incart" : ""}`, {
    testid, type: "button", dataset: { sku, incart: String(inCart) },
    on: { click: (ev) => { ev.stopPropagation(); addToCart(sku); } },
  }, icon(inCart ? "check" : "cart"), " " + t("live.addcart"));
}

function renderShelf() {
  const s = roomState?.state;
  const products = s?.products || [];
  $('[data-testid="shelf-title"]').textContent = t("live.shelf.title", { n: products.length });
  ui.shelfList.replaceChildren(...products.map((p, i) =>
    h(`li.shelf-item${p.sku === browse.viewing ? ".viewing" : ""}`, { testid: "shelf-item", dataset: { sku: p.sku }, on: { click: () => viewProduct(p.sku) } },
      h("span.si-no", { text: String(i + 1) }),
      h("div.pc-img", { text: (p.name || "?").slice(0, 1), dataset: { product: "" } }),
      h("div.si-info", {},
        h("div.si-name", {}, p.sku === s.on_screen ? h("span.pc-tag", { text: t("live.onscreen") }) : null, p.name),
        h("div.pc-price", {}, h("b", { text: money(p.price) }), p.list_price ? h("s.muted", { text: money(p.list_price) }) : null),
        h("div.pc-stock", { text: t("live.stock", { n: roomState.stock(p.sku) }) })),
      addCartButton(p.sku, "shelf-add"))));
  ui.cartCount.classList.toggle("hidden", !cart.size);
  ui.cartCount.textContent = String(cart.size);
}

function openShelf(open) {
  if (!ui.shelf) return;
  ui.shelf.classList.toggle("hidden", !open);
  if (open) renderShelf();
}

function viewProduct(sku) {
  if (!sku) return;
  const now = Date.now();
  browse.viewing = sku;
  // a tap on the card already on view within a few seconds is the same look, not a new one
  if (!(browse.lastView.sku === sku && now - browse.lastView.at < 5000)) reportBrowse("product_view", { sku });
  browse.lastView = { sku, at: now };
  if (!EMBED) renderShelf();
}

function addToCart(sku) {
  const p = roomState?.product(sku);
  cart.add(sku);
  sessionStorage.setItem("ld.viewer.cart", JSON.stringify([...cart]));
  reportBrowse("add_to_cart", { sku });
  toast(`${t("live.added")} · ${p?.name || sku}`);
  renderRoom();
}

// --- browsing reports (browse.event) ---------------------------------------------------------
const STREAM_TICK_MS = 60_000;
const browse = {
  enabled: true, // off when the server does not know browse.event
  sent: 0,
  acked: 0,
  failed: 0,
  waiting: [], // events before we know the room / are welcomed
  lastOnScreen: null,
  lastView: { sku: null, at: 0 },
  viewing: null,
};
const streamStart = Number(sessionStorage.getItem("ld.viewer.stream_start")) || Date.now();
sessionStorage.setItem("ld.viewer.stream_start", String(streamStart));

function reportBrowse(kind, fields = {}) {
  if (!browse.enabled) return;
  const ev = { kind, ts: Date.now() / 1000, ...fields };
  if (!room || !client.welcome) browse.waiting.push(ev);
  else sendBrowse(ev);
}

function sendBrowse(ev) {
  browse.sent++;
  client
    .request("browse.event", { room, ...ev })
    .then(() => browse.acked++)
    .catch((e) => {
      browse.failed++;
      if (e.code === "unknown_type") browse.enabled = false;
      else console.warn("browse.event", ev.kind, e.code, e.message);
    });
}

function flushBrowse() {
  const q = browse.waiting;
  browse.waiting = [];
  for (const ev of q) sendBrowse(ev);
}

function onScreenChanged(sku = roomState?.state?.on_screen) {
  if (sku && sku !== browse.lastOnScreen) {
    browse.lastOnScreen = sku;
    browse.lastView = { sku, at: Date.now() };
    reportBrowse("product_view", { sku });
  }
}

setInterval(() => {
  if (client.state !== "online" || !room) return;
  reportBrowse("stream_time", { seconds: Math.min(604800, Math.round((Date.now() - streamStart) / 1000)) });
}, STREAM_TICK_MS);

// --- proactive notices -------------------------------------------------------------------------
let noticeTimer = null;
function showNotice(f) {
  const el = ui.noticeBanner;
  if (!el) {
    toast(`${tOr(`notice.${f.kind}`, t("widget.notice"))} · ${f.text}`, 8000);
    if (!widgetOpened) setDot(true);
    return;
  }
  const hide = () => el.classList.add("hidden");
  el.dataset.kind = f.kind || "";
  el.replaceChildren(
    h("span.nb-icon", {}, icon(f.kind === "logistics_delay" ? "truck" : f.kind === "restock" ? "bag" : "bell")),
    h("div.nb-body", {},
      h("b", { testid: "notice-kind", text: tOr(`notice.${f.kind}`, t("widget.notice")) }),
      h("div", { testid: "notice-text", text: f.text })),
    h("button.ghost.nb-x", { testid: "notice-dismiss", title: t("notice.dismiss"), on: { click: (ev) => { ev.stopPropagation(); hide(); } } }, icon("x")));
  el.onclick = () => {
    hide();
    openWidget({ byViewer: true });
  };
  el.classList.remove("hidden");
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(hide, 15_000);
  if (!widgetOpened) setDot(true);
}

function setDot(on) {
  ui.dot?.classList.toggle("hidden", !on);
  bridge?.unread(on);
}

// --- CSAT ----------------------------------------------------------------------------------
// {conversation, agent, status: ask|sending|done|skipped, rating, comment}; persisted per user
let csat = null;
const csatKey = () => `ld.viewer.csat.${client.user || ident.user}`;

function loadCsat() {
  try {
    csat = JSON.parse(localStorage.getItem(csatKey()) || "null");
  } catch {
    csat = null;
  }
  if (csat && csat.status === "sending") csat.status = "ask";
  renderCsat();
}

function setCsat(v) {
  csat = v;
  if (csat) localStorage.setItem(csatKey(), JSON.stringify(csat));
  else localStorage.removeItem(csatKey());
  renderCsat();
}

function renderCsat() {
  const box = ui.csat;
  const c = csat;
  // the card takes room below the log: when it appears or grows, the log's end (the last
  // messages, e.g. "已为您发放退款 ¥80") is scrolled back into sight once laid out
  const sig = c && c.status !== "skipped" ? `${c.conversation}|${c.status}|${c.rating || 0}` : "";
  if (sig && sig !== renderCsat.sig) requestAnimationFrame(() => logEnd.toEnd());
  renderCsat.sig = sig;
  if (!c || c.status === "skipped") {
    box.classList.add("hidden");
    box.replaceChildren();
    return;
  }
  box.classList.remove("hidden");
  box.dataset.status = c.status;
  box.dataset.conversation = c.conversation;
  const stars = (interactive) =>
    h("div.stars", { testid: "csat-stars", dataset: { rating: c.rating || 0 } }, ...[1, 2, 3, 4, 5].map((n) =>
      h(`button.star${n <= (c.rating || 0) ? ".on" : ""}`, {
        testid: "csat-star", type: "button", dataset: { value: n }, title: t("csat.star", { n }),
        "aria-pressed": String(n === c.rating), disabled: !interactive || c.status === "sending",
        on: { click: () => {
          // rating: room for the comment box without pushing the conversation out of sight
          if (!c.rating && window.innerWidth < 768) sheet.setSize("full");
          setCsat({ ...c, rating: n });
        } },
      }, icon("star"))));
  if (c.status === "done") {
    box.replaceChildren(
      h("div.csat-done", {}, stars(false),
        h("div.csat-thanks", { testid: "csat-thanks" }, icon("check"), " " + t("csat.thanks"))),
      h("button.ghost.csat-x", { testid: "csat-close", title: t("notice.dismiss"), on: { click: () => setCsat(null) } }, icon("x")));
    return;
  }
  const name = c.agent?.name || c.agent?.user;
  const comment = h("textarea", {
    testid: "csat-comment", rows: 2, maxLength: 1000, placeholder: t("csat.comment"),
    on: { input: (e) => { c.comment = e.target.value; localStorage.setItem(csatKey(), JSON.stringify(c)); } },
  });
  comment.value = c.comment || "";
  const skip = h("button.ghost.csat-skip", { testid: "csat-skip", type: "button", text: t("csat.skip"), on: { click: () => setCsat({ ...c, status: "skipped" }) } });
  box.replaceChildren(...[
    h("div.csat-title", { testid: "csat-title", text: name ? t("csat.title", { name }) : t("csat.title.anon") }),
    h("div.csat-row", {}, stars(true), h("span.csat-label.muted", { testid: "csat-label", text: c.rating ? t(`csat.r${c.rating}`) : "" }), c.rating ? null : skip),
    // the comment box and submit only once a star is chosen: until then the card is one line
    // of stars under its title, so in a half sheet the last messages stay in sight
    c.rating ? comment : null,
    c.rating ? h("div.csat-btns", {}, skip,
      h("button.primary", { testid: "csat-submit", type: "button", disabled: c.status === "sending",
        text: c.status === "sending" ? t("csat.sending") : t("csat.submit"), on: { click: submitCsat } })) : null,
  ].filter(Boolean));
}

async function submitCsat() {
  const c = csat;
  if (!c || !c.rating || c.status === "sending") return;
  c.status = "sending";
  renderCsat();
  const comment = (c.comment || "").trim();
  try {
    await client.request("csat.submit", { conversation: c.conversation, rating: c.rating, ...(comment ? { comment } : {}) });
    setCsat({ ...c, status: "done" });
  } catch (e) {
    if (e.code === "conflict") setCsat({ ...c, status: "done" }); // rated already (another tab)
    else if (["bad_state", "not_member", "not_found"].includes(e.code)) {
      setCsat(null); // that conversation cannot be rated any more (e.g. gone in a restart)
      toast(t("csat.gone"), 4000);
    } else {
      setCsat({ ...c, status: "ask" }); // network trouble: keep the prompt, try again
      toastError(e);
    }
  }
}

// --- ending the conversation ------------------------------------------------------------------
const END_CONFIRM_MS = 3000;
let endArmedAt = 0;
async function endConversation() {
  if (!conv.id || conv.state === "resolved") return;
  if (Date.now() - endArmedAt > END_CONFIRM_MS) {
    endArmedAt = Date.now(); // first tap arms, the second ends
    renderState();
    setTimeout(renderState, END_CONFIRM_MS + 50);
    return;
  }
  endArmedAt = 0;
  const id = conv.id;
  try {
    await client.request("conversation.close", { conversation: id });
    if (conv.id === id && conv.state !== "resolved") {
      conv.state = "resolved";
      conv.notices.push({ after: conv.order[conv.order.length - 1] || null, key: "resolved.notice" });
    }
  } catch (e) {
    toastError(e);
  }
  renderAll();
}

// --- calls -------------------------------------------------------------------------------
const calls = new CallManager(client, { onChange: () => renderCall(), log: console.warn });
const callView = new CallView($('[data-testid="call-view"]'), calls, { onStill: sendStill });

/** A still of the viewer's own camera: uploaded as taken from the call, then sent. */
async function sendStill(file, takenAt) {
  const cid = calls.call?.conversation || conv.id;
  try {
    const r = await evidence.upload(cid, file, { source: "call", takenAt });
    await sendText("", newClientMsgId(), false, [{ attachment: r.attachment, content_type: r.content_type, width: r.width, height: r.height }]);
    toast(te("still.taken"), 3000);
  } catch (e) {
    toast(attachmentErrorText(e), 5000);
  }
}
// where the call sits (floating window, expanded, pill) and the sheet's size: viewer_sheet.js
const dock = new CallDock(calls, $('[data-testid="call-view"]'), {
  onCall: (info) => bridge?.call(info),
  // back from the pill: in the embed the window lives in the shop page's sheet, which must
  // show again; on the stream page the floating window stands on its own
  onOpenSheet: () => (EMBED ? bridge.open() : null),
});
const sheet = new Sheet(ui.widget, {
  live: !EMBED,
  onSize: (size) => bridge?.sheet(size),
  onDragClose: () => closeWidget(),
});
function renderCall() {
  // the stream's decoration (the background's drift, the live badge's pulse) holds still
  // while a call is on: a phone's CPU goes to its camera, encoder and the call's pictures,
  // not to re-compositing the screen behind them (docs/performance.md, "Call set-up")
  document.body.classList.toggle("in-call", calls.inCall);
  callView.render();
  dock.update();
  renderState();
  const ended = calls.lastEnded;
  if (ended && !calls.call && ended !== renderCall.shown) {
    renderCall.shown = ended;
    const own = `call.ended.${ended.reason}`;
    const key = ended.reason === "error" ? "call.ended.error" : tOr(own, null) === null ? "call.ended" : own;
    conv.notices.push({ after: conv.order[conv.order.length - 1] || null, key, vars: { msg: ended.message || "" } });
    renderAll();
  }
}

async function startCall(video) {
  // at once, before the call's window (held until the camera is on, CallManager._hold):
  // the tap shows and cannot start a second call; renderState keeps them so while in the call
  ui.video.disabled = ui.voice.disabled = true;
  try {
    await calls.request(await ensureOpenConversation(), video);
  } catch (e) {
    // gone: the conversation is shown closed and the call's line says why (no second toast)
    if (e.code === "not_found") conversationGone("gone");
    else toastError(e);
    renderState(); // the buttons again (no call)
  }
}

// --- wiring ------------------------------------------------------------------------------
ui.input.addEventListener("input", () => signals.inputChanged(conv.id, ui.input.value));
window.addEventListener("focus", markSeen);
document.addEventListener("visibilitychange", markSeen);
client.on("message", (m) => {
  if (m.conversation === conv.id) addMessage(m);
});
client.on("conversation.state", (f) => {
  if (f.conversation !== conv.id) return;
  const was = conv.state;
  conv.state = f.state;
  if (f.state === "resolved" && was === "resolved") return renderAll();
  if (f.agent) conv.agent = f.agent;
  if (f.state !== "queued") conv.queue = null;
  if (f.state === "resolved") conv.notices.push({ after: conv.order[conv.order.length - 1] || null, key: f.reason === "state_lost" ? "resolved.lost" : "resolved.notice" });
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
  conv.notices.push({ after: conv.order[conv.order.length - 1] || null, key: "assigned.notice", vars: { name: f.agent?.name || f.agent?.user } });
  renderAll();
});
client.on("notice", (f) => {
  if (room && f.room && f.room !== room) return;
  showNotice(f);
  // the notice may have opened a new conversation (ours was resolved, or none yet): load it
  if (f.conversation && f.conversation !== conv.id) openConversation().catch(() => {});
});
client.on("csat.request", (f) => {
  if (csat && csat.conversation === f.conversation) return; // replayed after a resume
  setCsat({ conversation: f.conversation, agent: f.agent || null, status: "ask", rating: 0, comment: "" });
  if (!widgetOpened) setDot(true);
});
client.on("room.announcement", (f) => {
  if (f.room !== room) return;
  if (!conv.pinned.some((p) => p.text === f.text && Math.abs((p.ts || 0) - (f.ts || 0)) < 2)) conv.pinned.push(f);
  renderState();
});
client.on("fresh", () => (freshSession = true));
client.on("welcome", async () => {
  // first connect, or a fresh start after resume_failed ("fresh" came just before)
  const fresh = freshSession;
  freshSession = false;
  room = room || client.welcome?.room;
  // set before any await: sends the restart rejected wait for it (sendText)
  restoring = widgetOpened || conv.id ? restoreConversation({ fresh }).catch(() => {}) : Promise.resolve();
  if (!roomState || roomState.room !== room) {
    roomState = new RoomState(client, room);
    roomState.onChange(() => {
      if (!EMBED) onScreenChanged();
      renderRoom();
      renderState();
    });
  }
  loadCsat();
  flushBrowse();
  const st = await roomState.watch();
  if (!st && !EMBED) fallbackRoomInfo();
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
const langSwitch = $('[data-testid="lang-switch"]');
if (langSwitch) bindLangSwitch(langSwitch, () => {
  renderAll();
  renderRoom();
  renderCsat();
  callView.render();
  dock.update();
  sheet.render();
});

/**
 * Close the support sheet. During a call the viewer is asked first (hang up, or minimise to
 * the "in call" pill): a call never goes on hidden (viewer_sheet.js CallDock.requestClose).
 */
function closeWidget() {
  dock.requestClose(() => {
    widgetOpened = false;
    if (EMBED) {
      bridge.close();
      return;
    }
    localStorage.setItem("ld.viewer.widget", "0");
    ui.widget.classList.add("hidden");
    document.body.classList.remove("widget-open");
    publishSheetHeight(ui.widget);
  });
}

function openWidget({ byViewer = false } = {}) {
  const wasOpen = widgetOpened && !ui.widget.classList.contains("hidden");
  widgetOpened = true;
  localStorage.setItem("ld.viewer.widget", "1");
  ui.widget.classList.remove("hidden");
  document.body.classList.add("widget-open");
  publishSheetHeight(ui.widget);
  setDot(false);
  openShelf(false);
  if (byViewer && !wasOpen) {
    const sku = EMBED ? browse.lastOnScreen : roomState?.state?.on_screen;
    reportBrowse("support_opened", sku ? { sku } : {});
  }
  if (client.state === "online" && !conv.id) restoreConversation().catch(() => {});
  markSeen(); // the conversation is on screen again: what came meanwhile is read
  setTimeout(() => ui.input.focus(), 50);
}
if (EMBED) {
  // the launcher and the sheet are the shop page's (widget.js): it says when the viewer
  // opens us; our close button asks it to close the sheet
  bridge.on("track", (kind, sku) => {
    if (kind === "product_view" && sku) viewProduct(sku);
    else reportBrowse(kind, sku ? { sku } : {});
  });
  bridge.on("onScreen", (sku) => onScreenChanged(sku));
  bridge.on("close", () => (widgetOpened = false)); // the sheet was closed from the page
  // the shop page's "in call" pill: hang up from it, or come back to the call
  bridge.on("hangup", () => calls.hangup());
  bridge.on("open", () => {
    if (dock.mode === "minimised") dock.setMode("float");
    openWidget({ byViewer: true });
  });
  $('[data-testid="close-support"]').addEventListener("click", () => closeWidget());
} else {
  $('[data-testid="open-support"]').addEventListener("click", () => openWidget({ byViewer: true }));
  $('[data-testid="shelf-open"]').addEventListener("click", () => openShelf(ui.shelf.classList.contains("hidden")));
  $('[data-testid="shelf-close"]').addEventListener("click", () => openShelf(false));
  $('[data-testid="close-support"]').addEventListener("click", () => closeWidget());
}
ui.end.addEventListener("click", endConversation);
ui.form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = ui.input.value;
  if (!photos.count) {
    ui.input.value = "";
    signals.sent(conv.id);
    sendText(text);
    return;
  }
  // with photos: the message goes once they are uploaded; failed ones stay as chips
  if (photos.busy) toast(te("photo.sending"), 2500);
  const ready = await photos.ready();
  if (!ready.length && !text.trim()) return;
  ui.input.value = "";
  signals.sent(conv.id);
  photos.taken(ready);
  sendText(text, newClientMsgId(), false, ready.map((it) => it.attachment));
});
ui.human.addEventListener("click", async () => {
  try {
    await onOpenConversation((id) => client.request("conversation.escalate", { conversation: id }));
  } catch (e) {
    toastError(e);
  }
});
ui.video.addEventListener("click", () => startCall(true));
ui.voice.addEventListener("click", () => startCall(false));

hydrateIcons();
applyI18n();
if (widgetOpened) openWidget();
renderState();
client.connect();

window.__ld = { client, conv, calls, dock, sheet, browse, cart, signals, evidence, photos, get csat() { return csat; }, get roomState() { return roomState; } };
if (EMBED) bridge.ready();
