// The operator dashboard: figures per room and per agent, live over dashboard.watch.
import { Client, staffTokenSource, gatewayUrls } from "./client.js";
import { $, h, bindConnBadge, bindLangSwitch, bindStaffAuth, fmtTime, money, toast } from "./common.js";
import { tw, applyWorkspaceI18n } from "./i18n_workspace.js";
import { RadarView, downloadReport, flagNodes, product, reasonNodes, spanOf, trNodes } from "./radar_view.js";
import { tr } from "./i18n_radar.js";

const ident = staffTokenSource(["admin", "supervisor"], { defaultUser: "admin-dashboard", name: "Dashboard" });
const client = new Client({ urls: gatewayUrls(), getToken: ident.getToken });
let last = null;

const fmtS = (s) => (s === null || s === undefined ? "–" : s < 60 ? `${s.toFixed(1)}s` : `${(s / 60).toFixed(1)}m`);
const fmtCsat = (avg, n) => (avg === null || avg === undefined ? "–" : `${avg.toFixed(2)} (${n})`);
const fmtComp = (c) => Object.entries(c || {}).map(([k, v]) => `${tw("kind." + k)} ${money(v)}`).join(" · ") || "–";

function card(key, value, testid) {
  return h("div.ws-card", { testid }, h("div.v", { text: String(value) }), h("div.k", { text: tw(key) }));
}

function render(d) {
  last = d;
  const t = d.totals;
  const c = t.conversations;
  const agents = Object.entries(t.agents || {}).map(([s, n]) => `${tw("status." + s)} ${n}`).join(" · ") || "–";
  $('[data-testid="dash-totals"]').replaceChildren(
    card("k.open", c.open, "total-open"),
    card("k.queue", t.queue, "total-queue"),
    card("k.frt", fmtS(t.frt_p50_s), "total-frt"),
    card("k.csat", fmtCsat(t.csat_avg, t.csat_count), "total-csat"),
    card("k.conversions", t.conversions, "total-conversions"),
    card("k.bot", c.resolved_by_bot, "total-bot"),
    card("k.agent", c.resolved_by_agent, "total-agent"),
    card("k.abandoned", c.abandoned, "total-abandoned"),
    card("k.compensation", fmtComp(t.compensation), "total-compensation"),
    card("k.approvals", t.pending_approvals, "total-approvals"),
    card("k.agents", agents, "total-agents"),
  );
  const head = (...keys) => h("tr", {}, ...keys.map((k) => h("th", { text: tw(k) })));
  $('[data-testid="dash-rooms"]').replaceChildren(
    head("room", "k.open", "k.queue", "k.frt", "k.csat", "k.conversions", "k.bot", "k.agent", "k.abandoned", "k.compensation"),
    ...d.rooms.map((r) =>
      h("tr", { testid: `room-${r.room}` },
        h("td", { text: `${r.title || r.room}` }),
        h("td", { text: r.conversations.open }),
        h("td", { text: r.queue }),
        h("td", { text: fmtS(r.frt_p50_s) }),
        h("td", { testid: "room-csat", text: fmtCsat(r.csat_avg, r.csat_count) }),
        h("td", { text: r.conversions }),
        h("td", { text: r.conversations.resolved_by_bot }),
        h("td", { text: r.conversations.resolved_by_agent }),
        h("td", { text: r.conversations.abandoned }),
        h("td", { text: fmtComp(r.compensation) }))),
  );
  $('[data-testid="dash-agents"]').replaceChildren(
    head("agent", "status", "load", "k.frt", "k.csat", "k.conversions", "k.agent", "k.compensation", "run", "paused"),
    ...d.agents.map((a) =>
      h("tr", { testid: `agent-${a.user}` },
        h("td", { text: a.name || a.user }),
        h("td", { text: tw("status." + a.status) }),
        h("td", { text: `${a.load}/${a.capacity}` }),
        h("td", { text: fmtS(a.frt_p50_s) }),
        h("td", { testid: "agent-csat", text: fmtCsat(a.csat_avg, a.csat_count) }),
        h("td", { text: a.conversions }),
        h("td", { text: a.conversations.resolved_by_agent }),
        h("td", { text: fmtComp(a.compensation) }),
        h("td", { text: a.consecutive_negative }),
        h("td", { class: a.paused ? "ws-paused" : "", text: a.paused ? tw("yes") : tw("no") }))),
  );
  const upd = $('[data-testid="dash-updated"]');
  upd.textContent = `${tw("updated")} ${fmtTime(d.ts)}`;
  document.body.dataset.csatCount = String(t.csat_count);
  renderRadars(d.rooms);
}

