// The question radar of one room, as the host panel and the dashboard show it: the repeated
// questions (product · intent · size, distinct viewers, questions, two examples) over the
// last 1, 5 or 15 minutes, the anomaly flags and the surge state; on the host panel also the
// one-tap "pin answer" per group (room.pin). Live: the server pushes room.radar (the 5-minute
// window, coalesced to at most one a second) to the room's hosts and to radar.watch; the other
// windows are read from GET /api/rooms/{room}/radar?window= on each push and every few
// seconds (windows slide with no new question). docs/workspace.md describes the UI.
import { h, fmtTime, intentLabel, money, toast, toastError } from "./common.js";
import { getLang, onLangChange } from "./i18n.js";
import { tr, trCount } from "./i18n_radar.js";

export const WINDOWS = [60, 300, 900];
const PUSHED = 300; // the window room.radar carries
const SLIDE_MS = 5000; // re-read a window the pushes do not carry this often

/** A string of i18n_radar.js as DOM nodes: {name} is filled with vars[name], a Node kept as
 * it is (product names, what viewers typed: marked as data for the locale scan). */
export function trNodes(key, vars = {}) {
  const out = [];
  const s = tr(key);
  let last = 0;
  for (const m of s.matchAll(/\{(\w+)\}/g)) {
    if (m.index > last) out.push(s.slice(last, m.index));
    const v = vars[m[1]];
    out.push(v instanceof Node ? v : String(v ?? m[0]));
    last = m.index + m[0].length;
  }
  if (last < s.length) out.push(s.slice(last));
  return out;
}

/** Catalogue data shown as it is (product names, SKUs, promotion ids). */
export const product = (text) => h("span.rd-product", { dataset: { product: "" }, text: String(text) });
const userText = (text) => h("span", { dataset: { userContent: "" }, text: String(text) });

export function spanOf(seconds) {
  return seconds % 60 === 0 && seconds >= 60
    ? tr("radar.minutes", { n: seconds / 60 })
    : tr("radar.seconds", { n: Math.round(seconds) });
}

function productOf(x) {
  return x.product || x.sku || null;
}

/** A flag as a sentence: "轻量防滑登山鞋：2 分钟内 12 条投诉，预期 1.5 条". */
export function flagNodes(f) {
  return trNodes("radar.flag", {
    product: product(productOf(f) || "—"),
    n: f.observed,
    kind: tr(`radar.flag.kind.${f.kind}`),
    window: spanOf(f.window_s || 120),
    expected: Number(f.expected).toLocaleString(getLang() === "en" ? "en" : "zh-CN", { maximumFractionDigits: 2 }),
  });
}

/** A surge reason ("promotion:FLASH", "message_rate", "queue", "calm") in words. */
export function reasonNodes(reason) {
  if (!reason) return [];
  if (reason.startsWith("promotion:")) return trNodes("radar.reason.promotion", { id: product(reason.slice(10)) });
  return [tr(`radar.reason.${reason}`)];
}

export class RadarView {
  /**
   * @param root  the element to render into (emptied)
   * @param opts  {client, room, getToken, pin: bool (the host's pin action), roomInfo: () =>
   *              {product(sku), stock(sku)} (prefills the pin dialog), compact: bool}
   */
  constructor(root, { client, room, getToken, pin = false, roomInfo = null, compact = false }) {
    this.root = root;
    this.client = client;
    this.room = room;
    this.getToken = getToken;
    this.canPin = pin;
    this.roomInfo = roomInfo;
    this.compact = compact;
    this.window = PUSHED;
    this.data = null; // the last radar object of this.window
    this.prev = new Map(); // group → viewers, before the last change (the trend)
    this.fetching = null;
    this.again = false;
    this.timer = null;
    this.dialog = null;
    client.on("room.radar", (f) => {
      if (f.room !== this.room) return;
      if (this.window === PUSHED) this.set(f);
      else this.refresh();
    });
    onLangChange(() => this.render());
    this.render();
  }

  /** Start: the current object by GET (a host's pushes follow by themselves). */
  async start() {
    await this.refresh();
  }

  set(d) {
    if (this.data && this.data.window === d.window) {
      const before = new Map(this.data.groups.map((g) => [g.group, g.viewers]));
      for (const g of d.groups) {
        const was = before.get(g.group);
        if (was !== undefined && was !== g.viewers) this.prev.set(g.group, was);
      }
    } else {
      this.prev.clear();
    }
    this.data = d;
    this.render();
  }

  async refresh() {
    if (this.fetching) {
      this.again = true; // one more read after this one: never two at once
      return this.fetching;
    }
    this.fetching = (async () => {
      try {
        const token = await this.getToken();
        const w = this.window;
        const r = await fetch(`/api/rooms/${encodeURIComponent(this.room)}/radar?window=${w}`, {
          headers: { Authorization: `Bearer ${token}` }, cache: "no-store",
        });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        const d = await r.json();
        if (w === this.window) this.set({ ...d, window: w });
      } catch (e) {
        console.warn("radar", this.room, e?.message || e);
      } finally {
        this.fetching = null;
        if (this.again) {
          this.again = false;
          setTimeout(() => this.refresh(), 1000); // pushes come once a second at most
        }
      }
    })();
    return this.fetching;
  }

