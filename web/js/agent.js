// The agent console (1440×900): status with time in status, queue, conversations, chat with
// the bot part marked, the handoff context (viewer and mood, browsing timeline, orders with
// logistics, promotions, earlier conversations; `context` pushes and context.get), actions
// within authority (action.compensate → action.result, approvals; action.return), the
// fatigue guard's break banner, one-click canned replies, incoming calls and the call view.
import { Client, staffTokenSource, gatewayUrls } from "./client.js";
import { t, tOr, applyI18n, duration, getLang } from "./i18n.js";
import { ChatSignals } from "./chat_state.js";
import { $, h, icon, hydrateIcons, setText, fmtTime, joinList, serverText, locale, param, bindConnBadge, bindLangSwitch, toast, toastError, moodLabel, reasonLabel, intentLabel, clock, money, RoomState, bindStaffAuth, giftLine } from "./common.js";
import { Alerts } from "./alerts.js";
import { CallManager, CallView, renderIncoming } from "./call.js";
import { Evidence, PhotoPicker, attachmentsOf, attachmentErrorText, MAX_PER_MESSAGE } from "./evidence.js";
import { te } from "./i18n_evidence.js";
import { keyboardResizer } from "./dock_resize.js";

const ident = staffTokenSource("agent", { name: param("name") || "" });
// agents work with the console in a background tab: it reconnects as fast hidden as visible
const client = new Client({ urls: gatewayUrls(), getToken: ident.getToken, hiddenBackoffMaxMs: 500 });
// typing and read marks (chat_state.js): the selected conversation re-renders on a change
const signals = new ChatSignals(client, { onChange: (id) => id === selected && renderChat() });


const ui = {
  convList: $('[data-testid="conv-list"]'),
  queueList: $('[data-testid="queue-list"]'),
  agentList: $('[data-testid="agent-list"]'),
  status: $('[data-testid="agent-status"]'),
  chatEmpty: $('[data-testid="chat-empty"]'),
  chatInner: $(".chat-inner"),
  log: $('[data-testid="chat-log"]'),
  input: $('[data-testid="chat-input"]'),
  form: $('[data-testid="chat-form"]'),
  viewer: $('[data-testid="chat-viewer"]'),
  state: $('[data-testid="chat-state"]'),
  ctx: $('[data-testid="context-body"]'),
  replies: $('[data-testid="replies-list"]'),
  replySearch: $('[data-testid="replies-search"]'),
  banner: $('[data-testid="incoming-call"]'),
  callCol: $('[data-testid="call-column"]'),
  since: $('[data-testid="status-since"]'),
  limit: $('[data-testid="agent-limit"]'),
  breakBanner: $('[data-testid="break-banner"]'),
  actions: $('[data-testid="actions-panel"]'),
  compForm: $('[data-testid="comp-form"]'),
  compKind: $('[data-testid="comp-kind"]'),
  compAmount: $('[data-testid="comp-amount"]'),
  compReason: $('[data-testid="comp-reason"]'),
  compSubmit: $('[data-testid="comp-submit"]'),
  compHint: $('[data-testid="comp-hint"]'),
  compLimit: $('[data-testid="comp-limit"]'),
  returnForm: $('[data-testid="return-form"]'),
  returnOrder: $('[data-testid="return-order"]'),
  returnReason: $('[data-testid="return-reason"]'),
  actionList: $('[data-testid="action-list"]'),
};
ui.evidence = $('[data-testid="evidence-panel"]');
// photos, stills and recordings (evidence.js), read and uploaded with this agent's token
const evidence = new Evidence(ident.getToken);
const photos = new PhotoPicker({
  evidence,
  button: $('[data-testid="photo-button"]'),
  input: $('[data-testid="photo-input"]'),
  chips: $('[data-testid="photo-chips"]'),
  conversation: async () => selected,
});
// this agent: status and since (agent.state), authority limit if the server tells it
const me = { status: null, since: null, load: 0, capacity: null, maxCompensation: null, breakSuggested: null };

const convs = new Map(); // id → {id, room, state, viewer, agent, messages: Map, order, context, unread, lost}
let selected = null;
// settled once the console knows what the server has after a (re)connect (refreshAll)
let reconciling = Promise.resolve();
let lostBecause = null; // "restart" after a fresh session: why conversations missing now went
let queue = [];
let agents = [];
let msgCounter = 0;
const rooms = new Map(); // room → RoomState

function upsertConv(id, patch = {}) {
  let c = convs.get(id);
  if (!c) {
    c = { id, room: null, state: null, viewer: null, agent: null, messages: new Map(), order: [], context: null, ctxVersion: 0, actions: [], unread: 0, createdAt: Date.now() };
    convs.set(id, c);
  }
  const { context, ...rest } = patch;
  Object.assign(c, Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)));
  if (context) setContext(c, context);
  if (c.room) watchRoom(c.room);
  return c;
}

function addMsg(c, m) {
  if (c.messages.has(m.message_id)) return false;
  c.messages.set(m.message_id, m);
  c.order.push(m.message_id);
  c.order.sort((a, b) => (c.messages.get(a).ts ?? 0) - (c.messages.get(b).ts ?? 0));
  return true;
}

/** Merge a context (assignment, conversation.get, context push/reply) into the conversation. */
function setContext(c, ctx) {
  const clean = Object.fromEntries(Object.entries(ctx).filter(([k]) => !["type", "id", "seq", "conversation"].includes(k)));
  c.context = { ...(c.context || {}), ...clean };
  c.ctxVersion++;
  if (typeof ctx.max_compensation === "number") me.maxCompensation = ctx.max_compensation;
}

async function fetchContext(id) {
  try {
    const r = await client.request("context.get", { conversation: id });
    const c = convs.get(id);
    if (c) setContext(c, r);
    renderContext();
  } catch (e) {
    if (e.code !== "unknown_type") console.warn("context.get", e.message);
  }
}

function loadSnapshot(snap) {
  const c = upsertConv(snap.conversation, {
    room: snap.room, state: snap.state, agent: snap.agent, viewer: snap.viewer || snap.context?.viewer,
    context: snap.context || undefined,
  });
  for (const m of snap.messages || snap.context?.messages || []) addMsg(c, m);
  signals.seed(c.id, snap.read_marks); // the viewer's read mark, kept by the gateway
  return c;
}

// --- what the server has: a conversation the console shows as open must still be ours ------
const OPEN_STATES = new Set(["bot", "queued", "assigned"]);
const isOpen = (c) => OPEN_STATES.has(c.state);

/**
 * The server no longer has ``c`` for us (``why``: "restart", "gone" or "reassigned"): it
 * stays in the list, marked in words, and leaves the open count (the load the server
 * counts). Replying to it would only fail.
 */
function markLost(c, why) {
  c.state = "lost";
  c.lost = why;
  c.unread = 0;
}

function lostText(c) {
  return t(`agent.lost.${c.lost || "gone"}`);
}

/** Apply a conversation.get snapshot, keeping the rule of conversation.state: assigned to another agent is "transferred". */
function applySnapshot(snap) {
  const c = loadSnapshot(snap);
  if (snap.state === "assigned" && snap.agent && snap.agent.user !== client.user) c.state = "transferred";
  c.lost = null;
  return c;
}

/**
 * Ask the server about ``c``: reload it with its history, or mark it lost when the server
 * does not know it (not_found; ``why`` says why we think so) or it is no longer ours
 * (not_member). Resolves true while it still exists for us.
 */
