// The agent console (1440×900): status, queue, conversations, chat with the bot part marked,
// context panel, one-click canned replies, incoming calls and the in-call view.
import { Client, devTokenSource, gatewayUrls } from "./client.js";
import { t, tOr, applyI18n, duration } from "./i18n.js";
import { $, h, icon, hydrateIcons, fmtTime, param, bindConnBadge, bindLangSwitch, toast, moodLabel, reasonLabel, RoomState } from "./common.js";
import { CallManager, CallView, renderIncoming } from "./call.js";

const ident = devTokenSource("agent", { name: param("name") || "" });
const client = new Client({ urls: gatewayUrls(), getToken: ident.getToken });

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
};

const convs = new Map(); // id → {id, room, state, viewer, agent, messages: Map, order, context, unread}
let selected = null;
let queue = [];
let agents = [];
let msgCounter = 0;
const rooms = new Map(); // room → RoomState

function upsertConv(id, patch = {}) {
  let c = convs.get(id);
  if (!c) {
    c = { id, room: null, state: null, viewer: null, agent: null, messages: new Map(), order: [], context: null, unread: 0, createdAt: Date.now() };
    convs.set(id, c);
  }
  Object.assign(c, Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)));
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

function loadSnapshot(snap) {
  const c = upsertConv(snap.conversation, {
    room: snap.room, state: snap.state, agent: snap.agent, viewer: snap.viewer || snap.context?.viewer,
    context: snap.context || undefined,
  });
  for (const m of snap.messages || snap.context?.messages || []) addMsg(c, m);
  return c;
}

