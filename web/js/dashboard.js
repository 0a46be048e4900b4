// The operator dashboard: figures per room and per agent, live over dashboard.watch.
import { Client, staffTokenSource, gatewayUrls } from "./client.js";
import { $, h, bindConnBadge, bindLangSwitch, bindStaffAuth, fmtTime, money } from "./common.js";
import { tw, applyWorkspaceI18n } from "./i18n_workspace.js";

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
}

client.on("dashboard", render);
client.on("welcome", () => client.request("dashboard.watch").catch(() => {}));
bindConnBadge(client, $('[data-testid="conn-state"]'));
bindLangSwitch($('[data-testid="lang-switch"]'), () => {
  applyWorkspaceI18n();
  if (last) render(last);
});
applyWorkspaceI18n();
bindStaffAuth(client, ident);
client.connect();