async function verifyConv(c, why) {
  try {
    applySnapshot(await client.request("conversation.get", { conversation: c.id }));
    return true;
  } catch (e) {
    if (e.code === "not_found") markLost(c, why);
    else if (e.code === "not_member" || e.code === "forbidden") markLost(c, "reassigned");
    else throw e;
    return false;
  }
}

/**
 * A request about ``c`` failed: when it is because the conversation is gone, mark it and say
 * so in words (the server's "unknown conversation" is never shown); otherwise the error in
 * words. ``unsent`` frames it as a reply that did not go out.
 */
async function convFailed(c, e, { unsent = false } = {}) {
  if (c && c.state !== "lost" && ["not_found", "not_member", "forbidden"].includes(e.code)) {
    try {
      await verifyConv(c, "gone");
    } catch (e2) {
      console.warn("conversation.get", e2.message);
    }
  }
  renderAll();
  if (c && c.state === "lost") toast(unsent ? t("agent.unsent", { why: lostText(c) }) : lostText(c), 5000);
  else toastError(e);
}

async function refreshAll(why = null) {
  try {
    const r = await client.request("conversation.list");
    const listed = new Set();
    for (const s of r.conversations || []) {
      listed.add(s.conversation);
      upsertConv(s.conversation, { room: s.room, state: s.state, viewer: s.viewer, agent: s.agent });
      try {
        applySnapshot(await client.request("conversation.get", { conversation: s.conversation }));
      } catch (e) {
        console.warn(e);
      }
    }
    // shown as open but not listed as ours any more: gone (e.g. the server restarted
    // without it), resolved or transferred meanwhile. Ask, and show what is true.
    for (const c of [...convs.values()]) {
      if (listed.has(c.id) || !isOpen(c)) continue;
      try {
        await verifyConv(c, why || "gone");
      } catch (e) {
        console.warn("conversation.get", e.message);
      }
    }
  } catch (e) {
    console.warn(e);
  }
  try {
    const q = await client.request("queue.get");
    queue = q.queue || [];
    agents = q.agents || [];
  } catch {}
  if (!selected) {
    const open = [...convs.values()].find((c) => c.state === "assigned");
    if (open) selected = open.id;
  }
  renderAll();
}

// --- rendering ----------------------------------------------------------------------------
function viewerName(c) {
  return c.viewer?.name || c.viewer?.user || c.context?.viewer?.name || "?";
}

function renderLists() {
  const done = (c) => !isOpen(c);
  const list = [...convs.values()].sort((a, b) => done(a) - done(b) || b.createdAt - a.createdAt);
  const open = list.filter(isOpen);
  $('[data-testid="convs-title"]').textContent = t("agent.convs", { n: open.length });
  ui.convList.replaceChildren(
    ...(list.length
      ? list.map((c) => {
          const last = c.messages.get(c.order[c.order.length - 1]);
          return h(`li.item${c.id === selected ? ".sel" : ""}${done(c) ? ".done" : ""}`,
            { testid: "conv-item", tabindex: "0", "aria-current": c.id === selected ? "true" : null, dataset: { conversation: c.id, state: c.state || "", lost: c.lost || "" },
              on: { click: () => select(c.id), keydown: (ev) => ev.key === "Enter" && select(c.id) } },
            h("div.row", {}, h("b", { text: viewerName(c) }), h(`span.badge.${c.state}`, { text: tOr(`state.${c.state}`, c.state || "") }),
              c.unread ? h("span.unread", { testid: "unread", "aria-label": t("agent.unread", { n: c.unread }), text: String(c.unread) }) : null),
            c.state === "lost"
              ? h("div.preview.muted", { testid: "conv-lost-reason", text: lostText(c) })
              : h("div.preview.muted", { text: last ? last.text : "" }));
        })
      : [h("li.muted.emptyli", { text: t("agent.convs.empty") })]),
  );
  $('[data-testid="queue-title"]').textContent = t("agent.queue", { n: queue.length });
  ui.queueList.replaceChildren(
    ...(queue.length
      ? queue.map((q) =>
          h("li.item", { testid: "queue-item", dataset: { conversation: q.conversation } },
            h("div.row", {}, h("b", { text: `#${q.position} ${q.viewer?.name || q.viewer?.user || q.viewer || ""}` }),
              h("span.muted", { text: t("agent.queue.item", { wait: duration(q.waited_s || 0) }) }))))
      : [h("li.muted.emptyli", { text: t("agent.queue.empty") })]),
  );
  $('[data-testid="agents-title"]').textContent = t("agent.agents", { n: agents.length });
  ui.agentList.replaceChildren(
    ...agents.map((a) =>
      h("li.agent", { testid: "agent-item", dataset: { user: a.user, status: a.status } }, h(`span.dot.${a.status}`), h("span", { text: a.name || a.user }),
        h("span.muted", { testid: "agent-item-status", text: agentLine(a) }))),
  );
}

function agentLine(a) {
  const bits = [tOr(`status.${a.status}`, a.status)];
  if (typeof a.since === "number") bits.push(clock(Date.now() / 1000 - a.since));
  bits.push(t("agent.agent.load", { load: a.load, cap: a.capacity }));
  return bits.join(" · ");
}

function botSplit(c) {
  // the bot part: everything up to the last bot line before the first agent/host line
  const msgs = c.order.map((id) => c.messages.get(id));
  let firstHuman = msgs.findIndex((m) => m.from?.role === "agent" || m.from?.role === "host");
  if (firstHuman < 0) firstHuman = msgs.length;
  let lastBot = -1;
  for (let i = 0; i < firstHuman; i++) if (msgs[i].from?.role === "bot" || msgs[i].bot) lastBot = i;
  return { msgs, lastBot: c.state === "bot" ? msgs.length - 1 : lastBot };
}

function renderChat() {
  const c = convs.get(selected);
  ui.chatEmpty.classList.toggle("hidden", !!c);
  ui.chatInner.classList.toggle("hidden", !c);
  if (!c) return;
  c.unread = 0;
  ui.viewer.textContent = viewerName(c);
  ui.state.className = `badge ${c.state}`;
  ui.state.textContent = tOr(`state.${c.state}`, c.state);
  ui.state.dataset.state = c.state;
  const { msgs, lastBot } = botSplit(c);
  const els = [];
  if (lastBot >= 0) els.push(h("div.divider", { testid: "bot-part-label" }, icon("bot"), t("agent.bot.part")));
  msgs.forEach((m, i) => {
    const f = m.from || {};
    const mine = f.user === client.user;
    const isBot = f.role === "bot" || m.bot;
    const cls = ["msg", mine ? "mine" : "", isBot && !m.kind ? "bot" : "", m.kind || "", i <= lastBot ? "botphase" : ""].filter(Boolean).join(".");
    const who = isBot ? t("role.bot") : mine ? t("widget.you") : m.kind === "notice" ? t("widget.notice")
      : f.role === "system" ? t("widget.system") : `${tOr(`role.${f.role}`, f.role)} ${f.name || f.user}`;
    els.push(h(`div.${cls}`, { testid: isBot && !m.kind ? "msg-bot" : mine ? "msg-mine" : `msg-${m.kind || f.role}`, dataset: { id: m.message_id, phase: i <= lastBot ? "bot" : "human" } },
      h("div.meta", { text: `${who} · ${fmtTime(m.ts)}` }),
      m.text || !m.attachments?.length ? h("div.bubble", { text: serverText(m), dataset: f.role === "system" || m.text_key ? {} : { userContent: "" } }) : null,
      m.attachments?.length ? evidence.thumbs(m.attachments) : null));
    if (i === lastBot && i < msgs.length - 1) els.push(h("div.divider", { testid: "human-part-label" }, icon("headset"), t("agent.human.part")));
  });
  if (c.state === "lost") els.push(h("div.msg.notice", { testid: "conv-lost-notice", dataset: { lost: c.lost || "" } }, h("div.bubble", { text: lostText(c) })));
  // the agent's last message carries the viewer's delivered/read mark; the viewer's typing below
  const authorOf = (id) => c.messages.get(id)?.from?.user;
  const lastMine = [...c.order].reverse().find((id) => authorOf(id) === client.user);
  const mineEl = lastMine && els.find((el) => el.dataset?.id === lastMine);
  if (mineEl) mineEl.append(signals.markEl(signals.markOf(c.id, c.order, lastMine)));
  const typing = signals.typingEl(c.id, () => viewerName(c));
  if (typing) els.push(typing);
  ui.log.replaceChildren(...els);
  ui.log.scrollTop = ui.log.scrollHeight;
  signals.seen(c.id, c.order, authorOf, true);
  renderChatControls(c);
}