async function refreshAll() {
  try {
    const r = await client.request("conversation.list");
    for (const s of r.conversations || []) {
      upsertConv(s.conversation, { room: s.room, state: s.state, viewer: s.viewer, agent: s.agent });
      try {
        loadSnapshot(await client.request("conversation.get", { conversation: s.conversation }));
      } catch (e) {
        console.warn(e);
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
  const list = [...convs.values()].sort((a, b) => (a.state === "resolved") - (b.state === "resolved") || b.createdAt - a.createdAt);
  const open = list.filter((c) => c.state !== "resolved");
  $('[data-testid="convs-title"]').textContent = t("agent.convs", { n: open.length });
  ui.convList.replaceChildren(
    ...(list.length
      ? list.map((c) => {
          const last = c.messages.get(c.order[c.order.length - 1]);
          return h(`li.item${c.id === selected ? ".sel" : ""}${c.state === "resolved" ? ".done" : ""}`,
            { testid: "conv-item", dataset: { conversation: c.id, state: c.state || "" }, on: { click: () => select(c.id) } },
            h("div.row", {}, h("b", { text: viewerName(c) }), h(`span.badge.${c.state}`, { text: tOr(`state.${c.state}`, c.state || "") }),
              c.unread ? h("span.unread", { testid: "unread", text: String(c.unread) }) : null),
            h("div.preview.muted", { text: last ? last.text : "" }));
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
      h("li.agent", { testid: "agent-item" }, h(`span.dot.${a.status}`), h("span", { text: a.name || a.user }),
        h("span.muted", { text: `${tOr(`status.${a.status}`, a.status)} · ${t("agent.agent.load", { load: a.load, cap: a.capacity })}` }))),
  );
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
    const who = isBot ? f.name || t("role.bot") : mine ? t("widget.you") : `${tOr(`role.${f.role}`, f.role)} ${f.name || f.user}`;
    els.push(h(`div.${cls}`, { testid: isBot && !m.kind ? "msg-bot" : mine ? "msg-mine" : `msg-${m.kind || f.role}`, dataset: { id: m.message_id, phase: i <= lastBot ? "bot" : "human" } },
      h("div.meta", { text: `${who} · ${fmtTime(m.ts)}` }),
      h("div.bubble", { text: m.text })));
    if (i === lastBot && i < msgs.length - 1) els.push(h("div.divider", { testid: "human-part-label" }, icon("headset"), t("agent.human.part")));
  });
  ui.log.replaceChildren(...els);
  ui.log.scrollTop = ui.log.scrollHeight;
  const open = c.state === "assigned";
  for (const sel of ["resolve", "transfer", "agent-video-call", "agent-voice-call"]) $(`[data-testid="${sel}"]`).disabled = !open || (sel.includes("call") && calls.inCall);
  ui.input.disabled = !open;
  $('[data-testid="chat-send"]').disabled = !open;
}

function section(title, testid, ...body) {
  return h("section.ctx-sec", { testid }, h("h4", { text: title }), ...body);
}

function renderContext() {
  const c = convs.get(selected);
  if (!c) {
    ui.ctx.replaceChildren(h("div.muted", { text: t("agent.pick") }));
    return;
  }
  const ctx = c.context || {};
  const v = ctx.viewer || c.viewer || {};
  const kv = (k, val, testid) => h("div.kv", { testid }, h("span.k.muted", { text: k }), h("span.v", { text: val ?? "—" }));
  const intents = [...new Set((ctx.intents || []).filter(Boolean))];
  const chatSoFar = (ctx.messages || []).filter((m) => !m.kind || m.kind === "announcement");
  const rs = rooms.get(c.room);
  const liveBits = [];
  if (rs?.state) {
    const sku = rs.state.on_screen;
    const p = sku ? rs.product(sku) : null;
    if (p) liveBits.push(kv(t("live.onscreen"), `${p.name} · ¥${p.price} · ${t("live.stock", { n: rs.stock(sku) })}`, "ctx-onscreen"));
    for (const g of rs.gifts()) liveBits.push(kv(t("host.promo.gift") + " " + (g.gift || g.id), `${g.left}/${g.limit}`, "ctx-gift"));
  }
  ui.ctx.replaceChildren(
    section(t("ctx.viewer"), "ctx-viewer", kv(t("ctx.viewer"), `${v.name || v.user || "?"}${v.user && v.name && v.name !== v.user ? ` (${v.user})` : ""}`), kv(t("ctx.room"), ctx.room || c.room)),
    section(t("ctx.mood"), "ctx-mood-sec",
      h("div", {}, h(`span.mood.${ctx.mood || "neutral"}`, { testid: "ctx-mood", text: moodLabel(ctx.mood) })),
      kv(t("ctx.reason"), reasonLabel(ctx.reason), "ctx-reason"),
      kv(t("ctx.intents"), intents.join(", ") || "—", "ctx-intents")),
    section(t("ctx.chat"), "ctx-chat",
      h("ol.ctx-chat", {}, ...chatSoFar.slice(-12).map((m) =>
        h(`li${m.bot || m.from?.role === "bot" ? ".bot" : ""}`, {}, icon(m.bot || m.from?.role === "bot" ? "bot" : "person"), " ", m.text)))),
    section(t("ctx.live"), "ctx-live", ...(liveBits.length ? liveBits : [h("div.muted", { text: "—" })])),
    section(t("ctx.timeline"), "ctx-timeline", ...(ctx.timeline?.length
      ? ctx.timeline.map((e) => h("div.kv", {}, h("span.k.muted", { text: e.ts ? fmtTime(e.ts) : "" }), h("span.v", { text: e.text || e.kind || JSON.stringify(e) })))
      : [h("div.muted.placeholder", { text: t("ctx.timeline.empty") })])),
    section(t("ctx.orders"), "ctx-orders", ...(ctx.orders?.length
      ? ctx.orders.map((o) => h("div.kv", {}, h("span.k", { text: o.order_id || o.id || "" }), h("span.v", { text: [o.sku, o.status, o.amount].filter(Boolean).join(" · ") })))
      : [h("div.muted.placeholder", { text: t("ctx.orders.empty") })])),
  );
}

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
      ui.replies.replaceChildren(...(list.length
        ? list.map((rp) =>
            h("li.reply", { testid: "reply-item", dataset: { id: rp.id }, title: rp.text, on: { click: () => sendReply(rp) } },
              h(`span.badge.${rp.source === "faq" ? "bot" : "assigned"}`, { text: tOr(`replies.${rp.source}`, rp.source || "") }),
              h("b", { text: rp.title }),
              h("span.muted.rtext", { text: rp.text })))
        : [h("li.muted", { text: t("replies.empty") })]));
    } catch (e) {
      if (my !== repliesSeq) return;
      ui.replies.replaceChildren(h("li.muted", { testid: "replies-unavailable", text: t("replies.unavailable") }));
    }
  }, 150);
}

async function sendReply(rp) {
  const c = convs.get(selected);
  if (!c || c.state !== "assigned") return;
  try {
    const m = await client.request("message.send", { conversation: c.id, text: rp.text, client_msg_id: newCmid(), template: true });
    if (addMsg(c, m)) renderAll();
  } catch (e) {
    toast(t("common.error", { msg: e.message }));
  }
}

function newCmid() {
  return `${client.user}-${Date.now().toString(36)}-${(msgCounter++).toString(36)}`;
}

function renderAll() {
  renderLists();
  renderChat();
  renderContext();
}

function select(id) {
  const changed = selected !== id;
  selected = id;
  renderAll();
  if (changed) loadReplies();
  ui.input.focus();
}

function watchRoom(room) {
  if (!room || rooms.has(room)) return;
  const rs = new RoomState(client, room, { refreshOnHosts: true });
  rooms.set(room, rs);
  rs.onChange(() => {
    if (convs.get(selected)?.room === room) renderContext();
    callView.render();
  });
  if (client.state === "online") rs.watch();
}

