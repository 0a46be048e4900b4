// The embedded widget's side of the bridge to the shop's page (docs/embedding.md).
//
// This page (/embed) runs in an iframe from the gateway's origin inside the shop's page. It
// talks to the shop's page only through postMessage, and trusts a message only when
//  - it comes from the window that framed us (event.source === window.parent), and
//  - its origin is one the room's shop registered (`livedesk shop add --origin`), which the
//    server writes into this page (<meta name="livedesk-embed">) and also enforces with
//    `Content-Security-Policy: frame-ancestors` (a page of another origin cannot frame us).
// Everything else is counted (window.__ldEmbed.ignored) and dropped without a word.
// We post only to that verified origin (never "*"); the first "ready" goes to each allowed
// origin, and the browser delivers it only to the one that framed us.
//
// Identity: the shop's signed viewer token arrives by postMessage (init or identify), never
// in a URL. Without one, a shop that admits anonymous viewers gets an anonymous identity
// from POST /api/embed/anonymous once the viewer opens the widget (an HttpOnly cookie keeps
// it for this browser); otherwise
// the widget says to sign in on the shop's site and waits for identify.

import { getLang } from "./i18n.js";

const MARK = "livedesk";
const SIGN_IN = {
  zh: "请先在商家网站登录，再联系客服。",
  en: "Please sign in on the shop's site to chat with support.",
};

function readMeta() {
  const el = document.querySelector('meta[name="livedesk-embed"]');
  try {
    return JSON.parse(el?.content || "null") || {};
  } catch {
    return {};
  }
}

/** The unverified payload of a JWT (to tell one identity from another, never to trust). */
function peek(token) {
  try {
    const [h, p] = token.split(".").slice(0, 2).map((s) => JSON.parse(atob(s.replace(/-/g, "+").replace(/_/g, "/"))));
    return { kid: h.kid || "", sub: String(p.sub || ""), exp: Number(p.exp) || 0 };
  } catch {
    return null;
  }
}

