// The host panel: put a product on screen, edit stock, start/stop/edit promotions, post an
// announcement, watch live counters; answer call invitations and join the call.
import { Client, staffTokenSource, gatewayUrls } from "./client.js";
import { t, tOr, applyI18n } from "./i18n.js";
import { $, h, icon, hydrateIcons, fmtTime, param, bindConnBadge, bindLangSwitch, toast, toastError, RoomState, bindStaffAuth, giftLine } from "./common.js";
import { CallManager, CallView, renderIncoming } from "./call.js";
import { RadarView } from "./radar_view.js";

const ident = staffTokenSource("host", { defaultUser: "host-1", name: param("name") || "", room: param("room") || "" });
const client = new Client({ urls: gatewayUrls(), getToken: ident.getToken });
let room = param("room") || null;
let rs = null;
let editing = null; // promotion being edited (null: form hidden; {} new)
let radar = null; // the room's question radar (radar_view.js)

const ui = {
  counters: $('[data-testid="counters"]'),
  products: $('[data-testid="product-table"] tbody'),
  promos: $('[data-testid="promo-list"]'),
  form: $('[data-testid="promo-form"]'),
  annForm: $('[data-testid="announce-form"]'),
  annText: $('[data-testid="announce-text"]'),
  annList: $('[data-testid="announcement-list"]'),
  banner: $('[data-testid="incoming-call"]'),
};

async function cmd(type, fields, okMsg) {
  try {
    const r = await client.request(type, { room, ...fields });
    if (okMsg) toast(okMsg);
    return r;
  } catch (e) {
    toastError(e);
    return null;
  }
}

// --- rendering ------------------------------------------------------------------------------
function tile(label, value, testid, warn = false, extra = {}, sub = null) {
  return h(`div.tile${warn ? ".warn" : ""}`, { testid, dataset: extra }, h("div.n", { text: String(value ?? "—") }), h("div.l", { text: label }),
    sub ? h("div.s", { testid: `${testid}-line`, text: sub }) : null);
}

function renderCounters() {
  const s = rs?.state;
  if (!s) return;
  const c = s.counters || {};
  const tiles = [
    tile(t("host.counter.open"), c.open_conversations ?? 0, "counter-open"),
    tile(t("host.counter.queue"), c.queue ?? 0, "counter-queue", (c.queue ?? 0) > 0),
  ];
  for (const g of rs.gifts()) {
    // the live number is "left" (capped by the gift's stock when that is lower); the same
    // one formatter as the promotion list and the agent console says claimed of the limit
    tiles.push(tile(`${t("host.counter.gifts")} · ${g.gift || g.id}`, g.left, "counter-gift", g.left <= 5,
      { promo: g.id, left: g.left, capped: String(!!g.capped) }, giftLine(g)));
  }
  const sku = s.on_screen;
  if (sku) tiles.push(tile(`${t("host.counter.stock")} · ${rs.product(sku)?.name || sku}`, rs.stock(sku), "counter-stock", rs.stock(sku) <= 5, { sku }));
  ui.counters.replaceChildren(...tiles);
}

function renderProducts() {
  const s = rs?.state;
  if (!s) return;
  ui.products.replaceChildren(
    ...(s.products || []).map((p) => {
      const on = s.on_screen === p.sku;
      const stockInput = h("input", { type: "number", min: "0", value: String(rs.stock(p.sku) ?? p.stock ?? 0), testid: "stock-input", "aria-label": `${t("host.stock")} · ${p.name}` });
      return h(`tr${on ? ".onscreen" : ""}`, { testid: "product-row", dataset: { sku: p.sku, onscreen: String(on) } },
        h("td", { text: p.sku }),
        h("td.name", { text: p.name }),
        h("td", { text: `¥${p.price}` }),
        h("td", {}, t("host.stock") + " ", stockInput, " ",
          h("button.small", { testid: "stock-save", text: t("host.save"), on: { click: () => cmd("room.stock", { sku: p.sku, stock: Math.max(0, parseInt(stockInput.value, 10) || 0) }, t("host.saved")) } })),
        h("td", {}, on
          ? h("span.badge.queued", { testid: "onscreen-badge", text: t("host.onscreen.now") })
          : h("button.small.primary", { testid: "onscreen-btn", text: t("host.onscreen"), on: { click: () => cmd("room.on_screen", { sku: p.sku }) } })));
    }),
  );
}