/** The chat's buttons and input, which follow the conversation's state and the call's (a
 * call changes only these: renderCall runs a dozen times while a call sets up, and
 * rebuilding the whole log each time kept the console's main thread from the call's own
 * negotiation, benchmarks/call_setup.py --trace). */
function renderChatControls(c) {
  const open = c.state === "assigned";
  // call buttons stay disabled while any call runs or rings (one call at a time)
  const busy = calls.inCall || !!calls.incoming;
  for (const sel of ["resolve", "transfer", "agent-video-call", "agent-voice-call"]) $(`[data-testid="${sel}"]`).disabled = !open || (sel.includes("call") && busy);
  ui.input.disabled = !open;
  $('[data-testid="chat-send"]').disabled = !open;
  photos.button.disabled = !open || photos.count >= MAX_PER_MESSAGE;
}

function section(title, testid, ...body) {
  return h("section.ctx-sec", { testid }, h("h4", { text: title }), ...body);
}

const kv = (k, val, testid) => h("div.kv", { testid }, h("span.k.muted", { text: k }), h("span.v", { text: val ?? "—" }));

function productName(c, sku) {
  return rooms.get(c.room)?.product(sku)?.name || sku;
}

function ordersSection(c, ctx) {
  const orders = ctx.orders || [];
  const body = [];
  if (ctx.orders_loaded === false && !orders.length) body.push(h("div.muted.placeholder", { testid: "orders-loading", text: t("ctx.loading") }));
  else if (!orders.length) body.push(h("div.muted.placeholder", { text: t("ctx.orders.empty") }));
  for (const o of orders) {
    const lg = o.logistics || {};
    body.push(h("div.order", { testid: "order-item", dataset: { order: o.order_id, status: o.status || "", logistics: lg.status || "" } },
      h("div.o-top", {},
        h("b.o-name", { text: `${o.name || o.sku}${o.qty > 1 ? ` ×${o.qty}` : ""}` }),
        h("span.o-amt", { text: money(o.amount) }),
        h("span.badge", { testid: "order-status", text: tOr(`order.${o.status}`, o.status || "") }),
        h("button.small.o-return", { testid: "order-return", disabled: c.state !== "assigned", on: { click: () => pickReturn(o.order_id) } }, t("act.return"))),
      h("div.o-id.muted", { text: `#${o.order_id}${o.placed_at ? ` · ${String(o.placed_at).slice(0, 16).replace("T", " ")}` : ""}` }),
      lg.status
        ? h("div.o-logi", {},
            h(`span.logi.${lg.status}`, { testid: "order-logistics", dataset: { status: lg.status } }, icon("truck"), " " + tOr(`logi.${lg.status}`, lg.status)),
            h("span", { text: [lg.courier, lg.tracking_no].filter(Boolean).join(" ") }),
            lg.eta ? h("span.muted", { text: t("logi.eta", { eta: lg.eta }) }) : null)
        : null,
      lg.last_event ? h("div.o-event.muted", { testid: "order-last-event", text: lg.last_event }) : null));
  }
  return section(`${t("ctx.orders")}${orders.length ? ` (${orders.length})` : ""}`, "ctx-orders", ...body);
}

function timelineSection(c, ctx) {
  const events = (ctx.browsing || ctx.timeline || []).filter((e) => e.kind !== "stream_time");
  const cart = ctx.cart || [];
  const head = [];
  if (cart.length) head.push(kv(t("ctx.cart"), joinList(cart.map((sku) => productName(c, sku))), "ctx-cart"));
  if (ctx.on_screen_at_open) head.push(kv(t("ctx.onscreen_at_open"), productName(c, ctx.on_screen_at_open), "ctx-onscreen-at-open"));
  if (typeof ctx.time_in_stream_s === "number") head.push(kv(t("ctx.stream_time"), duration(ctx.time_in_stream_s), "ctx-stream-time"));
  const items = events.slice(-20).map((e) =>
    h(`li.tl.${e.kind}`, { testid: "timeline-item", dataset: { kind: e.kind, sku: e.sku || "" } },
      h("span.tl-time.muted", { text: e.ts ? fmtTime(e.ts) : "" }),
      h("span.tl-dot"),
      h("span.tl-kind", { text: tOr(`browse.${e.kind}`, e.kind) }),
      h("span.tl-what", { text: e.name || (e.sku ? productName(c, e.sku) : "") })));
  return section(t("ctx.timeline"), "ctx-timeline", ...head,
    items.length ? h("ol.timeline", {}, ...items) : h("div.muted.placeholder", { text: t("ctx.timeline.empty") }));
}

/** What a viewer lacks for a promotion, in the console's language (missing_key + params; the
 * server's English "missing" only from a gateway older than the keys). */
function missingText(c, p) {
  const params = p.missing_params || {};
  if (p.missing_key === "promo.missing.add") return t("promo.missing.add", { skus: joinList((params.skus || []).map((s) => productName(c, s))) });
  if (p.missing_key === "promo.missing.items") return t("promo.missing.items", { n: params.n, skus: joinList((params.skus || []).map((s) => productName(c, s))) });
  if (p.missing_key === "promo.missing.more") return t("promo.missing.more", { amount: money(params.amount) });
  return p.missing || "";
}

function promosSection(c, ctx) {
  // which promotions and why come from the handoff; the numbers are the room's live ones
  // (renderLive fills [data-testid="promo-left"]), never the handoff's snapshot
  const promos = ctx.promotions || [];
  return section(t("ctx.promos"), "ctx-promos", ...(promos.length
    ? promos.map((p) => h("div.promo-ctx", { testid: "promo-item", dataset: { promo: p.id, status: p.status || "" } },
        h(`span.pstat.${p.status}`, { text: tOr(`promo.${p.status}`, p.status || "") }),
        h("span.ptext", {}, p.text || p.id,
          p.code ? h("code", { text: ` ${p.code}` }) : null,
          typeof p.left === "number" || p.kind === "first_n_gift"
            ? h("span.muted.plive", { testid: "promo-left", dataset: { promo: p.id, snapshot: p.left ?? "" }, text: ` · ${t("ctx.promo.left", { n: p.left ?? "—" })}` }) : null,
          p.missing || p.missing_key ? h("span.muted", { testid: "promo-missing", text: ` · ${missingText(c, p)}` }) : null)))
    : [h("div.muted.small", { text: t("ctx.promos.empty") })]));
}

