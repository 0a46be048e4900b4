// The viewer's overlay on a phone (docs/embedding.md, "The viewer's overlay"): the support
// sheet, the floating call window and the "in call" pill. viewer.js owns the conversation;
// this module owns only where things sit on the screen, so a live-shopping viewer keeps the
// stream and the product on screen while asking for help.
//
//  - Sheet: the widget is a half-height bottom sheet (data-size="half"), expandable to
//    nearly full height (data-size="full") by dragging its handle (pointer events) or with
//    the handle's button (keyboard, screen readers). Dragging a half sheet down closes it.
//    Its height is published as --sheet-h so the stream page lifts the product card above it.
//  - CallDock: during a call the call view is a small floating window over the stream
//    (draggable; a tap expands it, a second tap shrinks it), or minimised to a pill. The
//    pill shows whenever the call is not on screen — minimised, or the sheet/iframe hidden —
//    with the call's state, its timer, whether the camera is on, and a hang-up button: a
//    call never runs hidden (issue 18, the privacy problem).
//  - Closing the widget during a call asks: hang up, or minimise (the call goes on in the
//    pill). Never silently: the camera would keep sending with nothing on the page saying so.
//
// The embed (/embed) is the same module inside the shop page's iframe: the sheet's size is
// the shop page's (widget.js), so size changes are posted through the bridge (sheet), and
// the call's state is posted too (call) so widget.js shows the pill on the shop's page
// while its sheet is hidden.
import { t } from "./i18n.js";
import { h, icon, addIcons } from "./common.js";
import { fmtTimer } from "./call.js";
import { te } from "./i18n_evidence.js";

// the overlay's own icons, added to common.js's (one table, each parsed once)
const MORE_ICONS = {
  chevronup: '<path d="M6 15l6-6 6 6"/>',
  chevrondown: '<path d="M6 9l6 6 6-6"/>',
  expand: '<path d="M14 4h6v6M10 20H4v-6M20 4l-7 7M4 20l7-7"/>',
  shrink: '<path d="M20 10h-6V4M4 14h6v6M14 10l7-7M10 14l-7 7"/>',
  minimise: '<path d="M5 19h14"/>',
};

addIcons(MORE_ICONS);

/** A pointer that moved less than this (px) between down and up is a tap, not a drag. */
const TAP_SLOP_PX = 6;
/** Dragging a half sheet down by more than this share of its height closes it. */
const CLOSE_DRAG_SHARE = 0.35;

/**
 * The support sheet: half or full height, changed by a drag on the handle or by its button.
 * ``onSize(size)`` hears every change (the embed posts it to the shop page); ``onDragClose``
 * is asked to close when a half sheet is dragged down (it may refuse: a call asks first).
 */
export class Sheet {
  constructor(widget, { onSize = () => {}, onDragClose = () => {}, live = true } = {}) {
    this.widget = widget;
    this.onSize = onSize;
    this.onDragClose = onDragClose;
    this.live = live; // follow the finger (false in the embed: the iframe cannot grow itself)
    this.size = "half";
    this.btn = h("button.ghost.sheet-toggle", { type: "button", testid: "sheet-toggle", on: { click: () => this.setSize(this.size === "half" ? "full" : "half") } });
    this.handle = h("div.sheet-handle", { testid: "sheet-handle" }, h("span.grip", { "aria-hidden": "true" }), this.btn);
    widget.prepend(this.handle);
    // the height animates (CSS): say the final height once it has settled
    widget.addEventListener("transitionend", (ev) => {
      if (ev.target === widget) publishSheetHeight(widget);
    });
    window.addEventListener("resize", () => publishSheetHeight(widget));
    this._bindDrag();
    this.setSize("half", { quiet: true });
  }

  setSize(size, { quiet = false } = {}) {
    this.size = size === "full" ? "full" : "half";
    this.widget.dataset.size = this.size;
    this.widget.style.removeProperty("height");
    this.render();
    publishSheetHeight(this.widget);
    if (!quiet) this.onSize(this.size);
  }

  render() {
    const label = this.size === "half" ? t("sheet.expand") : t("sheet.collapse");
    this.btn.replaceChildren(icon(this.size === "half" ? "chevronup" : "chevrondown"));
    this.btn.setAttribute("aria-label", label);
    this.btn.setAttribute("aria-expanded", String(this.size === "full"));
    this.btn.title = label;
  }

