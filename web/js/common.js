// Small helpers shared by the page modules: DOM building, the connection badge, room state.
import { t, tOr, applyI18n, toggleLang, onLangChange, getLang } from "./i18n.js";
import { loginUrl } from "./client.js";

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** h("div.cls#id", {attrs, on: {click}}, ...children) */
export function h(spec, attrs = {}, ...children) {
  const m = spec.match(/^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i);
  const el = document.createElement((m && m[1]) || "div");
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === ".") el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "text") el.textContent = v;
    else if (k === "testid") el.dataset.testid = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "class") el.className = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Inline SVG icons (no emoji font is assumed to exist on the machine).
const ICONS = {
  video: '<rect x="2" y="6" width="13" height="12" rx="2"/><path d="M15 10l6-4v12l-6-4z"/>',
  phone: '<path d="M5 3h4l2 5-3 2a11 11 0 0 0 6 6l2-3 5 2v4a2 2 0 0 1-2 2A17 17 0 0 1 3 5a2 2 0 0 1 2-2z"/>',
  gift: '<rect x="3" y="8" width="18" height="4"/><rect x="5" y="12" width="14" height="9"/><path d="M12 8v13M12 8c-2-4-6-4-6-1s6 1 6 1zm0 0c2-4 6-4 6-1s-6 1-6 1z"/>',
  pin: '<path d="M12 16v6M8 3h8l-1 6 3 4H6l3-4z"/>',
  bot: '<rect x="4" y="8" width="16" height="12" rx="3"/><path d="M12 4v4M9 14h.01M15 14h.01"/>',
  chat: '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/>',
  person: '<circle cx="12" cy="8" r="4"/><path d="M4 21a8 8 0 0 1 16 0"/>',
  megaphone: '<path d="M3 10v4h4l8 5V5L7 10zM18 9a4 4 0 0 1 0 6"/>',
  plus: '<path d="M12 5v14M5 12h14"/>',
  headset: '<path d="M4 14v-2a8 8 0 0 1 16 0v2"/><rect x="3" y="14" width="4" height="6" rx="1"/><rect x="17" y="14" width="4" height="6" rx="1"/>',
  bag: '<path d="M5 8h14l-1 13H6z"/><path d="M9 8V6a3 3 0 0 1 6 0v2"/>',
  cart: '<circle cx="9" cy="20" r="1.5"/><circle cx="18" cy="20" r="1.5"/><path d="M2 3h3l2.5 12h11l2-8H6.2"/>',
  star: '<path d="M12 3l2.8 5.7 6.2.9-4.5 4.4 1.1 6.2L12 17.3 6.4 20.2l1.1-6.2L3 9.6l6.2-.9z"/>',
  bell: '<path d="M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0"/>',
  truck: '<rect x="2" y="6" width="12" height="10" rx="1"/><path d="M14 9h4l3 4v3h-7z"/><circle cx="6" cy="18" r="1.5"/><circle cx="17" cy="18" r="1.5"/>',
  coffee: '<path d="M4 9h13v5a5 5 0 0 1-5 5H9a5 5 0 0 1-5-5zM17 10h2a2 2 0 0 1 0 4h-2M8 3v3M12 3v3"/>',
  refresh: '<path d="M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7"/>',
  check: '<path d="M5 12l5 5 9-10"/>',
  x: '<path d="M6 6l12 12M18 6L6 18"/>',
  mic: '<rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3"/>',
  micoff: '<path d="M15 9.5V6a3 3 0 0 0-5.7-1.3M9 9v2a3 3 0 0 0 4.8 2.4M5 11a7 7 0 0 0 11.5 5.4M19 11a7 7 0 0 1-.7 3M12 18v3M3 3l18 18"/>',
  videooff: '<path d="M15 10l6-4v12l-6-4M2 6h8M15 15v1a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V8M3 3l18 18"/>',
  phoneoff: '<path d="M3 14.5c5-4.7 13-4.7 18 0l-2.2 2.6-3.3-1.3v-2.6a12 12 0 0 0-7 0v2.6l-3.3 1.3z"/>',
  more: '<circle cx="5" cy="12" r="1.5"/><circle cx="12" cy="12" r="1.5"/><circle cx="19" cy="12" r="1.5"/>',
  help: '<circle cx="12" cy="12" r="9"/><path d="M9.5 9a2.5 2.5 0 1 1 3.5 2.3c-.7.3-1 .9-1 1.7M12 17h.01"/>',
  panel: '<rect x="3" y="4" width="18" height="16" rx="2"/><path d="M15 4v16"/>',
  transfer: '<path d="M4 7h13l-3-3M20 17H7l3 3"/>',
  done: '<circle cx="12" cy="12" r="9"/><path d="M8 12l3 3 5-6"/>',
  send: '<path d="M4 12l16-8-6 16-2-6z"/>',
  bell2: '<path d="M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0"/>',
  // evidence (evidence.js): photos, stills, recordings
  camera: '<path d="M4 8h3l2-3h6l2 3h3v11H4z"/><circle cx="12" cy="13" r="3.5"/>',
  play: '<circle cx="12" cy="12" r="9"/><path d="M10 8.5v7l6-3.5z"/>',
  rec: '<circle cx="12" cy="12" r="9"/><circle cx="12" cy="12" r="4" fill="currentColor"/>',
};