function earlierSection(ctx) {
  const list = ctx.earlier_conversations || [];
  return section(`${t("ctx.earlier")}${list.length ? ` (${list.length})` : ""}`, "ctx-earlier", ...(list.length
    ? list.slice(0, 8).map((e) => h("div.earlier", { testid: "earlier-item", dataset: { conversation: e.conversation } },
        h("div.e-top", {},
          h("span.muted", { text: e.created_at ? new Date(e.created_at * 1000).toLocaleDateString(locale()) + " " + fmtTime(e.created_at) : "" }),
          h("span.badge", { text: tOr(`outcome.${e.outcome}`, e.outcome || tOr(`state.${e.state}`, e.state || "")) }),
          e.mood ? h(`span.mood.${e.mood}`, { text: moodLabel(e.mood) }) : null,
          typeof e.csat === "number" ? h("span.csat-chip", { text: `★${e.csat}` }) : null),
        h("div.e-msg", { text: e.first_message || "" })))
    : [h("div.muted.small", { text: t("ctx.earlier.empty") })]));
}

function renderContext() {
  const c = convs.get(selected);
  renderActionsPanel();
  if (!c) {
    ui.ctx.replaceChildren(h("div.muted", { text: t("agent.pick") }));
    renderContext.key = null;
    return;
  }
  // rebuild only when something shown changed (not on every chat line or room tick)
  const key = `${c.id}|${c.ctxVersion}|${c.state}|${getLang()}|${rooms.get(c.room)?.state ? 1 : 0}`;
  if (renderContext.key === key) return;
  renderContext.key = key;
  const scroll = ui.ctx.scrollTop;
  const ctx = c.context || {};
  const v = ctx.viewer || c.viewer || {};
  const intents = [...new Set((ctx.intents || []).filter(Boolean))];
  const chatSoFar = (ctx.messages || []).filter((m) => !m.kind || m.kind === "announcement");
  const mood = ctx.mood || "neutral";
  ui.ctx.replaceChildren(
    h("section.ctx-sec.ctx-who", { testid: "ctx-viewer" },
      h("div.who-row", {},
        h("span.avatar", {}, icon("person")),
        h("div.who-name", {}, h("b", { text: v.name || v.user || "?" }), v.user && v.name && v.name !== v.user ? h("span.muted", { text: ` ${v.user}` }) : null,
          // the viewer's own nickname, only ever marked as one (the name is the token's)
          v.nickname ? h("div.muted.small", { testid: "ctx-nickname", text: t("ctx.nickname", { name: v.nickname }) }) : null,
          h("div.muted.small", { text: `${t("ctx.room")} ${ctx.room || c.room || ""}` })),
        h("div.mood-box", {},
          h(`span.mood.big.${mood}`, { testid: "ctx-mood", dataset: { mood }, title: t("ctx.mood") }, moodLabel(ctx.mood)),
          h("div.muted.tiny", { text: t("ctx.mood.by_bot") }))),
      kv(t("ctx.reason"), reasonLabel(ctx.reason), "ctx-reason"),
      kv(t("ctx.intents"), joinList(intents.map(intentLabel)) || "—", "ctx-intents")),
    ordersSection(c, ctx),
    timelineSection(c, ctx),
    promosSection(c, ctx),
    earlierSection(ctx),
    section(t("ctx.chat"), "ctx-chat",
      h("ol.ctx-chat", {}, ...chatSoFar.slice(-12).map((m) =>
        h(`li${m.bot || m.from?.role === "bot" ? ".bot" : ""}`, {}, icon(m.bot || m.from?.role === "bot" ? "bot" : "person"), " ", m.text)))),
    h("section.ctx-sec", { testid: "ctx-live" }),
  );
  renderLive();
  ui.ctx.scrollTop = scroll;
}

/** The live room bits change often: only they are redrawn on room updates. */
function renderLive() {
  const box = ui.ctx.querySelector('[data-testid="ctx-live"]');
  const c = convs.get(selected);
  if (!box || !c) return;
  const rs = rooms.get(c.room);
  const liveBits = [];
  if (rs?.state) {
    const sku = rs.state.on_screen;
    const p = sku ? rs.product(sku) : null;
    if (p) liveBits.push(kv(t("live.onscreen"), `${p.name} · ¥${p.price} · ${t("live.stock", { n: rs.stock(sku) })}`, "ctx-onscreen"));
    for (const g of rs.gifts()) {
      const el = kv(t("host.promo.gift") + " " + (g.gift || g.id), giftLine(g), "ctx-gift");
      Object.assign(el.dataset, { promo: g.id, left: String(g.left), capped: String(!!g.capped) });
      liveBits.push(el);
    }
  }
  box.replaceChildren(h("h4", { text: t("ctx.live") }), ...(liveBits.length ? liveBits : [h("div.muted", { text: "—" })]));
  // the promotions section: the same live numbers as the line above
  for (const el of ui.ctx.querySelectorAll('[data-testid="promo-left"]')) {
    const g = rs?.state ? rs.gifts().find((x) => x.id === el.dataset.promo) : null;
    if (!g) continue;
    el.textContent = ` · ${g.capped ? t("gift.line.capped", g) : t("ctx.promo.left", { n: g.left })}`;
    el.dataset.left = String(g.left);
  }
}

// --- actions within authority -------------------------------------------------------------
function limitKnown() {
  return typeof me.maxCompensation === "number";
}

function renderActionsPanel() {
  const c = convs.get(selected);
  ui.actions.classList.toggle("hidden", !c);
  if (!c) return;
  const open = c.state === "assigned";
  for (const el of [ui.compKind, ui.compAmount, ui.compReason, ui.compSubmit, ui.returnOrder, ui.returnReason, $('[data-testid="return-submit"]')]) el.disabled = !open;
  ui.compLimit.textContent = limitKnown() ? t("act.limit", { limit: me.maxCompensation }) : "";
  ui.compLimit.dataset.limit = limitKnown() ? String(me.maxCompensation) : "";
  updateCompHint();
  // the viewer's orders for a return, keeping the current pick
  const orders = c.context?.orders || [];
  const keep = ui.returnOrder.value;
  const sig = orders.map((o) => o.order_id).join(",") + getLang();
  if (ui.returnOrder.dataset.sig !== sig) {
    ui.returnOrder.dataset.sig = sig;
    ui.returnOrder.replaceChildren(...orders.map((o) => h("option", { value: o.order_id, text: `${o.name || o.sku} · #${o.order_id}` })));
    if (orders.some((o) => o.order_id === keep)) ui.returnOrder.value = keep;
  }
  ui.returnForm.classList.toggle("hidden", !orders.length);
  renderEvidence(c);
  renderActionList();
}

/**
 * The conversation's evidence (every photo, still and recording of its messages), each with a
 * "use as evidence" box: the picked ids (≤ 5) go with the next compensation or return.
 */