// --- question radar per room, and the event list (surge on/off, warnings, flags) -----------
const radars = new Map(); // room → {view, box, title, report, name}
const events = []; // newest first: {ts, key, vars (nodes), kind, room}
const MAX_EVENTS = 100;
const flagsSeen = new Map(); // room → Map(sku|kind → flag): raised/cleared events from the pushes

function renderRadars(rooms) {
  for (const { room, title: roomTitle } of rooms) {
    if (radars.has(room)) {
      radars.get(room).name = roomTitle || room;
      continue;
    }
    const body = h("div.dash-radar-body");
    const report = h("button.small", { type: "button", testid: "radar-report", dataset: { room }, text: tr("radar.report"),
      on: { click: () => downloadReport(room, ident.getToken).then((f) => toast(tr("radar.report.done", { file: f }))).catch((e) => toast(tr("radar.error", { msg: e.message }))) } });
    const title = h("h3", { testid: "dash-radar-title" }, ...trNodes("radar.room", { room: product(roomTitle || room) }));
    const box = h("article.dash-radar-room", { testid: `radar-room-${room}`, dataset: { room } },
      h("div.rd-head", {}, title, report), body);
    $('[data-testid="dash-radar-rooms"]').append(box);
    const view = new RadarView(body, { client, room, getToken: ident.getToken, compact: true });
    radars.set(room, { view, box, title, report, name: roomTitle || room });
    watchRadar(room, view);
  }
}

async function watchRadar(room, view) {
  try {
    const f = await client.request("radar.watch", { room });
    if (f?.type === "room.radar") {
      noteFlags(f);
      if (view.window === 300) view.set(f);
    }
  } catch (e) {
    console.warn("radar.watch", room, e?.message || e);
  }
}

function addEvent(kind, key, vars, room) {
  events.unshift({ ts: Date.now() / 1000, kind, key, vars, room });
  events.length = Math.min(events.length, MAX_EVENTS);
  renderEvents();
}

function eventNodes(e) {
  return trNodes(e.key, { ...e.vars(), room: product(radars.get(e.room)?.name || e.room) });
}

function renderEvents() {
  const list = $('[data-testid="dash-events"]');
  if (!events.length) {
    list.replaceChildren(h("li.muted", { testid: "dash-event-none", text: tr("radar.events.none") }));
    return;
  }
  list.replaceChildren(...events.map((e) => h("li", { testid: "dash-event", dataset: { kind: e.kind, room: e.room } },
    h("time.muted", { text: `${fmtTime(e.ts)} ` }), ...eventNodes(e))));
}

/** Raised and cleared flags, from the difference between a room's successive radar objects. */
function noteFlags(f) {
  const before = flagsSeen.get(f.room);
  const now = new Map((f.flags || []).map((x) => [`${x.sku}|${x.kind}`, x]));
  flagsSeen.set(f.room, now);
  if (!before) return; // the first look: what is raised already is on the radar itself
  for (const [k, x] of now) {
    if (!before.has(k)) addEvent("flag_raised", "radar.ev.flag_raised", () => ({ flag: h("span", {}, ...flagNodes(x)) }), f.room);
  }
  for (const [k, x] of before) {
    if (!now.has(k)) {
      addEvent("flag_cleared", "radar.ev.flag_cleared", () => ({
        product: product(x.product || x.sku), kind: tr(`radar.flag.kind.${x.kind}`),
      }), f.room);
    }
  }
}

client.on("room.radar", noteFlags);
client.on("surge.state", (f) => addEvent(f.on ? "surge_on" : "surge_off", f.on ? "radar.ev.surge_on" : "radar.ev.surge_off",
  () => ({ reason: h("span", {}, ...reasonNodes(f.reason)) }), f.room));
client.on("surge.warning", (f) => addEvent("surge_warning", "radar.ev.surge_warning",
  () => ({ promotion: product(f.promotion), in: spanOf(Math.max(60, Math.round(f.in_s / 60) * 60)) }), f.room));

client.on("dashboard", render);
client.on("welcome", () => {
  client.request("dashboard.watch").catch(() => {});
  for (const [room, r] of radars) watchRadar(room, r.view); // a new socket: watch again
});
bindConnBadge(client, $('[data-testid="conn-state"]'));
function applyRadarI18n() {
  for (const el of document.querySelectorAll("[data-tr]")) el.textContent = tr(el.dataset.tr);
  for (const r of radars.values()) {
    r.report.textContent = tr("radar.report");
    r.title.replaceChildren(...trNodes("radar.room", { room: product(r.name) }));
  }
  renderEvents();
}
bindLangSwitch($('[data-testid="lang-switch"]'), () => {
  applyWorkspaceI18n();
  applyRadarI18n();
  if (last) render(last);
});
applyWorkspaceI18n();
applyRadarI18n();
bindStaffAuth(client, ident);
client.connect();