const iconTemplates = new Map();

/** More icons for :func:`icon` (a page's own, e.g. the viewer's overlay); a name already
 * known keeps its markup. */
export function addIcons(more) {
  for (const [name, markup] of Object.entries(more)) if (!(name in ICONS)) ICONS[name] = markup;
}

/** An icon element. Each name's markup is parsed once and cloned after: a call's first
 * renders draw dozens of icons, and parsing each one's SVG took ~10 ms of the main thread
 * while the call was setting up (benchmarks/call_setup.py). */
export function icon(name) {
  let tpl = iconTemplates.get(name);
  if (!tpl) {
    tpl = document.createElement("i");
    tpl.className = `icon icon-${name}`;
    tpl.setAttribute("aria-hidden", "true");
    tpl.innerHTML = `<svg viewBox="0 0 24 24" width="1em" height="1em" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name] || ""}</svg>`;
    iconTemplates.set(name, tpl);
  }
  return tpl.cloneNode(true);
}

/** Set an element's text only when it differs: writing the same text still replaces the
 * text node, and each replacement is a style and layout pass on the next frame — renders
 * that run every frame while a call sets up kept the pages busy with those. */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Fill every <i data-icon="name"> placeholder of the static HTML. */
export function hydrateIcons(root = document) {
  for (const el of root.querySelectorAll("i[data-icon]")) el.replaceWith(icon(el.dataset.icon));
}

/** The page's language as a BCP 47 tag for Intl (zh → zh-CN). */
export function locale() {
  return getLang() === "zh" ? "zh-CN" : "en";
}

/** A time of day in the page's language ("14:05" in zh, "2:05 PM" in en). */
export function fmtTime(ts) {
  return new Intl.DateTimeFormat(locale(), { hour: "numeric", minute: "2-digit" }).format(new Date(ts * 1000));
}

/** A date and time in the page's language (the admin audit, lock times). */
export function fmtDateTime(ts) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "short", timeStyle: "medium" }).format(new Date(ts * 1000));
}

/** Items joined as the language joins a list ("A、B" in zh, "A, B" in en). */
export function joinList(items) {
  return new Intl.ListFormat(locale(), { style: "narrow", type: "unit" }).format(items.map(String));
}

export function param(name) {
  return new URLSearchParams(location.search).get(name);
}

/** Wire a connection indicator element to a client's state. */
export function bindConnBadge(client, el) {
  const render = () => {
    el.dataset.state = client.state;
    el.textContent = t(`conn.${client.state}`);
  };
  client.onState(render);
  onLangChange(render);
}

/** Wire a language switch button; calls rerender after the switch. */
export function bindLangSwitch(btn, rerender) {
  btn.addEventListener("click", () => {
    toggleLang();
    rerender && rerender();
  });
  onLangChange(() => (btn.textContent = t("lang.switch")));
  btn.textContent = t("lang.switch");
}

export function moodLabel(m) {
  return m ? tOr(`mood.${m}`, m) : "—";
}

export function reasonLabel(r) {
  if (!r) return "—";
  if (r.startsWith("bot:")) return t("reason.bot", { what: intentLabel(r.slice(4)) });
  return tOr(`reason.${r}`, r);
}

export function intentLabel(i) {
  return i ? tOr(`intent.${i}`, i) : "—";
}

/** Seconds as a running clock: "0:42", "12:03", "1:05:03". */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** A money amount: "¥20", "¥19.9". */
// The room's currency (room.state "currency"; RoomState sets it): one per page, as a page
// shows one room's money.
let roomCurrency = "CNY";
export function setCurrency(c) {
  if (typeof c === "string" && /^[A-Z]{3}$/.test(c)) roomCurrency = c;
}

