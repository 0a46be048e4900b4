/*
 * LiveDesk widget for a shop's own live-stream page (docs/embedding.md).
 *
 *   <script src="https://<gateway>/widget.js" data-room="ROOM" async></script>
 *
 * Draws a launcher button in a corner of the page (data-position or LiveDesk.configure:
 * bottom-right by default, so it stays off the stream player), which opens a sheet holding
 * an iframe from the gateway's origin (/embed: the viewer support UI) with
 * allow="camera; microphone; autoplay" for calls.
 *
 * API on the page (calls made before this script loaded are queued by the stub, see the
 * docs): LiveDesk.identify({token}) — the shop-signed viewer identity; LiveDesk.track({event,
 * sku}) — browsing events; LiveDesk.onScreen(sku) — the product on screen; LiveDesk.configure
 * ({position, lang}); LiveDesk.open(); LiveDesk.close(); LiveDesk.on(event, cb) with events
 * "ready", "status", "unread", "identity_expired", "open", "close", "error".
 *
 * The page and the iframe talk only by postMessage: we post only to the gateway's origin,
 * and accept a message only from the gateway's origin and from our own iframe's window.
 * The token travels that way, never in a URL (nor in a log: nothing here prints it).
 */
(function () {
  "use strict";
  var MARK = "livedesk";
  var POSITIONS = ["bottom-right", "bottom-left", "top-right", "top-left"];
  var script = document.currentScript;
  var previous = window.LiveDesk;
  if (previous && previous.version) return; // loaded twice: the first one stays
  if (!script || !script.src) {
    console.error("LiveDesk: load widget.js with <script src=… async>");
    return;
  }
  var GATEWAY = new URL(script.src).origin;
  var data = script.dataset || {};
  var opts = {
    room: data.room || "",
    shop: data.shop || "",
    position: POSITIONS.indexOf(data.position) >= 0 ? data.position : "bottom-right",
    lang: data.lang || "",
  };
  var st = {
    token: null, onScreen: null, ready: false, pending: [], open: false, mounted: false,
    listeners: {}, ignored: 0, host: null, root: null, frame: null, sheet: null, launcher: null,
    dot: null, call: { active: false }, pill: null, pillText: null, pillCam: null, pillTimer: null,
  };
  // the few words this page draws itself (the rest is in the iframe, in the viewer's language)
  var WORDS = {
    zh: { support: "客服", hangup: "挂断", camera: "摄像头开启", back: "点按返回通话" },
    en: { support: "Support", hangup: "Hang up", camera: "Camera on", back: "tap to return to the call" },
  };
  function words() {
    return WORDS[opts.lang === "en" ? "en" : "zh"];
  }

  function emit(type, detail) {
    (st.listeners[type] || []).slice().forEach(function (cb) {
      try {
        cb(detail);
      } catch (e) {
        console.error("LiveDesk listener", type, e);
      }
    });
  }

  function post(msg) {
    msg[MARK] = 1;
    if (st.ready && st.frame && st.frame.contentWindow) st.frame.contentWindow.postMessage(msg, GATEWAY);
    else st.pending.push(msg);
  }

  var CSS = [
    ":host{all:initial}",
    ".launcher{position:fixed;z-index:2147483000;width:56px;height:56px;border-radius:50%;border:0;",
    "background:#ff3b5c;color:#fff;box-shadow:0 6px 18px rgba(0,0,0,.3);cursor:pointer;display:flex;",
    "align-items:center;justify-content:center;padding:0}",
    ".launcher svg{width:26px;height:26px}",
    ".dot{position:absolute;top:6px;right:6px;width:10px;height:10px;border-radius:50%;background:#ffb400;",
    "border:2px solid #fff}",
    ".hidden{display:none!important}",
    // a phone: a half-height sheet (the shop's player above it stays in sight), expanded to
    // nearly full height when the viewer drags its handle up (the iframe says "sheet")
    ".sheet{position:fixed;z-index:2147483001;background:#fff;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.35);",
    "left:0;right:0;height:52vh;height:52dvh;border-radius:16px 16px 0 0;transition:height .2s ease}",
    ".sheet.full{height:88vh;height:88dvh}",
    // the "in call" pill: whenever a call runs while the sheet is hidden (never a hidden call)
    ".pill{position:fixed;z-index:2147483002;display:flex;align-items:center;gap:2px;background:#1d2129;color:#fff;",
    "border-radius:999px;box-shadow:0 6px 18px rgba(0,0,0,.35);font:600 14px/1.2 -apple-system,BlinkMacSystemFont,",
    "'PingFang SC','Noto Sans CJK SC',sans-serif;padding:4px}",
    ".pill button{font:inherit;color:#fff;background:transparent;border:0;cursor:pointer;display:flex;align-items:center;",
    "gap:6px;min-height:40px;padding:0 10px;border-radius:999px}",
    ".pill .hang{background:#d92d20;width:40px;justify-content:center;padding:0}",
    ".pill .hang svg{width:20px;height:20px}",
    ".pill .live{width:10px;height:10px;border-radius:50%;background:#3ee06a;flex:none}",
    ".pill .cam{background:#b42318;border-radius:999px;padding:1px 8px;font-size:12px}",
    ".pill button:focus-visible,.launcher:focus-visible{outline:2px solid #1664ff;outline-offset:2px}",
    ".bottom-right .pill{right:84px;bottom:max(24px,env(safe-area-inset-bottom))}",
    ".bottom-left .pill{left:84px;bottom:max(24px,env(safe-area-inset-bottom))}",
    ".top-right .pill{right:84px;top:max(24px,env(safe-area-inset-top))}.top-left .pill{left:84px;top:max(24px,env(safe-area-inset-top))}",
    ".sheet iframe{border:0;width:100%;height:100%;display:block}",
    ".bottom-right .launcher{right:16px;bottom:16px}.bottom-left .launcher{left:16px;bottom:16px}",
    ".top-right .launcher{right:16px;top:16px}.top-left .launcher{left:16px;top:16px}",
    ".bottom-right .sheet,.bottom-left .sheet{bottom:0}",
    ".top-right .sheet,.top-left .sheet{top:0;border-radius:0 0 16px 16px}",
    "@media (min-width:768px){.sheet,.sheet.full{left:auto;right:auto;width:400px;height:min(680px,calc(100vh - 32px));",
    "border-radius:16px}.sheet.full{height:calc(100vh - 32px)}",
    ".bottom-right .sheet{right:16px;bottom:16px}.bottom-left .sheet{left:16px;bottom:16px}",
    ".top-right .sheet{right:16px;top:16px}.top-left .sheet{left:16px;top:16px}}",
  ].join("");
  var HANG = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" ' +
    'stroke-linejoin="round" aria-hidden="true"><path d="M3 14.5c5-4.7 13-4.7 18 0l-2.2 2.6-3.3-1.3v-2.6a12 12 0 0 ' +
    '0-7 0v2.6l-3.3 1.3z"/></svg>';
  var ICON = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" ' +
    'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">' +
    '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/></svg>';

  function frameUrl() {
    var q = new URLSearchParams({ room: opts.room });
    if (opts.shop) q.set("shop", opts.shop);
    if (opts.lang) q.set("lang", opts.lang);
    return GATEWAY + "/embed?" + q.toString();
  }

  function mount() {
    if (st.mounted) return;
    st.mounted = true;
    var host = document.createElement("div");
    host.setAttribute("data-livedesk", "");
    var root = host.attachShadow({ mode: "open" });
    var wrap = document.createElement("div");
    wrap.className = opts.position;
    var style = document.createElement("style");
    style.textContent = CSS;
    var launcher = document.createElement("button");
    launcher.className = "launcher";
    launcher.type = "button";
    launcher.setAttribute("data-testid", "livedesk-launcher");
    launcher.setAttribute("aria-label", words().support);
    launcher.innerHTML = ICON;
    var dot = document.createElement("span");
    dot.className = "dot hidden";
    dot.setAttribute("data-testid", "livedesk-unread");
    launcher.appendChild(dot);
    launcher.addEventListener("click", function () {
      if (st.open) api.close();
      else api.open();
    });
    var pill = document.createElement("div");
    pill.className = "pill hidden";
    pill.setAttribute("role", "status");
    pill.setAttribute("data-testid", "livedesk-call-pill");
    var back = document.createElement("button");
    back.type = "button";
    back.setAttribute("data-testid", "livedesk-pill-open");
    var live = document.createElement("span");
    live.className = "live";
    var pillText = document.createElement("span");
    pillText.setAttribute("data-testid", "livedesk-pill-text");
    var pillCam = document.createElement("span");
    pillCam.className = "cam hidden";
    pillCam.setAttribute("data-testid", "livedesk-pill-camera");
    back.appendChild(live);
    back.appendChild(pillText);
    back.appendChild(pillCam);
    back.addEventListener("click", function () {
      api.open();
    });
    var hang = document.createElement("button");
    hang.type = "button";
    hang.className = "hang";
    hang.setAttribute("data-testid", "livedesk-pill-hangup");
    hang.innerHTML = HANG;
    hang.addEventListener("click", function () {
      post({ type: "hangup" });
    });
    pill.appendChild(back);
    pill.appendChild(hang);
    var sheet = document.createElement("div");
    sheet.className = "sheet hidden";
    sheet.setAttribute("data-testid", "livedesk-sheet");
    var frame = document.createElement("iframe");
    frame.setAttribute("data-testid", "livedesk-frame");
    frame.setAttribute("allow", "camera; microphone; autoplay");
    frame.setAttribute("title", "LiveDesk");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.src = frameUrl();
    sheet.appendChild(frame);
    wrap.appendChild(style);
    wrap.appendChild(sheet);
    wrap.appendChild(launcher);
    wrap.appendChild(pill);
    root.appendChild(wrap);
    document.body.appendChild(host);
    st.host = host;
    st.root = wrap;
    st.frame = frame;
    st.sheet = sheet;
    st.launcher = launcher;
    st.dot = dot;
    st.pill = pill;
    st.pillText = pillText;
    st.pillCam = pillCam;
    st.pillBack = back;
    st.pillHang = hang;
    if (st.open) api.open();
  }

  window.addEventListener("message", function (ev) {
    var msg = ev.data;
    if (!st.frame || ev.origin !== GATEWAY || ev.source !== st.frame.contentWindow || !msg || msg[MARK] !== 1) {
      st.ignored++;
      return;
    }
    switch (msg.type) {
      case "ready": {
        // first load, or a reload (the viewer changed): say who it is and what is on screen
        st.ready = true;
        var init = { type: "init", token: st.token, onScreen: st.onScreen };
        init[MARK] = 1;
        st.frame.contentWindow.postMessage(init, GATEWAY);
        var queued = st.pending;
        st.pending = [];
        queued.forEach(post);
        if (st.open) post({ type: "open" });
        emit("ready");
        break;
      }
      case "status":
        emit("status", { identity: msg.identity });
        break;
      case "unread":
        if (st.dot) st.dot.classList.toggle("hidden", !msg.on || st.open);
        emit("unread", { on: !!msg.on });
        break;
      case "close":
        api.close();
        break;
      case "open": // back to the call from the widget's own pill
        api.open();
        break;
      case "sheet":
        if (st.sheet) st.sheet.classList.toggle("full", msg.size === "full");
        break;
      case "call":
        st.call = {
          active: msg.active === true, camera: msg.camera === true, video: msg.video === true,
          startedAt: typeof msg.startedAt === "number" ? msg.startedAt : null,
          label: typeof msg.label === "string" ? msg.label.slice(0, 60) : "",
        };
        renderPill();
        emit("call", { active: st.call.active });
        break;
      case "identity_expired":
        emit("identity_expired");
        break;
      default:
        st.ignored++;
    }
  });

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  /** The shop page's "in call" pill: shown while a call runs and the sheet is hidden. */
  function renderPill() {
    if (!st.pill) return;
    var c = st.call;
    var show = c.active && !st.open;
    st.pill.classList.toggle("hidden", !show);
    st.pill.setAttribute("data-camera", String(!!c.camera));
    if (!show) {
      clearInterval(st.pillTimer);
      st.pillTimer = null;
      return;
    }
    var w = words();
    var s = c.startedAt ? Math.max(0, Math.floor((Date.now() - c.startedAt) / 1000)) : -1;
    var text = c.label + (s >= 0 ? " · " + pad(Math.floor(s / 60)) + ":" + pad(s % 60) : "");
    st.pillText.textContent = text;
    st.pillCam.textContent = w.camera;
    st.pillCam.classList.toggle("hidden", !c.camera);
    st.pillBack.setAttribute("aria-label", text + (c.camera ? " · " + w.camera : "") + " · " + w.back);
    st.pillHang.setAttribute("aria-label", w.hangup);
    st.pillHang.setAttribute("title", w.hangup);
    if (!st.pillTimer) st.pillTimer = setInterval(renderPill, 1000);
  }

  var api = {
    version: 1,
    configure: function (o) {
      o = o || {};
      if (o.position && POSITIONS.indexOf(o.position) >= 0) {
        opts.position = o.position;
        if (st.root) st.root.className = o.position;
      }
      if (!st.mounted) {
        if (typeof o.room === "string") opts.room = o.room;
        if (typeof o.shop === "string") opts.shop = o.shop;
        if (typeof o.lang === "string") opts.lang = o.lang;
      }
    },
    identify: function (o) {
      var token = o && o.token;
      if (typeof token !== "string" || token.split(".").length !== 3) {
        console.error("LiveDesk.identify: expects {token: '<JWT signed by the shop>'}");
        return;
      }
      st.token = token;
      if (st.ready) post({ type: "identify", token: token });
    },
    track: function (o) {
      if (!o || typeof o.event !== "string") {
        console.error("LiveDesk.track: expects {event, sku}");
        return;
      }
      post({ type: "track", event: o.event, sku: typeof o.sku === "string" ? o.sku : undefined });
    },
    onScreen: function (sku) {
      if (typeof sku !== "string" || !sku) return;
      st.onScreen = sku;
      post({ type: "onScreen", sku: sku });
    },
    open: function () {
      st.open = true; // before the launcher is drawn: opened when it is (mount)
      if (!st.sheet) return;
      st.sheet.classList.remove("hidden");
      if (st.dot) st.dot.classList.add("hidden");
      post({ type: "open" });
      renderPill();
      emit("open");
    },
    close: function () {
      st.open = false;
      if (!st.sheet) return;
      st.sheet.classList.add("hidden");
      post({ type: "close" });
      renderPill();
      emit("close");
    },
    on: function (type, cb) {
      if (typeof cb !== "function") return;
      (st.listeners[type] = st.listeners[type] || []).push(cb);
    },
    get ignored() {
      return st.ignored;
    },
  };
  window.LiveDesk = api;

  // the stub's queue, in order (configure before the launcher is drawn)
  var queue = (previous && previous.q) || [];
  queue.forEach(function (call) {
    var name = call[0];
    var args = call[1] || [];
    if (typeof api[name] === "function") api[name].apply(api, args);
  });

  function start() {
    if (!opts.room) {
      console.error("LiveDesk: data-room is missing on the widget.js script tag");
      emit("error", { error: "no_room" });
      return;
    }
    // the gateway answers this page's origin only if the room's shop registered it (CORS):
    // otherwise no launcher, and a clear word for the shop's developer
    fetch(GATEWAY + "/api/embed/config?" + new URLSearchParams({ room: opts.room }).toString() +
          (opts.shop ? "&shop=" + encodeURIComponent(opts.shop) : ""), { credentials: "omit" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(mount, function (e) {
        console.error("LiveDesk: room " + JSON.stringify(opts.room) + " cannot be embedded from " +
                      location.origin + " (is this origin registered with `livedesk shop add " +
                      "--origin`?): " + e.message);
        emit("error", { error: "not_allowed", origin: location.origin });
      });
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
