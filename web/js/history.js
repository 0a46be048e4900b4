// The history page: search stored conversations (GET /api/conversations), open one
// (GET /api/conversations/{cid}) and export a search or one conversation as JSON or CSV.
// Agents see the conversations they handled; supervisors and admins see all (the server
// decides: docs/storage.md#history-api). No socket: REST with a bearer token from the same
// sources as the other staff pages (sign-in session, or a demo identity with --dev), sent in
// the Authorization header, never in a URL; exports are fetched and saved as a blob.
import { staffTokenSource, authMode } from "./client.js";
import { $, h, bindLangSwitch, param, reasonLabel } from "./common.js";
import { getLang, tOr } from "./i18n.js";
import { th, applyHistoryI18n } from "./i18n_history.js";
import { Evidence } from "./evidence.js";
import { AUDIT_COLUMNS, AUDIT_DATA, auditCell, auditLabel } from "./audit_words.js";

const dev = authMode() === "dev";
// --dev: ?as=agent|supervisor|admin picks the demo role (?user= the id); signed in: the
// account's most powerful staff role
const roles = dev ? [param("as") || "supervisor"] : ["supervisor", "admin", "agent"];
const ident = staffTokenSource(roles, { defaultUser: "history-supervisor", name: "History" });
const status = $('[data-testid="history-status"]');
// photos, stills and recordings of the transcript's messages and actions: thumbnails and the
// full view, fetched with this page's token (evidence.js; the attachment GET endpoint decides
// who may read them: staff who may read the conversation)
const evidence = new Evidence(ident.getToken);
let lastHits = [];
let openCid = null;

function when(ts) {
  if (ts === null || ts === undefined) return "–";
  return new Intl.DateTimeFormat(getLang() === "en" ? "en-GB" : "zh-CN",
    { dateStyle: "medium", timeStyle: "short" }).format(new Date(ts * 1000));
}

// the status line is kept as a way to word it, so a language switch words it again
let lastSay = null;
function say(words, error = false) {
  lastSay = { words, error };
  status.textContent = words();
  status.classList.toggle("error", error);
}

class HttpError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error;
  }
}

async function api(path, { raw = false } = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const token = await ident.getToken(attempt ? { refresh: true } : {});
    const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    if (r.status === 401 && attempt === 0) continue; // an expired token: fetch a new one once
    if (!r.ok) {
      let body = null;
      try { body = await r.json(); } catch { /* not JSON */ }
      throw new HttpError(r.status, body);
    }
    return raw ? r : r.json();
  }
  throw new HttpError(401, null);
}

function errorText(e) {
  if (e.code === "forbidden") return th("err.forbidden");
  if (e.code === "unavailable" || e.status === 503) return th("err.unavailable");
  return th("error", { msg: e.message });
}

function query() {
  const f = new FormData($('[data-testid="history-form"]'));
  const p = new URLSearchParams();
  for (const k of ["q", "user", "agent", "room", "order"]) {
    const v = String(f.get(k) || "").trim();
    if (v) p.set(k, v);
  }
  // a date picker gives a calendar day in the agent's own time zone: from its first to its
  // last second there
  const since = f.get("since");
  const until = f.get("until");
  if (since) p.set("since", String(new Date(`${since}T00:00:00`).getTime() / 1000));
  if (until) p.set("until", String(new Date(`${until}T23:59:59`).getTime() / 1000));
  p.set("limit", "100");
  return p;
}

async function search(ev) {
  ev?.preventDefault();
  say(() => th("busy"));
  try {
    const d = await api(`/api/conversations?${query()}`);
    lastHits = d.conversations;
    renderHits();
    say(() => (lastHits.length ? th("found", { n: lastHits.length }) : th("none")));
  } catch (e) {
    say(() => errorText(e), true);
  }
}

function renderHits() {
  const head = h("tr", {}, ...["conversation", "user", "room", "state", "agent", "opened", "resolved", "snippet"]
    .map((k) => h("th", { text: th("c." + k) })));
  $('[data-testid="history-results"]').replaceChildren(head, ...lastHits.map((c) =>
    h("tr.hit", { testid: `hit-${c.conversation}`, tabindex: "0", role: "button",
      on: { click: () => open(c.conversation), keydown: (e) => e.key === "Enter" && open(c.conversation) } },
    h("td", { text: c.conversation, "data-user-content": "" }), h("td", { text: c.user, "data-user-content": "" }),
    h("td", { text: c.room, "data-user-content": "" }),
    h("td", { text: th("state." + c.state) }), h("td", { text: c.agent || "–", "data-user-content": "" }),
    h("td", { text: when(c.opened_at) }), h("td", { text: when(c.resolved_at) }),
    h("td", { text: c.snippet || "", "data-user-content": "" }))));
}

async function open(cid) {
  try {
    const t = await api(`/api/conversations/${encodeURIComponent(cid)}`);
    openCid = cid;
    renderTranscript(t);
  } catch (e) {
    say(() => errorText(e), true);
  }
}