// --- calls --------------------------------------------------------------------------------
const calls = new CallManager(client, { onChange: () => renderCall(), log: console.warn });
let inviteUser = param("host") || "host-1";
const callView = new CallView($('[data-testid="call-view"]'), calls, {
  extraControls(el, call) {
    if (el.dataset.built !== call.id) {
      el.dataset.built = call.id || "";
      const input = h("input.hostpick", { testid: "invite-host-user", value: inviteUser, list: "hosts-online", size: 8, on: { input: (e) => (inviteUser = e.target.value.trim()) } });
      const sel = h("select.hostsel.hidden", { testid: "invite-host-select", on: { change: (e) => (inviteUser = e.target.value) } });
      const btn = h("button", { testid: "invite-host", on: { click: invite } });
      el.replaceChildren(sel, input, btn);
    }
    const [sel, input, btn] = el.children;
    btn.replaceChildren(icon("plus"), " " + t("call.invitehost"));
    btn.disabled = call.state === "ringing" || !call.id;
    const conv = convs.get(call.conversation);
    const hosts = rooms.get(conv?.room)?.state?.hosts_online;
    if (hosts && hosts.length) {
      sel.classList.remove("hidden");
      input.classList.add("hidden");
      const cur = [...sel.options].map((o) => o.value).join(",");
      if (cur !== hosts.map((x) => x.user).join(",")) {
        sel.replaceChildren(...hosts.map((x) => h("option", { value: x.user, text: x.name || x.user })));
        if (!hosts.some((x) => x.user === inviteUser)) inviteUser = hosts[0].user;
      }
      sel.value = inviteUser;
    } else {
      sel.classList.add("hidden");
      input.classList.remove("hidden");
    }
  },
});

async function invite() {
  try {
    await calls.invite(inviteUser);
    toast(t("call.invite.sent", { name: inviteUser }));
  } catch (e) {
    toast(t("common.error", { msg: e.message }));
  }
}

function renderCall() {
  renderIncoming(ui.banner, calls);
  callView.render();
  ui.callCol.classList.toggle("hidden", !calls.call);
  document.body.classList.toggle("in-call", !!calls.call);
  if (calls.call && calls.call.conversation && calls.call.conversation !== selected && convs.has(calls.call.conversation)) select(calls.call.conversation);
  else renderChat();
}

async function agentCall(video) {
  const c = convs.get(selected);
  if (!c) return;
  try {
    await calls.request(c.id, video);
  } catch (e) {
    toast(t("common.error", { msg: e.message }));
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
  toast(t("agent.new", { name: viewerName(c) }));
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
    renderAll();
  }
});
client.on("queue.update", (f) => {
  queue = f.queue || [];
  if (f.agents) agents = f.agents;
  renderLists();
});
client.on("agent.state", (f) => {
  if (f.user === client.user) ui.status.value = f.status;
  const a = agents.find((x) => x.user === f.user);
  if (a) Object.assign(a, f);
  renderLists();
});
client.on("welcome", async () => {
  $('[data-testid="agent-me"]').textContent = client.welcome?.name || client.user;
  const status = localStorage.getItem("ld.agent.status") || "available";
  ui.status.value = status;
  client.request("agent.status", { status }).catch((e) => toast(t("common.error", { msg: e.message })));
  for (const rs of rooms.values()) rs.watch();
  await refreshAll();
  loadReplies();
});
ui.status.addEventListener("change", async () => {
  localStorage.setItem("ld.agent.status", ui.status.value);
  try {
    await client.request("agent.status", { status: ui.status.value });
  } catch (e) {
    toast(t("common.error", { msg: e.message }));
  }
});
ui.form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const c = convs.get(selected);
  const text = ui.input.value.trim();
  if (!c || !text) return;
  ui.input.value = "";
  try {
    const m = await client.request("message.send", { conversation: c.id, text, client_msg_id: newCmid() });
    if (addMsg(c, m)) renderAll();
  } catch (e) {
    ui.input.value = text;
    toast(t("common.error", { msg: e.message }));
  }
});
ui.input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    ui.form.requestSubmit();
  }
});
ui.replySearch.addEventListener("input", loadReplies);
$('[data-testid="resolve"]').addEventListener("click", async () => {
  try {
    await client.request("conversation.resolve", { conversation: selected });
  } catch (e) {
    toast(t("common.error", { msg: e.message }));
  }
});
$('[data-testid="transfer"]').addEventListener("click", async () => {
  try {
    await client.request("conversation.transfer", { conversation: selected });
  } catch (e) {
    toast(t("common.error", { msg: e.message }));
  }
});
$('[data-testid="agent-video-call"]').addEventListener("click", () => agentCall(true));
$('[data-testid="agent-voice-call"]').addEventListener("click", () => agentCall(false));

bindConnBadge(client, $('[data-testid="conn-state"]'));
bindLangSwitch($('[data-testid="lang-switch"]'), () => {
  renderAll();
  renderCall();
});
hydrateIcons();
applyI18n();
renderAll();
client.connect();

window.__ld = { client, convs, calls, rooms, get selected() { return selected; } };