  setWindow(w) {
    if (w === this.window) return;
    this.window = w;
    this.prev.clear();
    clearInterval(this.timer);
    this.timer = w === PUSHED ? null : setInterval(() => this.refresh(), SLIDE_MS);
    this.render();
    this.refresh();
  }

  // --- rendering ------------------------------------------------------------------------------
  render() {
    const d = this.data;
    const id = `rd-${this.room}`.replace(/[^\w-]/g, "_");
    const switcher = h("div.rd-windows", { role: "group", "aria-label": tr("radar.window"), testid: "radar-windows" },
      h("span.rd-k", { text: tr("radar.window") }),
      ...WINDOWS.map((w) => h(`button.small${w === this.window ? ".on" : ""}`, {
        type: "button", testid: "radar-window", dataset: { window: String(w) },
        "aria-pressed": String(w === this.window), text: tr(`radar.window.${w}`),
        on: { click: () => this.setWindow(w) },
      })));
    this.root.replaceChildren(
      h("div.rd-head", {}, h("h4", { id: `${id}-groups`, text: tr("radar.title") }), switcher),
      this.renderGroups(d, `${id}-groups`),
      h("div.rd-grid", {},
        h("section.rd-flags", { testid: "radar-flags", "aria-labelledby": `${id}-flags` },
          h("h4", { id: `${id}-flags`, text: tr("radar.flags") }),
          this.renderFlags(d)),
        h("section.rd-surge-box", { "aria-labelledby": `${id}-surge` },
          h("h4", { id: `${id}-surge`, text: tr("radar.surge") }),
          this.renderSurge(d))));
    this.root.dataset.window = String(this.window);
    this.root.dataset.loaded = String(!!d);
  }

  renderGroups(d, labelledby) {
    const groups = d?.groups || [];
    if (!groups.length) return h("p.rd-empty.muted", { testid: "radar-empty", text: tr("radar.empty") });
    return h("ol.rd-groups", { "aria-labelledby": labelledby },
      ...groups.slice(0, this.compact ? 5 : 50).map((g) => this.renderGroup(g)));
  }

  groupTitle(g) {
    const bits = [h("b.rd-intent", { text: intentLabel(g.intent) }), " · ",
      g.sku ? product(productOf(g)) : h("span", { text: tr("radar.noproduct") })];
    if (g.slot) bits.push(" · ", h("span", { text: tr("radar.slot", { slot: g.slot }) }));
    return bits;
  }

  renderGroup(g) {
    const was = this.prev.get(g.group);
    const trend = was === undefined ? null : g.viewers < was ? "down" : "up";
    const title = h("div.rd-title", {}, ...this.groupTitle(g));
    const count = h("div.rd-count", {},
      h("span.rd-n", { testid: "radar-viewers", text: trCount("radar.viewers", g.viewers) }),
      h("span.rd-m.muted", { testid: "radar-messages", text: trCount("radar.messages", g.messages) }),
      trend ? h(`span.rd-trend.${trend}`, { testid: "radar-trend", dataset: { trend }, text: `${trend === "down" ? "▼" : "▲"} ${tr(`radar.trend.${trend}`)}` }) : null);
    const examples = g.examples?.length
      ? h("ul.rd-examples", { "aria-label": tr("radar.examples") },
        ...g.examples.map((x) => h("li", { testid: "radar-example" }, userText(x))))
      : null;
    const pinned = g.pinned
      ? h("div.rd-pinned", { testid: "radar-pinned" },
        h("span.rd-k", { text: `${tr("radar.pinned")}` }), " ", userText(g.pinned),
        g.viewers_since_pin !== null && g.viewers_since_pin !== undefined
          ? h("div.rd-since", { testid: "radar-since-pin", dataset: { n: String(g.viewers_since_pin) }, text: trCount("radar.since_pin", g.viewers_since_pin) })
          : null)
      : null;
    const actions = this.canPin
      ? h("div.rd-actions", {},
        h("button.small.primary", {
          type: "button", testid: "radar-pin", text: g.pinned ? tr("radar.pin.edit") : tr("radar.pin"),
          "aria-label": tr("radar.pin.for", { label: this.plainLabel(g) }), on: { click: () => this.openPin(g) },
        }),
        g.pinned ? h("button.small", { type: "button", testid: "radar-unpin", text: tr("radar.unpin"), on: { click: () => this.pin(g, "") } }) : null)
      : null;
    return h("li.rd-group", {
      testid: "radar-group",
      dataset: { group: g.group, viewers: String(g.viewers), messages: String(g.messages), pinned: String(!!g.pinned) },
    }, h("div.rd-row", {}, title, count, actions), examples, pinned);
  }