  _bindDrag() {
    let start = null;
    this.handle.addEventListener("pointerdown", (ev) => {
      if (ev.target.closest("button")) return;
      start = { y: ev.clientY, h: this.widget.getBoundingClientRect().height };
      this.handle.setPointerCapture(ev.pointerId);
      this.widget.classList.add("dragging");
    });
    this.handle.addEventListener("pointermove", (ev) => {
      if (!start || !this.live) return;
      const hgt = Math.max(120, Math.min(window.innerHeight * 0.92, start.h - (ev.clientY - start.y)));
      this.widget.style.height = `${hgt}px`;
    });
    const end = (ev) => {
      if (!start) return;
      const dy = ev.clientY - start.y;
      const from = this.size;
      start = null;
      this.widget.classList.remove("dragging");
      if (Math.abs(dy) < TAP_SLOP_PX) return this.setSize(from, { quiet: true });
      if (dy < 0) return this.setSize("full");
      const h0 = this.widget.getBoundingClientRect().height || 1;
      if (from === "full" && dy < h0 * 0.6) return this.setSize("half");
      this.setSize("half", { quiet: from === "half" });
      if (from === "full" || dy > h0 * CLOSE_DRAG_SHARE) this.onDragClose();
    };
    this.handle.addEventListener("pointerup", end);
    this.handle.addEventListener("pointercancel", end);
  }
}

/** --sheet-h on <html>: the open sheet's height, which the stream page keeps clear. */
export function publishSheetHeight(widget) {
  const open = !widget.classList.contains("hidden");
  const hgt = open ? Math.round(widget.getBoundingClientRect().height) : 0;
  document.documentElement.style.setProperty("--sheet-h", `${hgt}px`);
}

/**
 * Where the call is: "float" (small window), "expanded" (large, over the stream) or
 * "minimised" (the pill only). ``calls`` is the CallManager; ``callEl`` the CallView's root.
 * ``isSheetOpen()`` tells whether the sheet is on screen; ``onCall(info)`` hears the call's
 * state for the embed's bridge ({active, state, video, camera, startedAt}).
 */
export class CallDock {
  constructor(calls, callEl, { isSheetOpen = () => true, onCall = () => {}, onOpenSheet = () => {} } = {}) {
    this.calls = calls;
    this.mode = "float";
    this.isSheetOpen = isSheetOpen;
    this.onCall = onCall;
    this.onOpenSheet = onOpenSheet;
    this.pos = null; // {left, top} where the viewer dragged the floating window (kept)
    this.expandBtn = h("button.dock-btn", { type: "button", testid: "call-dock-expand", on: { click: () => this.setMode(this.mode === "expanded" ? "float" : "expanded") } });
    this.minBtn = h("button.dock-btn", { type: "button", testid: "call-dock-minimise", on: { click: () => this.setMode("minimised") } });
    this.dock = h("div.call-dock.hidden", { testid: "call-dock", dataset: { mode: "float" } },
      h("div.dock-bar", {}, this.expandBtn, this.minBtn), callEl);
    document.body.append(this.dock);
    this.pillText = h("span.pill-text", { testid: "call-pill-text" });
    this.pillCam = h("span.pill-cam.hidden", { testid: "call-pill-camera" });
    this.pillOpen = h("button.pill-open", { type: "button", testid: "call-pill-open", on: { click: () => this.restore() } },
      h("span.pill-dot", { "aria-hidden": "true" }), this.pillText, this.pillCam);
    this.pillHang = h("button.pill-hangup", { type: "button", testid: "call-pill-hangup", on: { click: () => this.calls.hangup() } }, icon("phoneoff"));
    this.pill = h("div.call-pill.hidden", { testid: "call-pill", role: "status" }, this.pillOpen, this.pillHang);
    document.body.append(this.pill);
    this.dialog = null;
    this._bindDrag();
    this._tick = setInterval(() => this._renderPill(), 1000);
    window.addEventListener("resize", () => this._clamp());
  }

  setMode(mode) {
    this.mode = mode;
    this.update();
  }

