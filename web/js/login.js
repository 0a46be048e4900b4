// The sign-in page (/login): user and password → POST /api/auth/login, which sets the
// HttpOnly session cookie; then back to the page that sent the user here (?next=, a path
// on this origin only) or the page of the account's first role. Says in words why the user
// is here (?reason=), a wrong password, and a lockout with the minutes left (the 429 body's
// retry_after). Single sign-on, when the gateway has an OIDC provider, is a link to
// /auth/oidc/start (docs/accounts.md).
import { t, applyI18n } from "./i18n.js";
import { $, bindLangSwitch } from "./common.js";

const HOME = { agent: "/agent", host: "/host", supervisor: "/admin", admin: "/admin" };
const q = new URLSearchParams(location.search);

/** ?next= only when it is a path of this origin (never //evil.example or https://…). */
function nextPath() {
  const n = q.get("next") || "";
  return /^\/(?![/\\])/.test(n) ? n : null;
}

const ui = {
  form: $('[data-testid="login-form"]'),
  user: $('[data-testid="login-user"]'),
  password: $('[data-testid="login-password"]'),
  submit: $('[data-testid="login-submit"]'),
  error: $('[data-testid="login-error"]'),
  reason: $('[data-testid="login-reason"]'),
  sso: $('[data-testid="login-sso"]'),
};
let lastError = null; // [key, vars]: re-rendered on a language switch

function showError(key, vars = {}) {
  lastError = key ? [key, vars] : null;
  ui.error.textContent = key ? t(key, vars) : "";
}

function render() {
  applyI18n();
  const reason = q.get("reason");
  ui.reason.textContent = reason ? t(`login.reason.${reason}`, { msg: q.get("detail") || "" }) : "";
  if (ui.reason.textContent.startsWith("login.reason.")) ui.reason.textContent = t("login.reason.other");
  if (lastError) showError(...lastError);
}

async function signIn(ev) {
  ev.preventDefault();
  const user = ui.user.value.trim();
  const password = ui.password.value;
  if (!user || !password) return;
  ui.submit.disabled = true;
  ui.submit.textContent = t("login.busy");
  try {
    const r = await fetch("/api/auth/login", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user, password }),
    });
    const body = await r.json().catch(() => ({}));
    if (r.ok) {
      showError(null);
      location.replace(nextPath() || HOME[body.roles?.[0]] || "/agent");
      return;
    }
    ui.password.value = "";
    if (r.status === 401) showError("login.wrong");
    else if (r.status === 429) {
      const secs = Number(body.retry_after || r.headers.get("Retry-After") || 60);
      showError("login.throttled", { n: Math.max(1, Math.ceil(secs / 60)) });
    } else if (r.status === 503) showError("login.unavailable");
    else showError("login.failed", { msg: body.message || `HTTP ${r.status}` });
  } catch (e) {
    showError("login.failed", { msg: e?.message || String(e) });
  } finally {
    ui.submit.disabled = false;
    ui.submit.textContent = t("login.submit");
  }
}

async function offerSso() {
  try {
    const r = await fetch("/auth/oidc", { cache: "no-store" });
    if (!r.ok) return;
    const info = await r.json();
    if (!info.enabled) return;
    const next = nextPath();
    ui.sso.href = `/auth/oidc/start${next ? `?next=${encodeURIComponent(next)}` : ""}`;
    ui.sso.classList.remove("hidden");
  } catch {
    /* no single sign-on */
  }
}

ui.form.addEventListener("submit", signIn);
bindLangSwitch($('[data-testid="lang-switch"]'), render);
render();
offerSso();
ui.user.focus();