function renderEvidence(c) {
  const list = attachmentsOf(c.order.map((id) => c.messages.get(id)));
  c.evidencePick ||= new Set();
  for (const id of [...c.evidencePick]) if (!list.some((a) => a.attachment === id)) c.evidencePick.delete(id);
  ui.evidence.classList.toggle("hidden", !list.length);
  const sig = `${c.id}|${list.map((a) => a.attachment).join(",")}|${[...c.evidencePick].join(",")}|${getLang()}`;
  if (ui.evidence.dataset.sig === sig) return;
  ui.evidence.dataset.sig = sig;
  ui.evidence.setAttribute("aria-label", te("att.evidence"));
  ui.evidence.replaceChildren(
    h("div.ab-evidence-head", {}, h("b", { text: te("att.evidence") }),
      h("span.evidence-picked", { testid: "evidence-picked", text: c.evidencePick.size ? te("att.evidence.picked", { n: c.evidencePick.size }) : "" })),
    h("ul.evidence-strip", { testid: "evidence-list" }, ...list.map((a, i) => {
      const box = h("input", {
        type: "checkbox", testid: "evidence-pick", checked: c.evidencePick.has(a.attachment), "aria-label": `${te("att.evidence.use")} · ${evidence.caption(a)} ${i + 1}`,
        dataset: { attachment: a.attachment },
        on: { change: (ev) => {
          if (ev.target.checked && c.evidencePick.size >= MAX_PER_MESSAGE) {
            ev.target.checked = false;
            toast(te("att.evidence.max", { n: MAX_PER_MESSAGE }));
            return;
          }
          if (ev.target.checked) c.evidencePick.add(a.attachment);
          else c.evidencePick.delete(a.attachment);
          renderEvidence(c);
        } },
      });
      return h("li.evidence-item", { dataset: { attachment: a.attachment } }, evidence.thumb(a, i + 1), box);
    })));
}

/** The picked evidence of ``c`` for an action (cleared once used). */
function takeEvidence(c) {
  const ids = [...(c.evidencePick || [])];
  c.evidencePick = new Set();
  return ids.length ? { attachments: ids } : {};
}

function updateCompHint() {
  const amount = Number(ui.compAmount.value);
  const over = limitKnown() && amount > me.maxCompensation;
  ui.compSubmit.textContent = over ? t("act.submit.approval") : t("act.submit");
  ui.compSubmit.classList.toggle("blue", !over);
  ui.compSubmit.classList.toggle("amber", over);
  ui.compHint.textContent = over ? t("act.over", { limit: me.maxCompensation }) : limitKnown() ? "" : t("act.limit.unknown");
  ui.compHint.dataset.over = String(over);
}

function actionText(a) {
  if (a.action === "return") return t("act.line.return", { order: a.order_id });
  return t("act.line.compensate", { kind: tOr(`act.kind.${a.kind}`, a.kind), amount: money(a.amount).slice(1) });
}

function renderActionList() {
  const c = convs.get(selected);
  const list = c?.actions || [];
  ui.actionList.replaceChildren(...(list.length
    ? list.slice().reverse().map((a) =>
        h(`li.act.${a.status}`, { testid: "action-item", dataset: { action: a.action, status: a.status, approval: a.approval || "", kind: a.kind || "", amount: a.amount ?? "" } },
          h("span.act-icon", {}, icon(a.status === "done" ? "check" : a.status === "denied" || a.status === "failed" ? "x" : a.action === "return" ? "truck" : "gift")),
          h("span.act-what", { text: actionText(a) }),
          h(`span.act-status.${a.status}`, { testid: "action-status", text: tOr(`act.status.${a.status}`, a.status) }),
          h("span.act-ref.muted", { title: a.reason || "", text: [a.approval && a.status !== "pending_approval" ? t("act.approved_by") : null, a.reference, a.note ? t("act.note", { note: a.note }) : null, a.ts ? fmtTime(a.ts) : null].filter(Boolean).join(" · ") })))
    : [h("li.muted.small", { text: t("act.none") })]));
}

/** Apply an action.result (our reply, or the copy after a supervisor's decision). */
function applyResult(f) {
  const c = convs.get(f.conversation);
  if (!c) return;
  let a = f.approval ? c.actions.find((x) => x.approval === f.approval) : null;
  if (!a && f.id !== undefined) a = c.actions.find((x) => x.reqId === f.id);
  if (!a) {
    a = { action: f.action, ts: Date.now() / 1000 };
    c.actions.push(a);
  }
  Object.assign(a, {
    action: f.action || a.action, status: f.status, kind: f.kind ?? a.kind, amount: f.amount ?? a.amount,
    order_id: f.order_id ?? a.order_id, approval: f.approval ?? a.approval, reference: f.reference ?? a.reference, note: f.note ?? a.note,
  });
  if (f.conversation === selected) renderActionList();
}

async function compensate(ev) {
  ev.preventDefault();
  const c = convs.get(selected);
  if (!c || c.state !== "assigned") return;
  const kind = ui.compKind.value;
  const amount = Math.round(Number(ui.compAmount.value) * 100) / 100;
  const reason = ui.compReason.value.trim();
  if (!(amount > 0) || !reason) {
    toast(t("act.invalid"));
    return;
  }
  const id = client.nextId; // the id request() will use: lets the reply find its line
  const a = { action: "compensate", kind, amount, reason, status: "sending", reqId: id, ts: Date.now() / 1000 };
  c.actions.push(a);
  renderActionList();
  ui.compAmount.value = "";
  ui.compReason.value = "";
  updateCompHint();
  try {
    const r = await client.request("action.compensate", { conversation: c.id, kind, amount, reason, ...takeEvidence(c) });
    renderEvidence(c);
    applyResult(r);
  } catch (e) {
    a.status = "failed";
    a.note = e.message;
    renderActionList();
    await convFailed(c, e);
  }
}

function pickReturn(orderId) {
  ui.returnOrder.value = orderId;
  ui.returnReason.focus();
}

async function startReturn(ev) {
  ev.preventDefault();
  const c = convs.get(selected);
  if (!c || c.state !== "assigned") return;
  const order_id = ui.returnOrder.value;
  const reason = ui.returnReason.value.trim();
  if (!order_id || !reason) {
    toast(t("act.invalid"));
    return;
  }
  const a = { action: "return", order_id, reason, status: "sending", reqId: client.nextId, ts: Date.now() / 1000 };
  c.actions.push(a);
  renderActionList();
  ui.returnReason.value = "";
  try {
    applyResult(await client.request("action.return", { conversation: c.id, order_id, reason, ...takeEvidence(c) }));
    renderEvidence(c);
    fetchContext(c.id); // the order's state moved
  } catch (e) {
    a.status = "failed";
    a.note = e.message;
    renderActionList();
    await convFailed(c, e); // not_found may also be an order id: convFailed asks first
  }
}

// --- status, time in status, the break banner ------------------------------------------------
function renderMe() {
  const since = typeof me.since === "number" ? Math.max(0, Date.now() / 1000 - me.since) : null;
  setText(ui.since, since === null ? "" : t("agent.since", { t: clock(since) }));
  ui.since.dataset.status = me.status || "";
  ui.limit.classList.toggle("hidden", !limitKnown());
  if (limitKnown()) setText(ui.limit, t("agent.me.limit", { limit: me.maxCompensation }));
  const b = me.breakSuggested;
  ui.breakBanner.classList.toggle("hidden", !b);
  if (b) {
    ui.breakBanner.replaceChildren(
      h("span.bb-icon", {}, icon("coffee")),
      h("div.bb-text", {}, h("b", { text: t("break.title") }), " ", h("span", { text: t("break.text", { n: b.consecutive }) })),
      h("button.green", { testid: "break-take", on: { click: () => setStatus("break") } }, t("break.take")),
      h("button", { testid: "break-continue", on: { click: () => setStatus("available") } }, t("break.continue")));
  }
}

async function setStatus(status) {
  ui.status.value = status;
  localStorage.setItem("ld.agent.status", status);
  try {
    await client.request("agent.status", { status });
    me.breakSuggested = null; // any status ends the pause
  } catch (e) {
    toastError(e);
  }
  renderMe();
}

