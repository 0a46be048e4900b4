// The supervisor console: compensation approvals, every agent's status and
// wellbeing, and the audit trail.
import { Client, staffTokenSource, gatewayUrls } from "./client.js";
import { $, h, bindConnBadge, bindLangSwitch, toast, bindStaffAuth } from "./common.js";
import { tw, applyWorkspaceI18n } from "./i18n_workspace.js";

const ident = staffTokenSource(["admin", "supervisor"], { defaultUser: "admin-supervisor", name: "Supervisor" });
const client = new Client({ urls: gatewayUrls(), getToken: ident.getToken });

const approvals = new Map(); // id → approval.request
let agents = [];
let audit = [];

const since = (s) => (s < 60 ? `${Math.round(s)}s` : s < 3600 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`);

function renderApprovals() {
  const box = $('[data-testid="approvals"]');
  if (!approvals.size) {
    box.replaceChildren(h("div.ws-empty", { testid: "no-approvals", text: tw("no.approvals") }));
    return;
  }
  box.replaceChildren(...[...approvals.values()].map((a) =>
    h("div.ws-approval", { testid: `approval-${a.approval}`, dataset: { approval: a.approval } },
      h("div.amt", { text: `¥${a.amount}` }),
      h("div.grow", {},
        h("div", { text: `${tw("kind." + a.kind)} · ${a.agent.name || a.agent.user} → ${a.viewer?.name || a.viewer?.user || ""}` }),
        h("div.muted", { text: `${a.reason} · limit ¥${a.limit} · ${a.room || ""}` })),
      h("button.green", { testid: "approve", text: tw("approve"), on: { click: () => decide(a.approval, true) } }),
      h("button.danger", { testid: "deny", text: tw("deny"), on: { click: () => decide(a.approval, false) } }))));
}

async function decide(id, approve) {
  try {
    const r = await client.request("approval.decide", { approval: id, approve });
    approvals.delete(id);
    renderApprovals();
    toast(`${id}: ${tw("decided." + r.status)}`);
    loadAudit();
  } catch (e) {
    toast(e.message);
  }
}

function renderAgents() {
  const now = Date.now() / 1000;
  const head = h("tr", {}, ...["agent", "status", "since", "load", "run", "paused"].map((k) => h("th", { text: tw(k) })));
  $('[data-testid="supervisor-agents"]').replaceChildren(head, ...agents.map((a) =>
    h("tr", { testid: `sup-agent-${a.user}` },
      h("td", { text: a.name || a.user }),
      h("td", { text: tw("status." + a.status) }),
      h("td", { text: since(now - a.since) }),
      h("td", { text: `${a.load}/${a.capacity}` }),
      h("td", { text: a.consecutive_negative }),
      h("td", { class: a.paused ? "ws-paused" : "", text: a.paused ? tw("yes") : tw("no") }))));
}

function renderAudit() {
  const cols = ["ts", "action", "actor", "conversation", "kind", "amount", "order_id", "outcome", "reason"];
  $('[data-testid="audit"]').replaceChildren(
    h("tr", {}, ...cols.map((c) => h("th", { text: c }))),
    ...audit.slice().reverse().slice(0, 100).map((e) =>
      h("tr", {}, ...cols.map((c) => h("td", {
        text: c === "ts" ? new Date(e.ts * 1000).toLocaleTimeString() : e[c] ?? "",
      })))));
}

async function loadAudit() {
  try {
    audit = (await client.request("audit.list")).entries;
    renderAudit();
  } catch {}
}

async function load() {
  try {
    const [ap, ag] = await Promise.all([client.request("approval.list"), client.request("supervisor.agents")]);
    approvals.clear();
    for (const a of ap.approvals) approvals.set(a.approval, a);
    agents = ag.agents;
    renderApprovals();
    renderAgents();
    loadAudit();
  } catch (e) {
    toast(e.message);
  }
}

client.on("approval.request", (a) => {
  approvals.set(a.approval, a);
  renderApprovals();
  loadAudit();
});
client.on("approval.decided", (d) => {
  approvals.delete(d.approval);
  renderApprovals();
  loadAudit();
});
client.on("agents", (f) => {
  if (f.id === undefined) {
    agents = f.agents;
    renderAgents();
  }
});
client.on("agent.break_suggested", (b) => toast(tw("break.suggested", { agent: b.agent, n: b.consecutive }), 5000));
client.on("welcome", load);
setInterval(renderAgents, 5000); // time in status keeps moving
bindConnBadge(client, $('[data-testid="conn-state"]'));
bindLangSwitch($('[data-testid="lang-switch"]'), () => {
  applyWorkspaceI18n();
  renderApprovals();
  renderAgents();
});
applyWorkspaceI18n();
bindStaffAuth(client, ident);
client.connect();