  /** Back on screen from the pill: the floating window (and the sheet, in the embed). */
  restore() {
    this.setMode("float");
    this.onOpenSheet();
  }

  update() {
    const c = this.calls.call;
    if (!c) {
      this.mode = "float";
      this.closeDialog();
    }
    // the agent asks to record: the viewer must see the question, so a minimised call comes
    // back on screen (once per request)
    const asked = this.calls.recording?.state === "requested" ? this.calls.call?.id : null;
    if (asked && this.mode === "minimised" && this._askedFor !== asked) {
      this._askedFor = asked;
      this.mode = "float";
      this.onOpenSheet();
    }
    this.dock.classList.toggle("hidden", !c || this.mode === "minimised");
    // the stream page keeps its promotion lines clear of the floating window
    document.body.classList.toggle("call-floating", !!c && this.mode === "float");
    this.dock.dataset.mode = this.mode;
    this._applyPos();
    this.dock.dataset.kind = c?.video === false ? "voice" : "video";
    const expandIcon = this.mode === "expanded" ? "shrink" : "expand";
    if (this.expandBtn.dataset.icon !== expandIcon) {
      this.expandBtn.dataset.icon = expandIcon;
      this.expandBtn.replaceChildren(icon(expandIcon));
    }
    const el = this.mode === "expanded" ? t("dock.shrink") : t("dock.expand");
    this.expandBtn.setAttribute("aria-label", el);
    this.expandBtn.title = el;
    if (!this.minBtn.firstChild) this.minBtn.replaceChildren(icon("minimise"));
    this.minBtn.setAttribute("aria-label", t("dock.minimise"));
    this.minBtn.title = t("dock.minimise");
    this.pillHang.setAttribute("aria-label", t("call.hangup"));
    this.pillHang.title = t("call.hangup");
    this.pill.setAttribute("aria-label", t("pill.label"));
    this._renderPill();
    this.onCall(this.info());
  }

  /** The call as the shop page's pill needs it (embed bridge): never media, only state. */
  info() {
    const c = this.calls.call;
    if (!c) return { active: false };
    // label: the state in the viewer's words, without the timer (the page counts from startedAt)
    return { active: true, state: c.state, video: c.video !== false, camera: this.cameraOn(), startedAt: c.startedAt || null, label: this.pillLabel(false) };
  }

  /** A local camera track is live and sending (not turned off by the viewer). */
  cameraOn() {
    const tracks = this.calls.local?.getVideoTracks() || [];
    return tracks.some((tr) => tr.readyState === "live" && tr.enabled);
  }

  pillLabel(withTimer = true) {
    const c = this.calls.call;
    if (!c) return "";
    const timer = withTimer && c.startedAt ? ` · ${fmtTimer(Date.now() - c.startedAt)}` : "";
    // a recording runs: the pill says so too (here and on the shop page's pill), so the
    // indicator is on the viewer's screen even with the call window minimised
    const r = this.calls.recording?.state;
    const rec = r === "recording" ? ` · ${te("rec.on")}` : r === "requested" ? ` · ${te("rec.asked")}` : "";
    return `${t(c.state === "active" ? "pill.incall" : `call.${c.state}`)}${rec}${timer}`;
  }

  _renderPill() {
    const c = this.calls.call;
    const show = !!c && (this.mode === "minimised" || this.dock.classList.contains("hidden"));
    this.pill.classList.toggle("hidden", !show);
    this.pill.dataset.state = c?.state || "";
    this.pill.dataset.recording = this.calls.recording?.state || "";
    if (!c) return;
    this.pillText.textContent = this.pillLabel();
    const cam = this.cameraOn();
    this.pillCam.classList.toggle("hidden", !cam);
    this.pill.dataset.camera = String(cam);
    if (cam && !this.pillCam.childNodes.length) this.pillCam.append(icon("video"), h("span", { text: t("pill.camera") }));
    else if (cam) this.pillCam.lastChild.textContent = t("pill.camera");
    this.pillOpen.setAttribute("aria-label", `${this.pillLabel()}${cam ? ` · ${t("pill.camera")}` : ""} · ${t("pill.open")}`);
  }

