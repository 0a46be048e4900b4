// Typing indicators and delivered/read marks (docs/protocol.md "Typing and read marks"),
// shared by the viewer widget and the agent console: one owner of the throttle, the
// indicator's expiry and the marks; the pages only ask what to show.
//
//  - inputChanged(conv, text): a start at most every TYPING_INTERVAL_MS while text is
//    typed, a stop when the composer empties; sent(conv) stops it when the text is sent.
//  - seen(conv, ids, authors, shown): marks the last message written by someone else as
//    "read" when the conversation is on screen (page visible and focused, conversation
//    shown), else "delivered"; each state is sent again only when it advances.
//  - typingIn(conv) → {by} while the other side types; markOf(conv, ids, id) → "sent" |
//    "delivered" | "read" for one's own message.
//  - seed(conv, snapshot.read_marks): the other side's latest read marks as the gateway keeps
//    them, so a page that reloads shows them again (the reader does not send them again:
//    its page sends a mark only when it advances).
import { h } from "./common.js";
import { t } from "./i18n.js";

export const TYPING_INTERVAL_MS = 2000; // the gateway refuses a faster start (rate_limited)

export class ChatSignals {
  constructor(client, { onChange = () => {} } = {}) {
    this.client = client;
    this.onChange = onChange;
    this.lastStart = new Map(); // conv → Date.now() of the last start sent
    this.typing = new Map(); // conv → {by, until, timer}
    this.marks = new Map(); // conv → {delivered: id, read: id} (the other side's marks)
    this.sentMarks = new Map(); // `${conv}|${state}` → id sent
    this.stats = { typingSentAt: 0, typingShownAt: 0 }; // Date.now(), for the page's diagnostics
    client.on("typing", (f) => this._typing(f));
    client.on("read", (f) => this._read(f));
    client.on("message", (m) => {
      // a message from the one who typed ends their indicator
      const cur = this.typing.get(m.conversation);
      if (cur && m.from?.user === cur.by.user) this._clearTyping(m.conversation);
    });
  }

  inputChanged(conv, text) {
    if (!conv || this.client.state !== "online") return;
    const now = Date.now();
    if (text.trim()) {
      const last = this.lastStart.get(conv) || 0;
      if (now - last < TYPING_INTERVAL_MS) return;
      this.lastStart.set(conv, now);
      this.stats.typingSentAt = now;
      this._send("conversation.typing", { conversation: conv, typing: true });
    } else {
      this.sent(conv);
    }
  }

  sent(conv) {
    if (!conv || !this.lastStart.has(conv)) return;
    this.lastStart.delete(conv);
    if (this.client.state === "online") this._send("conversation.typing", { conversation: conv, typing: false });
  }

  seen(conv, ids, authorOf, shown) {
    if (!conv || this.client.state !== "online") return;
    let last = null;
    for (let i = ids.length - 1; i >= 0; i--) {
      const who = authorOf(ids[i]);
      if (who && who !== this.client.user) {
        last = ids[i];
        break;
      }
    }
    if (!last) return;
    const visible = shown && document.visibilityState === "visible" && document.hasFocus();
    const state = visible ? "read" : "delivered";
    const key = `${conv}|${state}`;
    if (this.sentMarks.get(key) === last) return;
    this.sentMarks.set(key, last);
    if (state === "read") this.sentMarks.set(`${conv}|delivered`, last);
    this._send("conversation.read", { conversation: conv, message_id: last, state });
  }

  seed(conv, marks) {
    if (!conv || !Array.isArray(marks)) return;
    for (const f of marks) {
      if (!f?.message_id || f.by?.user === this.client.user) continue; // one's own: not shown
      this._read({ ...f, conversation: conv, state: "read" }, false);
    }
  }

  typingIn(conv) {
    return this.typing.get(conv) || null;
  }

  markOf(conv, ids, id) {
    const m = this.marks.get(conv);
    if (!m) return "sent";
    const at = ids.indexOf(id);
    const upTo = (mid) => (mid ? ids.indexOf(mid) : -1);
    if (at >= 0 && upTo(m.read) >= at) return "read";
    if (at >= 0 && upTo(m.delivered) >= at) return "delivered";
    return "sent";
  }

  /** The indicator under the log (null when nobody types). */
  typingEl(conv, nameOf) {
    const cur = this.typingIn(conv);
    if (!cur) return null;
    return h("div.typing", { testid: "typing-indicator", role: "status", dataset: { user: cur.by.user } },
      h("span.dots", { "aria-hidden": "true" }, h("i"), h("i"), h("i")), " ", t("chat.typing", { name: nameOf(cur.by) }));
  }

  /** The mark after one's own message. */
  markEl(state) {
    return h("span.readmark", { testid: "read-mark", dataset: { state }, text: t(`chat.mark.${state}`) });
  }

  _send(type, body) {
    this.client.request(type, body).catch(() => {}); // best effort: a lost one heals at the next
  }

  _typing(f) {
    this._clearTyping(f.conversation, false);
    if (f.typing) {
      const ms = Math.max(0, (f.expires_in || 5) * 1000);
      const timer = setTimeout(() => this._clearTyping(f.conversation), ms);
      this.typing.set(f.conversation, { by: f.by || {}, timer });
      this.stats.typingShownAt = Date.now();
    }
    this.onChange(f.conversation);
  }

  _clearTyping(conv, notify = true) {
    const cur = this.typing.get(conv);
    if (!cur) return;
    clearTimeout(cur.timer);
    this.typing.delete(conv);
    if (notify) this.onChange(conv);
  }

  _read(f, notify = true) {
    const m = this.marks.get(f.conversation) || { delivered: null, read: null };
    m[f.state === "read" ? "read" : "delivered"] = f.message_id;
    if (f.state === "read" && !m.delivered) m.delivered = f.message_id;
    this.marks.set(f.conversation, m);
    if (notify) this.onChange(f.conversation);
  }
}
