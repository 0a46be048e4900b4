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
    dot: null,
  };

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
    ".sheet{position:fixed;z-index:2147483001;background:#fff;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.35);",
    "left:0;right:0;height:80vh;border-radius:16px 16px 0 0}",
    ".sheet iframe{border:0;width:100%;height:100%;display:block}",
    ".bottom-right .launcher{right:16px;bottom:16px}.bottom-left .launcher{left:16px;bottom:16px}",
    ".top-right .launcher{right:16px;top:16px}.top-left .launcher{left:16px;top:16px}",
    ".bottom-right .sheet,.bottom-left .sheet{bottom:0}",
    ".top-right .sheet,.top-left .sheet{top:0;border-radius:0 0 16px 16px}",
    "@media (min-width:768px){.sheet{left:auto;right:auto;width:400px;height:min(680px,calc(100vh - 32px));",
    "border-radius:16px}",
    ".bottom-right .sheet{right:16px;bottom:16px}.bottom-left .sheet{left:16px;bottom:16px}",
    ".top-right .sheet{right:16px;top:16px}.top-left .sheet{left:16px;top:16px}}",
  ].join("");
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
    launcher.setAttribute("aria-label", opts.lang === "en" ? "Support" : "客服");
    launcher.innerHTML = ICON;
    var dot = document.createElement("span");
    dot.className = "dot hidden";
    dot.setAttribute("data-testid", "livedesk-unread");
    launcher.appendChild(dot);
    launcher.addEventListener("click", function () {
      if (st.open) api.close();
      else api.open();
    });
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
    root.appendChild(wrap);
    document.body.appendChild(host);
    st.host = host;
    st.root = wrap;
    st.frame = frame;
    st.sheet = sheet;
    st.launcher = launcher;
    st.dot = dot;
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
      case "identity_expired":
        emit("identity_expired");
        break;
      default:
        st.ignored++;
    }
  });

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
      emit("open");
    },
    close: function () {
      st.open = false;
      if (!st.sheet) return;
      st.sheet.classList.add("hidden");
      post({ type: "close" });
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