  /**
   * The viewer closes the widget: during a call ask whether to hang up or minimise;
   * ``close()`` closes the widget once the viewer has chosen (not on cancel).
   */
  requestClose(close) {
    if (!this.calls.inCall) return close();
    if (this.dialog) return;
    const done = (fn) => () => {
      this.closeDialog();
      fn();
    };
    const minimise = done(() => {
      this.setMode("minimised");
      close();
    });
    const hangup = done(() => {
      this.calls.hangup();
      close();
    });
    const mini = h("button.primary", { type: "button", testid: "call-close-minimise", on: { click: minimise } }, icon("minimise"), " ", t("close.minimise"));
    this.dialog = h("div.close-dialog", { testid: "call-close-dialog", role: "alertdialog", "aria-modal": "true", "aria-labelledby": "ld-close-q" },
      h("div.cd-box", {},
        h("p#ld-close-q", { text: t("close.question") }),
        h("div.cd-btns", {},
          h("button.danger", { type: "button", testid: "call-close-hangup", on: { click: hangup } }, icon("phoneoff"), " ", t("close.hangup")),
          mini,
          h("button", { type: "button", testid: "call-close-cancel", on: { click: done(() => {}) } }, t("close.cancel")))));
    this.dialog.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.closeDialog();
    });
    document.body.append(this.dialog);
    mini.focus(); // the safe answer under the keyboard's Enter: the call goes on, in the pill
  }

  closeDialog() {
    this.dialog?.remove();
    this.dialog = null;
  }

  // --- dragging the floating window --------------------------------------------------------
  _bindDrag() {
    let start = null;
    this.dock.addEventListener("pointerdown", (ev) => {
      if (ev.target.closest("button, select, input, .rec-consent")) return;
      const r = this.dock.getBoundingClientRect();
      start = { x: ev.clientX, y: ev.clientY, left: r.left, top: r.top, dragged: false };
      this.dock.setPointerCapture(ev.pointerId);
    });
    this.dock.addEventListener("pointermove", (ev) => {
      if (!start || this.mode !== "float") return;
      const dx = ev.clientX - start.x;
      const dy = ev.clientY - start.y;
      if (!start.dragged && Math.hypot(dx, dy) < TAP_SLOP_PX) return;
      start.dragged = true;
      this.dock.classList.add("dragging");
      this._place(start.left + dx, start.top + dy);
    });
    const end = () => {
      if (!start) return;
      const tap = !start.dragged;
      start = null;
      this.dock.classList.remove("dragging");
      if (tap) this.setMode(this.mode === "expanded" ? "float" : "expanded");
    };
    this.dock.addEventListener("pointerup", end);
    this.dock.addEventListener("pointercancel", end);
  }

  /** Put the floating window at (left, top), kept inside the screen. */
  _place(left, top) {
    const r = this.dock.getBoundingClientRect();
    const maxL = Math.max(0, window.innerWidth - r.width - 4);
    const maxT = Math.max(0, window.innerHeight - r.height - 4);
    this.pos = { left: Math.round(Math.min(maxL, Math.max(4, left))), top: Math.round(Math.min(maxT, Math.max(4, top))) };
    this._applyPos();
  }

  /** The dragged place applies to the floating window only (expanded has its own). */
  _applyPos() {
    const st = this.dock.style;
    if (this.mode === "float" && this.pos) {
      st.left = `${this.pos.left}px`;
      st.top = `${this.pos.top}px`;
      st.right = "auto";
    } else {
      st.removeProperty("left");
      st.removeProperty("top");
      st.removeProperty("right");
    }
  }

  _clamp() {
    if (this.mode === "float" && this.pos) this._place(this.pos.left, this.pos.top);
  }
}

/**
 * Keep a scrolling log pinned to its end when it was there and its box shrinks (a rating
 * card or a call appearing below it): otherwise the last messages — "已为您发放退款 ¥80" —
 * slide out of sight behind the card (issue 18).
 */
export function stickToBottom(log) {
  let atEnd = true;
  const near = () => log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  log.addEventListener("scroll", () => (atEnd = near()), { passive: true });
  const ro = new ResizeObserver(() => {
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
  ro.observe(log);
  return {
    /** After new content: follow it to the end (the page always shows a new message). */
    toEnd() {
      log.scrollTop = log.scrollHeight;
      atEnd = true;
    },
  };
}