/**
 * A chat message's text in the page's language: a server-worded message carries text_key +
 * params (docs/protocol.md "Server texts"), worded here from "srv.<key>"; a key this page does
 * not know yet, and every message people wrote, shows its text as sent.
 */
export function serverText(m) {
  if (!m.text_key || tOr(`srv.${m.text_key}`, null) === null) return m.text;
  const p = m.params || {};
  const vars = { ...p };
  if (p.kind !== undefined) vars.kind = tOr(`srv.kind.${p.kind}`, p.kind);
  if (p.amount !== undefined) vars.amount = money(p.amount);
  return t(`srv.${m.text_key}`, vars);
}

/** An amount in the room's currency, formatted for the page's language. */
export function money(n, currency = roomCurrency) {
  if (n === null || n === undefined || n === "") return "—";
  const v = Number(n);
  const whole = Number.isInteger(v);
  return new Intl.NumberFormat(locale(), { style: "currency", currency, minimumFractionDigits: whole ? 0 : 2,
                                           maximumFractionDigits: whole ? 0 : 2 }).format(v);
}

/**
 * A failed request as words for a toast: every code is a sentence in the page's language
 * ("err.<code>"); in English the server's message, which names the field or limit at fault
 * (protocol.md, Errors), follows it for the codes where it helps. Never a bare code.
 */
export function errorText(e) {
  return t("common.error", { msg: errorWords(e) });
}

/** errorText without the "Error:" in front (for a sentence that has its own). */
// codes whose server message adds nothing a person can act on: the sentence alone
const GENERIC_ERRORS = new Set(["resume_failed", "timeout", "unavailable", "internal"]);

export function errorWords(e) {
  const words = e?.code ? tOr(`err.${e.code}`, null) : null;
  if (!words) return e?.message || String(e);
  // the server's message (English: it names the field or limit at fault) as a detail in the
  // English UI; the Chinese UI shows the sentence in Chinese only (issue 18: no English there)
  if (GENERIC_ERRORS.has(e.code) || !e.message || getLang() === "zh") return words;
  return `${words} (${e.message})`;
}

export function toastError(e, ms = 4000) {
  toast(errorText(e), ms);
}

export function toast(msg, ms = 2500) {
  let box = document.getElementById("ld-toasts");
  if (!box) {
    box = h("div#ld-toasts.toasts");
    document.body.append(box);
  }
  const el = h("div.toast", { testid: "toast", text: msg });
  box.append(el);
  setTimeout(() => el.remove(), ms);
}

/**
 * Live room state kept from room.state / room.update (room.* may be absent on older
 * servers: watch() then resolves null). Calls cb(state, change) on every change.
 */
export class RoomState {
  constructor(client, room, { refreshOnHosts = false } = {}) {
    this.client = client;
    this.refreshOnHosts = refreshOnHosts;
    this.room = room;
    this.state = null;
    this.cbs = new Set();
    this.announcementCbs = new Set();
    client.on("room.state", (f) => {
      if (f.room !== this.room) return;
      this.state = f;
      setCurrency(f.currency);
      this._fire(null);
    });
    client.on("room.update", (f) => {
      if (f.room !== this.room || !this.state) return;
      // a host coming or going does not move the room's version: never dropped as stale
      const hosts = f.change?.kind === "hosts";
      if (!hosts && typeof f.version === "number" && f.version <= (this.state.version ?? -1)) return;
      const s = this.state;
      if (!hosts || f.version > (s.version ?? -1)) s.version = f.version;
      if (f.counters) s.counters = { ...(s.counters || {}), ...f.counters };
      if (f.products) s.products = f.products;
      if (f.promotions) s.promotions = f.promotions;
      if ("on_screen" in f) s.on_screen = f.on_screen;
      else if (f.counters && "on_screen" in f.counters) s.on_screen = f.counters.on_screen;
      else if (f.change?.kind === "on_screen") s.on_screen = f.change.sku;
      if (f.hosts_online) s.hosts_online = f.hosts_online;
      if (f.title) s.title = f.title;
      const a = f.change?.kind === "announcement" ? f.change.announcement || f.change : null;
      if (a && a.text && !(s.announcements || []).some((x) => x.ts === a.ts && x.text === a.text)) {
        s.announcements = [...(s.announcements || []), a];
      }
      // "hosts" changes carry no list: agents re-read the room (hosts must not: it would echo)
      if (f.change?.kind === "hosts" && !f.hosts_online && this.refreshOnHosts) this.watch();
      this._fire(f.change || null);
    });
    client.on("room.announcement", (f) => {
      if (f.room !== this.room) return;
      if (this.state) {
        const a = this.state.announcements || (this.state.announcements = []);
        if (!a.some((x) => x.ts === f.ts && x.text === f.text)) a.push(f);
      }
      for (const cb of this.announcementCbs) cb(f);
      this._fire({ kind: "announcement" });
    });
  }