setInterval(() => {
  renderMe();
  for (const el of document.querySelectorAll('[data-testid="agent-item-status"]')) {
    const a = agents.find((x) => x.user === el.closest("li")?.dataset.user);
    if (a) setText(el, agentLine(a)); // only a change: a rewrite is a layout, every second
  }
}, 1000);

// --- canned replies ---------------------------------------------------------------------
let repliesTimer = null;
let repliesSeq = 0;
function loadReplies() {
  clearTimeout(repliesTimer);
  repliesTimer = setTimeout(async () => {
    const c = convs.get(selected);
    if (!c?.room) return;
    const my = ++repliesSeq;
    const q = ui.replySearch.value.trim();
    try {
      const r = await client.request("replies.list", q ? { room: c.room, q } : { room: c.room });
      if (my !== repliesSeq) return;
      const list = r.replies || [];
      repliesShown = list;
      renderReplies();
    } catch (e) {
      if (my !== repliesSeq) return;
      ui.replies.replaceChildren(h("li.muted", { testid: "replies-unavailable", text: t("replies.unavailable") }));
    }
  }, 150);
}

let repliesShown = [];
function renderReplies() {
  const c = convs.get(selected);
  ui.replies.replaceChildren(...(repliesShown.length
    ? repliesShown.map((raw) => {
        const rp = localReply(raw, c);
        return h("li", {}, h("button.reply", { type: "button", testid: "reply-item", dataset: { id: rp.id, lang: getLang() }, title: `${t("replies.place")}: ${rp.text}`, on: { click: () => placeReply(rp) } },
          h(`span.badge.${rp.source === "faq" ? "bot" : "assigned"}`, { text: tOr(`replies.${rp.source}`, rp.source || "") }),
          h("b", { text: rp.title }),
          h("span.muted.rtext", { text: rp.text })));
      })
    : [h("li.muted", { text: t("replies.empty") })]));
}

/**
 * A canned reply in the console's language. The server's team and generated replies are
 * Chinese; their English wording is here, keyed by the reply id's kind, with the same
 * placeholders (filled from the live room when sent). FAQ answers are the room's own content
 * and stay as written.
 */
function localReply(rp, c) {
  const id = rp.id || "";
  const team = `reply.${id}`;
  if (getLang() === "zh") return { ...rp, title: tOr(`${team}.title`, rp.title) };
  if (rp.source === "team") return { ...rp, title: tOr(`${team}.title`, rp.title), text: tOr(`${team}.text`, rp.text) };
  const rs = rooms.get(c?.room);
  if (id.startsWith("promo-")) {
    const pid = id.slice(6);
    const p = (rs?.state?.promotions || []).find((x) => x.id === pid);
    if (p?.kind === "first_n_gift") return { ...rp, title: t("reply.gift.title", { id: pid }), text: t("reply.gift.text", { text: p.text || pid, left: `{promo.${pid}.left}` }) };
    if (p?.kind === "coupon") return { ...rp, title: t("reply.coupon.title", { id: pid }), text: t("reply.coupon.text", { text: p.text || pid, code: `{promo.${pid}.code}` }) };
  }
  if (id.startsWith("stock-")) {
    const sku = id.slice(6);
    const name = rs?.product(sku)?.name || sku;
    return { ...rp, title: t("reply.stock.title", { name }), text: t("reply.stock.text", { name, stock: `{product.${sku}.stock}`, price: `{product.${sku}.price}` }) };
  }
  return rp;
}

/**
 * A canned reply goes into the composer to be edited, never straight to the viewer. Its
 * placeholders ({promo.P1.left}) stay visible and are filled from the live room when the
 * agent sends (message.send template: true), so the number is the one of that moment.
 */
let composerTemplate = false;
function placeReply(rp) {
  const c = convs.get(selected);
  if (!c || c.state !== "assigned") return;
  const el = ui.input;
  const start = el.selectionStart ?? el.value.length;
  const end = el.selectionEnd ?? el.value.length;
  el.value = el.value.slice(0, start) + rp.text + el.value.slice(end);
  composerTemplate = true;
  el.focus();
  el.selectionStart = el.selectionEnd = start + rp.text.length;
}

/**
 * message.send to ``c``; resolves the message, or null when it did not go out (the reason
 * is shown in words). A send caught by a restarted connection (resume_failed) is retried
 * once, with the same client_msg_id, when the server still has the conversation for us.
 */
async function sendMessage(c, fields) {
  const client_msg_id = newCmid();
  for (let tries = 0; ; tries++) {
    try {
      const m = await client.request("message.send", { conversation: c.id, ...fields, client_msg_id });
      if (addMsg(c, m)) renderAll();
      return m;
    } catch (e) {
      if (e.code === "resume_failed" && tries === 0) {
        await reconciling;
        if (c.state === "assigned") continue;
        renderAll();
        toast(t("agent.unsent", { why: c.state === "lost" ? lostText(c) : t("agent.unsent.closed") }), 5000);
        return null;
      }
      await convFailed(c, e, { unsent: true });
      return null;
    }
  }
}

function newCmid() {
  return `${client.user}-${Date.now().toString(36)}-${(msgCounter++).toString(36)}`;
}

function renderAll() {
  renderLists();
  renderChat();
  renderContext();
  updateBadge();
}

function select(id) {
  const changed = selected !== id;
  selected = id;
  if (changed) photos.reset();
  renderAll();
  if (changed) loadReplies();
  const c = convs.get(id);
  if (changed && c && c.state === "assigned" && !(c.context && "browsing" in c.context)) fetchContext(id);
  ui.input.focus();
}

function watchRoom(room) {
  if (!room || rooms.has(room)) return;
  const rs = new RoomState(client, room, { refreshOnHosts: true });
  rooms.set(room, rs);
  rs.onChange(() => {
    if (convs.get(selected)?.room === room) {
      renderContext(); // no-op unless this is the first room state (product names)
      renderLive();
    }
    callView.render();
  });
  if (client.state === "online") rs.watch();
}

// --- calls --------------------------------------------------------------------------------
const calls = new CallManager(client, { onChange: () => renderCall(), log: console.warn });
// the host to invite: picked from the room's connected hosts (room.state hosts_online), never typed
let inviteUser = param("host") || null;
function hostsFor(call) {
  const conv = convs.get(call?.conversation);
  return rooms.get(conv?.room)?.state?.hosts_online || [];
}
/** A still of the viewer's picture: uploaded as taken from the call, then posted in the chat. */
async function sendStill(file, takenAt) {
  const c = convs.get(calls.call?.conversation || selected);
  if (!c) return;
  try {
    const r = await evidence.upload(c.id, file, { source: "call", takenAt });
    const m = await sendMessage(c, { text: "", attachments: [r.attachment] });
    if (m) toast(te("still.taken"), 3000);
  } catch (e) {
    toast(attachmentErrorText(e), 5000);
  }
}