export function startBridge() {
  const meta = readMeta();
  const allowed = new Set(meta.origins || []);
  const stats = { ignored: 0, accepted: 0, mode: "waiting", user: null };
  window.__ldEmbed = stats;
  let parentOrigin = null; // set by the first accepted message
  let token = null; // the shop's identity (JWT) or an anonymous one
  let mode = "waiting"; // waiting | shop | anonymous | signin
  let connectedAs = null; // "kid/sub" of the identity a hello was sent with
  let wakeToken = null; // resolves a getToken waiting for identify (or for the first open)
  let opened = false; // the viewer has opened the sheet at least once
  const handlers = new Map(); // type → cb (the viewer page's: open, track, onScreen)
  let lastCall = ""; // the last call state posted (posted again only when it changes)

  const post = (msg) => {
    if (parentOrigin) window.parent.postMessage({ [MARK]: 1, ...msg }, parentOrigin);
  };
  const setMode = (m, user = null) => {
    mode = m;
    stats.mode = m;
    stats.user = user;
    document.body.dataset.identity = m;
    const box = document.querySelector('[data-testid="embed-signin"]');
    if (box) {
      box.textContent = SIGN_IN[getLang()] || SIGN_IN.en;
      box.classList.toggle("hidden", m !== "signin");
    }
    post({ type: "status", identity: m });
  };

  function identify(t) {
    const id = t && peek(t);
    if (!id) {
      console.warn("LiveDesk.identify: not a token");
      return;
    }
    const who = `${id.kid}/${id.sub}`;
    if (connectedAs && connectedAs !== who) {
      // another viewer (or anonymous until now): start over as them; the shop's page sends
      // its latest identity again when we say ready
      location.reload();
      return;
    }
    token = t;
    setMode("shop");
    if (wakeToken) wakeToken();
  }

  async function anonymous() {
    const r = await fetch("/api/embed/anonymous", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ room: meta.room, ...(meta.shop ? { shop: meta.shop } : {}) }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = new Error(body.message || `HTTP ${r.status}`);
      e.code = body.error;
      throw e;
    }
    return body;
  }

  const identity = {
    async getToken({ refresh } = {}) {
      for (;;) {
        if (mode === "anonymous" && !opened) {
          // an anonymous identity only for a viewer who opens the widget: a page view alone
          // makes none (and does not count against the per-address limits)
        } else if (mode === "anonymous") {
          if (!token || refresh) {
            try {
              const a = await anonymous();
              token = a.token;
              stats.user = a.user;
            } catch (e) {
              if (e.code === "forbidden") {
                setMode("signin"); // the shop stopped admitting anonymous viewers
                continue;
              }
              // rate_limited or the network: not the client's fast reconnect schedule
              await new Promise((resolve) => setTimeout(resolve, e.code === "rate_limited" ? 30_000 : 3_000));
              throw e;
            }
          }
          connectedAs = "anonymous";
          return token;
        }
        if (token) {
          const id = peek(token);
          if (!refresh && id && (!id.exp || id.exp * 1000 > Date.now() + 5000)) {
            connectedAs = `${id.kid}/${id.sub}`;
            return token;
          }
          token = null; // expired or refused: ask the shop's page for a fresh one
          post({ type: "identity_expired" });
        }
        await new Promise((resolve) => (wakeToken = resolve));
        wakeToken = null;
        refresh = false;
      }
    },
  };

  function onInit(msg) {
    if (msg.token) identify(msg.token);
    else if (meta.anonymous) {
      setMode("anonymous");
      if (wakeToken) wakeToken();
    } else setMode("signin");
    if (msg.onScreen) handlers.get("onScreen")?.(msg.onScreen);
  }

  window.addEventListener("message", (ev) => {
    const msg = ev.data;
    if (ev.source !== window.parent || !allowed.has(ev.origin) || !msg || msg[MARK] !== 1 || typeof msg.type !== "string") {
      stats.ignored++;
      return;
    }
    stats.accepted++;
    parentOrigin = ev.origin;
    switch (msg.type) {
      case "init":
        onInit(msg);
        break;
      case "identify":
        if (typeof msg.token === "string") identify(msg.token);
        break;
      case "track":
        if (typeof msg.event === "string") handlers.get("track")?.(msg.event, typeof msg.sku === "string" ? msg.sku : null);
        break;
      case "onScreen":
        if (typeof msg.sku === "string") handlers.get("onScreen")?.(msg.sku);
        break;
      case "open":
        opened = true;
        if (wakeToken) wakeToken();
        handlers.get("open")?.();
        break;
      case "close":
        handlers.get("close")?.();
        break;
      case "hangup": // the shop page's "in call" pill
        handlers.get(msg.type)?.();
        break;
      default:
        stats.ignored++;
    }
  });

  return {
    room: meta.room || null,
    shop: meta.shop || null,
    identity,
    on(type, cb) {
      handlers.set(type, cb);
    },
    unread(on) {
      post({ type: "unread", on: !!on });
    },
    close() {
      post({ type: "close" });
    },
    /** Ask the shop page to show its sheet (back from its "in call" pill). */
    open() {
      post({ type: "open" });
    },
    /** The sheet's size the viewer chose (drag or button): "half" | "full". */
    sheet(size) {
      post({ type: "sheet", size: size === "full" ? "full" : "half" });
    },
    /** The call's state, for the shop page's "in call" pill while its sheet is hidden:
     * {active, state, video, camera, startedAt, label} — never media, never an identity. */
    call(info) {
      const c = info || { active: false };
      const msg = { type: "call", active: !!c.active, state: c.state || null, video: !!c.video, camera: !!c.camera,
        startedAt: c.startedAt || null, label: c.label || "" };
      const key = JSON.stringify(msg);
      if (key === lastCall) return;
      lastCall = key;
      post(msg);
    },
    /** Say "ready" (once the page's handlers are in place) to each allowed origin: only the
     * one that framed us receives it; it answers with init (identity, product on screen). */
    ready() {
      if (window.parent === window) return; // opened on its own, not framed: nobody to ask
      for (const o of allowed) {
        try {
          window.parent.postMessage({ [MARK]: 1, type: "ready" }, o);
        } catch {
          /* not an origin */
        }
      }
    },
  };
}