  onChange(cb) {
    this.cbs.add(cb);
  }

  onAnnouncement(cb) {
    this.announcementCbs.add(cb);
  }

  _fire(change) {
    for (const cb of this.cbs) {
      try {
        cb(this.state, change);
      } catch (e) {
        console.error(e);
      }
    }
  }

  /** Subscribe; returns the room.state frame or null when the server has no room.watch. */
  async watch() {
    try {
      const f = await this.client.request("room.watch", { room: this.room });
      if (f.type === "room.state") {
        this.state = f;
        this._fire(null);
      }
      return f;
    } catch (e) {
      this.unavailable = e.code === "unknown_type" || e.code === "forbidden" ? e.code : null;
      return null;
    }
  }

  product(sku) {
    return (this.state?.products || []).find((p) => p.sku === sku);
  }

  stock(sku) {
    const c = this.state?.counters?.stock;
    if (c && sku in c) return c[sku];
    return this.product(sku)?.stock;
  }

  gifts() {
    const out = [];
    const g = this.state?.counters?.gifts || {};
    for (const p of this.state?.promotions || []) {
      if (p.kind !== "first_n_gift") continue;
      const c = g[p.id] || {};
      out.push({
        id: p.id,
        text: p.text,
        gift: p.gift,
        sku: p.sku,
        limit: c.limit ?? p.limit,
        claimed: c.claimed ?? p.claimed,
        left: c.left ?? Math.max(0, (p.limit ?? 0) - (p.claimed ?? 0)),
        active: c.active ?? p.active,
      });
      const g1 = out[out.length - 1];
      // the server caps "left" by the gift's stock (Promotion.gifts_left): say so, or the
      // panel reads "3/100" next to "claimed 68/100"
      g1.quota = Math.max(0, (g1.limit ?? 0) - (g1.claimed ?? 0));
      g1.capped = typeof g1.left === "number" && g1.left < g1.quota;
    }
    return out;
  }
}

/**
 * The one formatter of a first-N gift's live numbers, for every staff page: "剩 3（受库存限制）
 * · 已领 68/100". ``g`` is a RoomState.gifts() item (live counters).
 */
export function giftLine(g) {
  const vars = { left: g.left ?? "—", claimed: g.claimed ?? 0, limit: g.limit ?? 0 };
  return t(g.capped ? "gift.line.capped" : "gift.line", vars);
}

/** The words for a revocation reason the gateway sent ("signed out", "account changed"). */
export function revokedKey(reason) {
  const key = String(reason || "").trim().replace(/\s+/g, "_");
  return key === "signed_out" || key === "account_changed" ? key : "other";
}

/**
 * What every staff page does about its identity: hands the token source the client (so a
 * renewed token reaches the live socket), puts a sign-out button in the header when the
 * page signed in, and when the gateway revokes the identity (close 4403, or the `revoked`
 * frame before it) says why in words and sends the user to /login.
 */
export function bindStaffAuth(client, ident, { header = document.querySelector("header") } = {}) {
  if (ident.attach) ident.attach(client);
  const signin = ident.mode === "signin";
  if (signin && header) {
    const btn = h("button.ghost", { testid: "sign-out", text: t("auth.signout"), on: {
      click: async () => {
        btn.disabled = true;
        try {
          await ident.signOut();
        } catch (e) {
          console.warn("sign-out request failed", e);
        }
        // the gateway closes this socket (4403, "signed out"); if it does not say so soon,
        // go anyway: the session is over either way
        setTimeout(() => showRevoked("signed out"), 3000);
      },
    } });
    onLangChange(() => (btn.textContent = t("auth.signout")));
    const lang = header.querySelector('[data-testid="lang-switch"]');
    if (lang) lang.before(btn);
    else header.append(btn);
  }
  let shown = false;
  function showRevoked(reason) {
    if (shown) return;
    shown = true;
    const key = revokedKey(reason);
    document.body.dataset.revoked = key;
    const box = h("div.revoked-banner", { testid: "revoked-banner", role: "alert", text: t(`revoked.${key}`) });
    document.body.prepend(box);
    client.close();
    if (signin) setTimeout(() => location.assign(loginUrl(key)), 2500);
  }
  client.on("revoked", (f) => showRevoked(f.reason));
}

export { t, applyI18n };