function promoSummary(p) {
  const bits = [tOr(`kind.${p.kind}`, p.kind)];
  if (p.kind === "first_n_gift") {
    const g = rs.gifts().find((x) => x.id === p.id);
    bits.push(g ? giftLine(g) : t("host.promo.claimed", { claimed: p.claimed ?? 0, limit: p.limit ?? 0 }));
  }
  if (p.code) bits.push(p.code);
  if (typeof p.starts_at === "number") bits.push(t("host.promo.starts.at", { t: fmtTime(p.starts_at) }));
  if (p.sku) bits.push(p.sku);
  return bits.join(" · ");
}

function renderPromos() {
  const s = rs?.state;
  if (!s) return;
  ui.promos.replaceChildren(
    ...(s.promotions || []).map((p) => {
      const active = p.active !== false;
      return h(`li.promo-item${active ? "" : ".off"}`, { testid: "promo-item", dataset: { promo: p.id, active: String(active) } },
        h("div.row", {},
          h("b", { text: p.id }),
          h(`span.badge.${active ? "assigned" : "resolved"}`, { testid: "promo-active", text: active ? t("host.promo.active") : t("host.promo.inactive") }),
          h("span.grow.muted", { text: promoSummary(p) }),
          h("button.small", { testid: "promo-edit", text: t("host.promo.edit"), on: { click: () => editPromo(p) } }),
          active
            ? h("button.small.danger", { testid: "promo-stop", text: t("host.promo.stop"), on: { click: () => cmd("room.promo.stop", { promotion: p.id }) } })
            : h("button.small.green", { testid: "promo-start", text: t("host.promo.start"), on: { click: () => cmd("room.promo.start", { promotion: p.id }) } })),
        h("div.text", { text: p.text || "" }));
    }),
  );
}

const PROMO_FIELDS = [
  ["id", "text"], ["kind", "select"], ["text", "text"], ["limit", "number"], ["gift", "text"], ["sku", "text"],
  ["threshold", "number"], ["amount", "number"], ["code", "text"], ["starts_at", "text"], ["ends_at", "text"],
];
const PROMO_LABELS = { ends_at: "ends", starts_at: "starts" };