  plainLabel(g) {
    return [intentLabel(g.intent), productOf(g) || tr("radar.noproduct"), g.slot ? tr("radar.slot", { slot: g.slot }) : null]
      .filter(Boolean).join(" · ");
  }

  renderFlags(d) {
    const flags = d?.flags || [];
    if (!flags.length) return h("p.rd-ok", { testid: "radar-flags-none", text: tr("radar.flags.none") });
    return h("ul.rd-flag-list", {}, ...flags.map((f) =>
      h("li.rd-flag", { testid: "radar-flag", dataset: { sku: f.sku, kind: f.kind, observed: String(f.observed) } },
        h("div.rd-flag-text", {}, ...flagNodes(f)),
        h("div.rd-flag-meta", {},
          tr("radar.flag.since", { t: fmtTime(f.since) }),
          f.basis ? ` · ${tr(`radar.flag.basis.${f.basis}`)}` : ""))));
  }

  renderSurge(d) {
    const s = d?.surge || { on: false };
    return h(`div.rd-surge${s.on ? ".on" : ""}`, { testid: "radar-surge", dataset: { on: String(!!s.on), reason: s.reason || "" }, role: "status" },
      h("div.rd-surge-state", { text: s.on ? tr("radar.surge.on", { t: fmtTime(s.since) }) : tr("radar.surge.off") }),
      s.on && s.reason ? h("div.rd-surge-reason", {}, ...trNodes("radar.surge.reason", { reason: h("span", {}, ...reasonNodes(s.reason)) })) : null);
  }

  // --- pinning (host) -------------------------------------------------------------------------
  prefill(g) {
    if (g.pinned) return g.pinned;
    const info = this.roomInfo?.();
    const p = g.sku && info ? info.product(g.sku) : null;
    const name = productOf(g) || "";
    const slot = g.slot ? ` ${tr("radar.slot", { slot: g.slot })}` : "";
    if (g.intent === "stock" && p) {
      const stock = info.stock(g.sku) ?? p.stock ?? 0;
      return tr(stock > 0 ? "radar.prefill.stock" : "radar.prefill.stock.out", { product: name, slot, stock });
    }
    if (g.intent === "price_promo" && p) return tr("radar.prefill.price_promo", { product: name, price: money(p.price) });
    if (g.intent === "size_advice" && name) return tr("radar.prefill.size_advice", { product: name });
    return tr("radar.prefill.other", { product: name, slot }).trimStart();
  }

  openPin(g) {
    this.dialog?.remove();
    const textId = `rd-pin-text-${Math.random().toString(36).slice(2, 8)}`;
    const titleId = `${textId}-title`;
    const text = h("textarea", { id: textId, rows: 4, maxlength: 500, testid: "pin-text" });
    text.value = this.prefill(g);
    const dlg = h("dialog.rd-dialog", { testid: "pin-dialog", "aria-labelledby": titleId, dataset: { group: g.group } },
      h("form", { method: "dialog" },
        h("h3", { id: titleId, text: tr("radar.pin.title") }),
        h("p.rd-dialog-group", {}, ...this.groupTitle(g)),
        h("p.rd-hint", { text: tr("radar.pin.hint") }),
        h("label", { for: textId, text: tr("radar.pin.text") }),
        text,
        h("div.rd-btns", {},
          h("button", { type: "button", testid: "pin-cancel", text: tr("radar.pin.cancel"), on: { click: () => dlg.close() } }),
          h("button.primary", { type: "submit", testid: "pin-submit", text: tr("radar.pin.send") }))));
    dlg.querySelector("form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const v = text.value.trim();
      if (!v) return toast(tr("radar.pin.empty"));
      if (await this.pin(g, v)) dlg.close();
    });
    dlg.addEventListener("close", () => dlg.remove());
    document.body.append(dlg);
    this.dialog = dlg;
    dlg.showModal();
    text.focus();
  }

  async pin(g, text) {
    try {
      await this.client.request("room.pin", { room: this.room, group: g.group, text });
      toast(text ? tr("radar.pin.done") : tr("radar.pin.undone"));
      if (this.window !== PUSHED) this.refresh();
      return true;
    } catch (e) {
      toastError(e);
      return false;
    }
  }
}

/** The daily report (CSV) of one room: fetched with the page's bearer token (never in a URL)
 * and saved as a file. `day` is a UTC date, YYYY-MM-DD (the report's `day` column). */
export async function downloadReport(room, getToken, day = new Date().toISOString().slice(0, 10)) {
  const token = await getToken();
  const r = await fetch(`/api/rooms/${encodeURIComponent(room)}/radar/report?day=${day}`, {
    headers: { Authorization: `Bearer ${token}` }, cache: "no-store",
  });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  const file = `radar-${room}-${day}.csv`;
  const a = h("a", { href: URL.createObjectURL(await r.blob()), download: file });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  return file;
}