// the outcome record in words ("resolved by agent · first reply 5 s"), not its raw JSON
function outcomeText(o) {
  if (!o) return null;
  const parts = [o.outcome ? tOr(`outcome.${o.outcome}`, o.outcome) : null];
  if (typeof o.frt === "number") parts.push(th("t.frt", { s: Math.round(o.frt) }));
  return parts.filter(Boolean).join(" · ") || null;
}

// one audit entry in words, worded as /admin's audit table words it (audit_words.js): "label
// value" pairs of the fields it has, the ids and the reason marked as data
function actionItem(a) {
  const parts = [];
  for (const c of AUDIT_COLUMNS) {
    if (c === "conversation") continue; // the transcript's own
    const v = auditCell(a, c);
    if (!v) continue;
    parts.push(h("span.hist-act-part", {}, h("span.muted", { text: `${auditLabel(c)} ` }),
      h("span", { text: v, "data-user-content": AUDIT_DATA.has(c) ? "" : undefined })));
  }
  return h("li.hist-act", { testid: "t-action", dataset: { action: a.action || "" } }, ...parts,
    a.attachments?.length ? evidence.thumbs(a.attachments, { testid: "t-action-evidence" }) : null);
}

let lastTranscript = null;
function renderTranscript(t) {
  lastTranscript = t;
  const box = $('[data-testid="history-transcript"]');
  box.hidden = false;
  // the id inside the sentence is data: its own element, marked as such
  const [before, after = ""] = th("t.title").split("{cid}");
  $('[data-testid="t-title"]').replaceChildren(before, h("span", { text: t.conversation, "data-user-content": "" }), after);
  const csat = t.csat ? `${t.csat.score ?? t.csat.rating ?? ""} ${t.csat.comment ?? ""}`.trim() : null;
  // names and ids are data (skipped by the locale scan: data-user-content); the labels are ours
  const fact = (k, v, data = true) => [h("dt", { text: th(k) }),
    h("dd", { text: v ?? th("t.none"), "data-user-content": v !== null && v !== undefined && data ? "" : undefined })];
  $('[data-testid="t-facts"]').replaceChildren(
    ...fact("t.viewer", t.viewer_name ? `${t.viewer_name} (${t.user})` : t.user),
    ...fact("t.room", t.room), ...fact("t.agent", t.agent_name || t.agent),
    ...fact("t.opened", when(t.opened_at), false), ...fact("t.resolved", when(t.resolved_at), false),
    ...fact("t.reason", t.escalation_reason ? reasonLabel(t.escalation_reason) : null, false), ...fact("t.csat", csat),
    ...fact("t.outcome", outcomeText(t.outcome), false));
  $('[data-testid="t-messages"]').replaceChildren(...t.messages.map((m) =>
    h(`li.${m.from.role}`, { testid: "t-message" },
      h("span.who", {}, `${th("from." + m.from.role)} `, h("span", { text: m.from.name || m.from.user, "data-user-content": "" })),
      h("span.text", { text: m.text, "data-user-content": "" }), h("span.at", { text: when(m.ts) }),
      m.attachments?.length ? evidence.thumbs(m.attachments) : null)));
  $('[data-testid="t-actions"]').replaceChildren(...(t.actions.length
    ? t.actions.map(actionItem) : [h("li", { text: th("t.none") })]));
  $('[data-testid="t-orders"]').replaceChildren(...(t.orders.length ? t.orders : [null]).map((o) =>
    h("li", { testid: o ? "t-order" : undefined, text: o ? `${o.order_id} · ${o.sku} × ${o.qty} · ${when(o.at)}` : th("t.none") })));
}

async function download(path, file) {
  try {
    const r = await api(path, { raw: true });
    const url = URL.createObjectURL(await r.blob());
    const a = h("a", { href: url, download: file });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    say(() => th("exported", { file }));
  } catch (e) {
    say(() => errorText(e), true);
  }
}

function exportSearch(fmt) {
  const p = query();
  p.set("format", fmt);
  return download(`/api/conversations?${p}`, `conversations.${fmt}`);
}

function exportOne(fmt) {
  if (!openCid) return;
  return download(`/api/conversations/${encodeURIComponent(openCid)}/export?format=${fmt}`, `${openCid}.${fmt}`);
}

$('[data-testid="history-form"]').addEventListener("submit", search);
$('[data-testid="h-export-json"]').addEventListener("click", () => exportSearch("json"));
$('[data-testid="h-export-csv"]').addEventListener("click", () => exportSearch("csv"));
$('[data-testid="t-export-json"]').addEventListener("click", () => exportOne("json"));
$('[data-testid="t-export-csv"]').addEventListener("click", () => exportOne("csv"));
bindLangSwitch($('[data-testid="lang-switch"]'), () => {
  applyHistoryI18n();
  who();
  renderHits();
  if (lastTranscript) renderTranscript(lastTranscript);
  if (lastSay) say(lastSay.words, lastSay.error);
});
applyHistoryI18n();
function who() {
  if (dev) $('[data-testid="history-who"]').textContent = th("who.dev", { user: ident.user, role: th("role." + roles[0]) });
}
who();
// ?cid= opens that conversation (the console links here); otherwise the latest ones
if (param("cid")) open(param("cid"));
else search();