/** Unix seconds as ISO 8601 in this browser's time zone, with its offset (what starts_at takes). */
function isoLocal(ts) {
  const d = new Date(ts * 1000);
  const off = -d.getTimezoneOffset();
  const p2 = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`
    + `${off >= 0 ? "+" : "-"}${p2(off / 60)}:${p2(off % 60)}`;
}

function editPromo(p) {
  editing = p ? { ...p } : { kind: "first_n_gift", active: true };
  renderForm();
}

function renderForm() {
  ui.form.classList.toggle("hidden", !editing);
  if (!editing) return;
  const els = [];
  for (const [k, type] of PROMO_FIELDS) {
    let input;
    if (type === "select") {
      input = h("select", { name: k, testid: `promo-${k}` },
        ...["first_n_gift", "discount", "coupon", "bundle"].map((x) => h("option", { value: x, text: tOr(`kind.${x}`, x) })));
      input.value = editing.kind || "first_n_gift";
    } else {
      // starts_at travels as Unix seconds; the form shows (and sends) it as ISO 8601 with the offset
      const value = k === "starts_at" && typeof editing[k] === "number" ? isoLocal(editing[k]) : editing[k] ?? "";
      input = h("input", { name: k, type, testid: `promo-${k.replace("_", "-")}`, value });
      if (k === "id" && editing.id) input.readOnly = true;
      if (k === "ends_at" || k === "starts_at") input.placeholder = "2026-06-30T20:00:00+08:00";
    }
    input.id = `promo-field-${k}`;
    els.push(h("label", { for: input.id, text: t(`host.promo.${PROMO_LABELS[k] || k}`) }), input);
    if (k === "starts_at") els.push(h("div.hint.muted", { text: t("host.promo.starts.hint") }));
  }
  els.push(h("div.btns", {},
    h("button", { type: "button", text: t("common.cancel"), on: { click: () => { editing = null; renderForm(); } } }),
    h("button.primary", { type: "submit", testid: "promo-save", text: t("host.save") })));
  ui.form.replaceChildren(...els);
}

ui.form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const promo = {};
  for (const [k, type] of PROMO_FIELDS) {
    const v = ui.form.elements[k].value.trim();
    if (v === "") continue;
    promo[k] = type === "number" ? Number(v) : v;
  }
  if (!promo.id) return toast(t("common.error", { msg: "id" }));
  if (editing && "active" in editing) promo.active = editing.active !== false;
  const r = await cmd("room.promo.upsert", { promotion: promo }, t("host.saved"));
  if (r) {
    editing = null;
    renderForm();
  }
});

function renderAnnouncements() {
  const list = rs?.state?.announcements || [];
  ui.annList.replaceChildren(...list.slice().reverse().map((a) =>
    // what the host (or the configured surge notice) wrote: shown as written, not translated
    h("li", { testid: "announcement-item" }, h("span.muted", { text: `${a.ts ? fmtTime(a.ts) : ""} ` }),
      h("span", { dataset: { userContent: "" }, text: a.text }))));
}

function renderRoom() {
  const s = rs?.state;
  $('[data-testid="room-unavailable"]').classList.toggle("hidden", !!s || !rs?.unavailable);
  if (!s) return;
  $('[data-testid="room-title"]').textContent = `${s.title || s.room} (${s.room})`;
  renderCounters();
  renderProducts();
  renderPromos();
  renderAnnouncements();
}

// --- calls --------------------------------------------------------------------------------
const calls = new CallManager(client, { onChange: () => renderCall(), log: console.warn });
const callView = new CallView($('[data-testid="call-view"]'), calls);
function renderCall() {
  renderIncoming(ui.banner, calls);
  callView.render();
}

// --- wiring --------------------------------------------------------------------------------
function renderMe() {
  if (client.welcome) $('[data-testid="host-me"]').textContent = `${t("role.host")} ${client.welcome.name || client.user}`;
}

client.on("welcome", async () => {
  room = room || client.welcome?.room;
  renderMe();
  if (!rs || rs.room !== room) {
    rs = new RoomState(client, room);
    rs.onChange(renderRoom);
  }
  if (!radar || radar.room !== room) {
    radar = new RadarView($('[data-testid="radar-body"]'), {
      client, room, getToken: ident.getToken, pin: true,
      roomInfo: () => ({ product: (sku) => rs?.product(sku), stock: (sku) => rs?.stock(sku) }),
    });
  }
  radar.start(); // the pushes follow by themselves (the host's token names the room)
  await rs.watch();
  renderRoom();
});
client.on("resumed", () => rs && rs.watch()); // cheap, and picks up anything coalesced
ui.annForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = ui.annText.value.trim();
  if (!text) return;
  const r = await cmd("room.announce", { text }, t("host.announce.sent"));
  if (r) ui.annText.value = "";
});
$('[data-testid="promo-new"]').addEventListener("click", () => editPromo(null));

bindConnBadge(client, $('[data-testid="conn-state"]'));
bindLangSwitch($('[data-testid="lang-switch"]'), () => {
  renderMe();
  renderRoom();
  renderForm();
  renderCall();
});
hydrateIcons();
applyI18n();
bindStaffAuth(client, ident);
client.connect();

window.__ld = { client, calls, get roomState() { return rs; }, get radar() { return radar; } };
