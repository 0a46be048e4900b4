// The supervisor console: compensation approvals, every agent's status and
// wellbeing, the audit trail, and the accounts (admins: list with roles, rooms, disabled flag
// and lockout; add, disable/enable, change role, reset password — /api/admin/users).
import { Client, staffTokenSource, gatewayUrls } from "./client.js";
import { $, h, bindConnBadge, bindLangSwitch, toast, bindStaffAuth, fmtDateTime, money } from "./common.js";
import { tw, applyWorkspaceI18n } from "./i18n_workspace.js";
import { Evidence } from "./evidence.js";
import { te } from "./i18n_evidence.js";
import { AUDIT_COLUMNS, AUDIT_DATA, auditCell, auditLabel } from "./audit_words.js";

const ident = staffTokenSource(["admin", "supervisor"], { defaultUser: "admin-supervisor", name: "Supervisor" });
const client = new Client({ urls: gatewayUrls(), getToken: ident.getToken });

// the evidence an approval or an audited action is based on (photos, stills, recordings):
// thumbnails, the full view and playback, read with this page's token (evidence.js)
const evidence = new Evidence(ident.getToken);
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
      h("div.amt", { text: money(a.amount) }),
      h("div.grow", {},
        h("div", { text: `${tw("kind." + a.kind)} · ${a.agent.name || a.agent.user} → ${a.viewer?.name || a.viewer?.user || ""}` }),
        // the agent's reason and the room are user content; the limit is worded in the page's language
        h("div.muted", {},
          h("span", { text: a.reason || "", dataset: { userContent: "" } }),
          ` · ${tw("approval.limit", { amount: money(a.limit) })} · `,
          h("span", { text: a.room || "", dataset: { userContent: "" } })),
        a.attachments?.length
          ? h("div.ws-evidence", { testid: "approval-evidence" }, h("span.muted", { text: te("approval.evidence") }), evidence.thumbs(a.attachments))
          : null),
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
  const cols = [...AUDIT_COLUMNS, "attachments"];
  $('[data-testid="audit"]').replaceChildren(
    h("tr", {}, ...cols.map((c) => h("th", { scope: "col", text: c === "attachments" ? te("att.evidence") : auditLabel(c) }))),
    ...audit.slice().reverse().slice(0, 100).map((e) =>
      h("tr", {}, ...cols.map((c) => c === "attachments" ? h("td", { testid: "audit-evidence" }, e.attachments?.length ? evidence.thumbs(e.attachments) : null) : h("td", {
        // in words, in the page's language; ids, amounts and reasons as they are (audit_words.js)
        text: auditCell(e, c),
        dataset: AUDIT_DATA.has(c) ? { userContent: "" } : {},
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

// --- accounts (REST, with this page's own socket token as the bearer) --------------------
let accounts = null; // null: not loaded (or not an admin, or no store)
let accountsNote = null; // [key, vars] shown above the table

async function adminApi(method, path, body) {
  const token = await ident.getToken();
  const r = await fetch(path, {
    method, cache: "no-store",
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const out = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error(out.message || `HTTP ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return out;
}

function noteAccounts(key, vars = {}, error = false) {
  accountsNote = key ? [key, vars, error] : null;
  const el = $('[data-testid="accounts-msg"]');
  el.textContent = key ? tw(key, vars) : "";
  el.classList.toggle("acc-locked", !!error);
}

async function loadAccounts() {
  try {
    accounts = (await adminApi("GET", "/api/admin/users")).users;
    if (accountsNote?.[0] === "acc.unavailable") noteAccounts(null);
  } catch (e) {
    accounts = null;
    if (e.status === 503) noteAccounts("acc.unavailable");
    else if (e.status === 403) $('[data-testid="accounts-section"]').classList.add("hidden");
    else noteAccounts("common.error", { msg: e.message }, true);
  }
  renderAccounts();
}

async function changeAccount(user, change) {
  try {
    await adminApi("PATCH", `/api/admin/users/${encodeURIComponent(user)}`, change);
    noteAccounts("acc.done", { user });
  } catch (e) {
    noteAccounts("common.error", { msg: e.message }, true);
    toast(e.message);
  }
  loadAccounts();
}

function accountState(a) {
  if (a.locked) {
    return h("span.acc-locked", { testid: "account-locked",
      text: tw("acc.locked", { t: fmtDateTime(a.locked_until), n: a.failed_logins }) });
  }
  const parts = [tw(a.disabled ? "acc.disabled" : "acc.enabled")];
  if (a.failed_logins) parts.push(tw("acc.failures", { n: a.failed_logins }));
  return h("span", { testid: "account-state", text: parts.join(" · ") });
}

function renderAccounts() {
  const table = $('[data-testid="accounts"]');
  if (!accounts) {
    table.replaceChildren();
    return;
  }
  const head = h("tr", {}, ...["acc.user", "acc.name", "acc.roles", "acc.rooms", "acc.state", "acc.actions"]
    .map((k) => h("th", { text: tw(k) })));
  if (!accounts.length) {
    table.replaceChildren(head, h("tr", {}, h("td.ws-empty", { colspan: "6", text: tw("acc.none") })));
    return;
  }
  table.replaceChildren(head, ...accounts.map((a) => {
    const role = h("select", { testid: "account-role", "aria-label": tw("acc.roles") },
      ...["agent", "host", "supervisor", "admin"].map((r) =>
        h("option", { value: r, text: tw(`role.${r}`), selected: a.roles[0] === r })));
    const pw = h("input", { testid: "account-password", type: "password", maxlength: "1024",
      autocomplete: "new-password", placeholder: tw("acc.new_password") });
    return h("tr", { testid: `account-${a.user}`, dataset: { disabled: String(a.disabled), locked: String(a.locked) } },
      h("td", { text: a.user }),
      h("td", { text: a.name || "" }),
      h("td", { testid: "account-roles", text: a.roles.map((r) => tw(`role.${r}`)).join(", ") }),
      h("td", { text: (a.rooms || []).join(", ") }),
      h("td", {}, accountState(a)),
      h("td.acc-actions", {},
        h("button", { testid: "account-toggle", class: a.disabled ? "green" : "danger",
          text: tw(a.disabled ? "acc.enable" : "acc.disable"),
          on: { click: () => changeAccount(a.user, { disabled: !a.disabled }) } }),
        role,
        h("button", { testid: "account-set-role", text: tw("acc.set_role"),
          on: { click: () => changeAccount(a.user, { roles: [role.value] }) } }),
        pw,
        h("button", { testid: "account-reset", text: tw("acc.reset"),
          on: { click: () => pw.value && changeAccount(a.user, { password: pw.value }) } })));
  }));
}

$('[data-testid="account-add"]').addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const body = {
    user: f.user.value.trim(), roles: [f.role.value], password: f.password.value,
    name: f.name.value.trim() || undefined,
    rooms: f.rooms.value.split(",").map((x) => x.trim()).filter(Boolean),
  };
  try {
    await adminApi("POST", "/api/admin/users", body);
    noteAccounts("acc.done", { user: body.user });
    f.reset();
  } catch (e) {
    noteAccounts("common.error", { msg: e.message }, true);
  }
  loadAccounts();
});

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
client.on("welcome", loadAccounts);
setInterval(() => accounts && loadAccounts(), 15000); // lockouts come and go
setInterval(renderAgents, 5000); // time in status keeps moving
bindConnBadge(client, $('[data-testid="conn-state"]'));
bindLangSwitch($('[data-testid="lang-switch"]'), () => {
  applyWorkspaceI18n();
  renderApprovals();
  renderAgents();
  renderAudit();
  renderAccounts();
  if (accountsNote) noteAccounts(...accountsNote);
});
applyWorkspaceI18n();
bindStaffAuth(client, ident);
client.connect();