const callView = new CallView($('[data-testid="call-view"]'), calls, {
  onStill: sendStill,
  extraControls(el, call) {
    if (el.dataset.built !== call.id) {
      el.dataset.built = call.id || "";
      const sel = h("select.hostsel", { testid: "invite-host-select", on: { change: (e) => (inviteUser = e.target.value) } });
      const btn = h("button", { type: "button", testid: "invite-host", on: { click: invite } });
      el.replaceChildren(sel, btn);
    }
    const [sel, btn] = el.children;
    const hosts = hostsFor(call).filter((x) => !(call.participants || []).some((p) => p.user === x.user));
    if (sel.title !== t("call.host.pick")) {
      sel.setAttribute("aria-label", t("call.host.pick"));
      sel.title = t("call.host.pick");
    }
    const sig = hosts.map((x) => `${x.user}:${x.name}`).join(",") + getLang();
    if (sel.dataset.sig !== sig) {
      sel.dataset.sig = sig;
      sel.replaceChildren(...(hosts.length
        ? hosts.map((x) => h("option", { value: x.user, text: x.name && x.name !== x.user ? `${x.name} (${x.user})` : x.user }))
        : [h("option", { value: "", text: t("call.host.none") })]));
    }
    if (!hosts.some((x) => x.user === inviteUser)) inviteUser = hosts[0]?.user || null;
    sel.value = inviteUser || "";
    sel.disabled = !hosts.length;
    // written only when the words change (each call change renders this: a rebuilt button
    // is a style, layout and paint of the call bar, several times during a call's set-up)
    if (btn.dataset.label !== t("call.invitehost")) {
      btn.dataset.label = t("call.invitehost");
      btn.replaceChildren(icon("plus"), " " + t("call.invitehost"));
      btn.setAttribute("aria-label", t("call.invitehost"));
    }
    btn.disabled = call.state === "ringing" || !call.id || !inviteUser;
  },
});

async function invite() {
  if (!inviteUser) return;
  const host = hostsFor(calls.call).find((x) => x.user === inviteUser);
  try {
    await calls.invite(inviteUser);
    toast(t("call.invite.sent", { name: host?.name || inviteUser }));
  } catch (e) {
    toastError(e);
  }
}

const dock = ui.callCol;
const dockSep = $('[data-testid="call-resize"]');
keyboardResizer(dock, dockSep);
function renderCall() {
  renderIncoming(ui.banner, calls);
  callView.render();
  dock.classList.toggle("hidden", !calls.call);
  dock.classList.toggle("voice", !!calls.call && !calls.call.video);
  dockSep.classList.toggle("hidden", !calls.call || !calls.call.video);  // a voice bar has no height to set
  // the separator's aria values follow the strip's size by themselves (dock_resize.js)
  document.body.classList.toggle("in-call", !!calls.call);
  alerts.ringing(calls.incoming ? { key: calls.incoming.call, title: t("notify.ring", { name: calls.incoming.from?.name || calls.incoming.from?.user || "" }), body: ui.banner.textContent } : null);
  updateBadge();
  if (calls.call && calls.call.conversation && calls.call.conversation !== selected && convs.has(calls.call.conversation)) select(calls.call.conversation);
  else if (convs.has(selected)) renderChatControls(convs.get(selected));
}

async function agentCall(video) {
  const c = convs.get(selected);
  if (!c) return;
  try {
    await calls.request(c.id, video);
  } catch (e) {
    await convFailed(c, e);
  }
}

// --- wiring --------------------------------------------------------------------------------
client.on("conversation.assigned", (f) => {
  const c = upsertConv(f.conversation, { room: f.room || f.context?.room, state: "assigned", agent: f.agent, viewer: f.context?.viewer, context: f.context });
  for (const m of f.context?.messages || []) addMsg(c, m);
  if (f.agent?.user !== client.user) return renderAll();
  if (!selected || convs.get(selected)?.state !== "assigned") select(c.id);
  else {
    c.unread++;
    renderAll();
  }
  if (!document.hasFocus()) attention++;
  toast(t("agent.new", { name: viewerName(c) }));
  alerts.notify({ title: t("notify.assigned", { name: viewerName(c) }), body: reasonLabel(f.context?.reason), tag: `conv-${c.id}` });
  updateBadge();
});
client.on("conversation.state", (f) => {
  const c = convs.get(f.conversation);
  if (!c) return;
  c.state = f.agent && f.agent.user !== client.user && f.state === "assigned" ? "transferred" : f.state;
  if (f.state === "queued" && f.reason === "transferred") c.state = "resolved";
  renderAll();
});
client.on("message", (m) => {
  const c = convs.get(m.conversation);
  if (!c) return;
  if (addMsg(c, m)) {
    if (m.conversation !== selected) c.unread++;
    else if (!document.hasFocus() && m.from?.user !== client.user) attention++;
    renderAll();
    updateBadge();
  }
});
client.on("queue.update", (f) => {
  queue = f.queue || [];
  if (f.agents) agents = f.agents;
  renderLists();
});
client.on("agent.state", (f) => {
  if (f.user === client.user) {
    ui.status.value = f.status;
    Object.assign(me, { status: f.status, since: f.since, load: f.load, capacity: f.capacity });
    if (typeof f.max_compensation === "number") me.maxCompensation = f.max_compensation;
    renderMe();
    renderActionsPanel();
  }
  const a = agents.find((x) => x.user === f.user);
  if (a) Object.assign(a, f);
  renderLists();
});
client.on("context", (f) => {
  if (f.id !== undefined) return; // a context.get reply: handled by fetchContext
  const c = convs.get(f.conversation);
  if (!c) return;
  setContext(c, f);
  if (f.conversation === selected) renderContext();
});
client.on("action.result", (f) => {
  if (f.id === undefined) applyResult(f); // the copy after a supervisor's decision
});
client.on("approval.decided", (f) => {
  const c = convs.get(f.conversation);
  const a = c?.actions.find((x) => x.approval === f.approval);
  if (!a) return;
  a.status = f.status;
  if (f.note) a.note = f.note;
  if (f.conversation === selected) renderActionList();
});
client.on("agent.break_suggested", (f) => {
  if (f.agent !== client.user) return;
  me.breakSuggested = f;
  renderMe();
});
// resume_failed: the session is new (the server restarted, or kept us away too long), so
// what the console shows must be checked against what the server has; "welcome" follows
client.on("fresh", () => (lostBecause = "restart"));
// a resumed session keeps its conversations, but the gateway may have shown us offline while
// the socket was away (agent_offline_after_s): say again what we chose
client.on("resumed", () => {
  const status = localStorage.getItem("ld.agent.status") || "available";
  client.request("agent.status", { status }).catch((e) => console.warn("agent.status", e.message));
});
client.on("welcome", async () => {
  $('[data-testid="agent-me"]').textContent = client.welcome?.name || client.user;
  if (typeof client.welcome?.max_compensation === "number") me.maxCompensation = client.welcome.max_compensation;
  const status = localStorage.getItem("ld.agent.status") || "available";
  ui.status.value = status;
  client.request("agent.status", { status }).catch((e) => toastError(e));
  for (const rs of rooms.values()) rs.watch();
  // set before any await: requests the restart rejected wait for it (sendMessage)
  reconciling = refreshAll(lostBecause);
  lostBecause = null;
  await reconciling;
  loadReplies();
});
ui.status.addEventListener("change", () => setStatus(ui.status.value));
ui.compForm.addEventListener("submit", compensate);
ui.compAmount.addEventListener("input", updateCompHint);
ui.returnForm.addEventListener("submit", startReturn);
$('[data-testid="ctx-refresh"]').addEventListener("click", () => selected && fetchContext(selected));
ui.form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const c = convs.get(selected);
  const text = ui.input.value.trim();
  if (!c || (!text && !photos.count)) return;
  // photos: the message goes once they are uploaded; failed ones stay as chips
  const ready = photos.count ? await photos.ready() : [];
  if (!text && !ready.length) return;
  if (ready.length) photos.taken(ready);
  ui.input.value = "";
  signals.sent(c.id);
  const template = composerTemplate && /\{(promo|product|room)\.[^}]+\}/.test(text);
  composerTemplate = false;
  const atts = ready.length ? { attachments: ready.map((it) => it.attachment.attachment) } : {};
  const m = await sendMessage(c, template ? { text, template: true, ...atts } : { text, ...atts });
  // not sent: the text goes back where it was typed, unless something new was typed since
  if (!m && !ui.input.value && selected === c.id) ui.input.value = text;
});
ui.input.addEventListener("input", () => signals.inputChanged(selected, ui.input.value));
window.addEventListener("focus", () => selected && renderChat());
ui.input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    ui.form.requestSubmit();
  }
});
ui.replySearch.addEventListener("input", loadReplies);
$('[data-testid="resolve"]').addEventListener("click", async () => {
  const c = convs.get(selected);
  try {
    await client.request("conversation.resolve", { conversation: selected });
  } catch (e) {
    await convFailed(c, e);
  }
});
$('[data-testid="transfer"]').addEventListener("click", async () => {
  closeMenu();
  const c = convs.get(selected);
  try {
    await client.request("conversation.transfer", { conversation: selected });
  } catch (e) {
    await convFailed(c, e);
  }
});
$('[data-testid="agent-video-call"]').addEventListener("click", () => agentCall(true));
$('[data-testid="agent-voice-call"]').addEventListener("click", () => agentCall(false));

// --- alerts, title badge ----------------------------------------------------------------------
const alerts = new Alerts({ onClick: () => window.focus() });
let attention = 0; // assignments and lines that arrived while the window had no focus
const alertsBtn = $('[data-testid="alerts-enable"]');
function renderAlertsBtn() {
  const p = alerts.permission;
  alertsBtn.classList.toggle("hidden", p === "granted" || p === "unsupported");
  alertsBtn.title = p === "denied" ? t("alerts.denied") : t("alerts.enable");
}
alertsBtn.addEventListener("click", async () => {
  if ((await alerts.ask()) === "denied") toast(t("alerts.denied"), 5000);
  renderAlertsBtn();
});
alerts.askOnFirstGesture(renderAlertsBtn);
window.addEventListener("focus", () => {
  attention = 0;
  updateBadge();
});

/** "(3) LiveDesk · 客服工作台": unread lines, unseen assignments and a ringing call. */
function updateBadge() {
  const unread = [...convs.values()].reduce((n, c) => n + (isOpen(c) ? c.unread || 0 : 0), 0);
  const n = unread + attention + (calls.incoming ? 1 : 0);
  const base = `LiveDesk · ${t("agent.title")}`;
  const title = n ? `(${n}) ${base}` : base;
  // only a change is written: each write of the title goes to the browser process, and a
  // call's set-up calls this a dozen times
  if (document.title !== title) document.title = title;
  if (document.body.dataset.badge !== String(n)) document.body.dataset.badge = String(n);
}

// --- header menu, context drawer, keyboard shortcuts, help overlay ---------------------------
const moreBtn = $('[data-testid="more-actions"]');
const menu = $('[data-testid="more-menu"]');
function closeMenu() {
  menu.classList.add("hidden");
  moreBtn.setAttribute("aria-expanded", "false");
}
moreBtn.addEventListener("click", (ev) => {
  ev.stopPropagation();
  const open = menu.classList.contains("hidden");
  menu.classList.toggle("hidden", !open);
  moreBtn.setAttribute("aria-expanded", String(open));
  if (open) menu.querySelector("button:not(:disabled)")?.focus();
});
document.addEventListener("click", (ev) => {
  if (!menu.contains(ev.target)) closeMenu();
});

const ctxToggle = $('[data-testid="ctx-toggle"]');
function setDrawer(open) {
  document.body.classList.toggle("ctx-open", open);
  ctxToggle.setAttribute("aria-expanded", String(open));
  if (open) $('[data-testid="ctx-close"]').focus();
}
ctxToggle.addEventListener("click", () => setDrawer(!document.body.classList.contains("ctx-open")));
$('[data-testid="ctx-close"]').addEventListener("click", () => {
  setDrawer(false);
  ctxToggle.focus();
});
$('[data-testid="ctx-scrim"]').addEventListener("click", () => setDrawer(false));

// [key, i18n of what it does, action]; single keys act only outside text fields
const SHORTCUTS = [
  ["j", "help.next", () => step(1)],
  ["k", "help.prev", () => step(-1)],
  ["r", "help.compose", () => ui.input.focus()],
  ["/", "help.search", () => ui.replySearch.focus()],
  ["a", "help.accept", () => calls.incoming && calls.accept().catch((e) => toastError(e))],
  ["d", "help.decline", () => calls.incoming && calls.decline()],
  ["e", "help.resolve", () => $('[data-testid="resolve"]').disabled || $('[data-testid="resolve"]').click()],
  ["c", "help.context", () => setDrawer(!document.body.classList.contains("ctx-open"))],
  ["?", "help.help", () => setHelp(true)],
  ["Esc", "help.esc", null],
];
const helpEl = $('[data-testid="help-overlay"]');
let helpReturn = null;
function setHelp(open) {
  if (open) {
    helpReturn = document.activeElement;
    helpEl.querySelector("tbody").replaceChildren(...SHORTCUTS.map(([k, what]) =>
      h("tr", { testid: "help-key", dataset: { key: k } }, h("td", {}, h("kbd", { text: k })), h("td", { text: t(what) }))));
  }
  helpEl.classList.toggle("hidden", !open);
  if (open) $('[data-testid="help-close"]').focus();
  else helpReturn?.focus?.();
}
$('[data-testid="help-open"]').addEventListener("click", () => setHelp(true));
$('[data-testid="help-close"]').addEventListener("click", () => setHelp(false));
helpEl.addEventListener("click", (ev) => ev.target === helpEl && setHelp(false));

function step(dir) {
  const list = [...ui.convList.querySelectorAll('[data-testid="conv-item"]')].map((el) => el.dataset.conversation);
  if (!list.length) return;
  const i = list.indexOf(selected);
  const next = list[(i + dir + list.length) % list.length];
  select(next);
  ui.convList.querySelector(`[data-conversation="${CSS.escape(next)}"]`)?.focus();
}

document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") {
    if (!helpEl.classList.contains("hidden")) setHelp(false);
    else if (!menu.classList.contains("hidden")) {
      closeMenu();
      moreBtn.focus();
    } else if (document.body.classList.contains("ctx-open")) setDrawer(false);
    else if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.isComposing) return;
  const tag = document.activeElement?.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || document.activeElement?.isContentEditable) return;
  const sc = SHORTCUTS.find(([k]) => k === ev.key);
  if (!sc || !sc[2]) return;
  ev.preventDefault();
  sc[2]();
});

bindConnBadge(client, $('[data-testid="conn-state"]'));
bindLangSwitch($('[data-testid="lang-switch"]'), () => {
  renderAll();
  renderCall();
  renderMe();
  renderReplies();
  renderAlertsBtn();
  updateBadge();
  if (!helpEl.classList.contains("hidden")) setHelp(true);
});
hydrateIcons();
applyI18n();
renderAll();
renderAlertsBtn();
updateBadge();
bindStaffAuth(client, ident);
client.connect();

window.__ld = { client, signals, convs, calls, rooms, me, alerts, evidence, photos, applySnapshot, renderAll, select, get selected() { return selected; } };
