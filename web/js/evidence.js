// Evidence in the pages (issue 19): uploading photos and stills, showing attachments of
// messages as thumbnails, the full view (photos) and playback (call recordings) in one
// accessible dialog, and the photo picker of a composer. Shared by the viewer widget, the
// agent console, the host panel, /admin and /history.
//
// Why fetch() and blob: URLs instead of <img src="/api/attachments/…">: the attachment API
// takes the token only in the Authorization header (a token in a URL ends up in logs and
// Referer-less caches), and an <img> cannot send a header. The page's CSP allows blob: for
// img-src and media-src. Blob URLs are cached per attachment and revoked when the cache is
// full, so a long chat does not pin every image in memory.
import { h, icon, fmtTime, toast } from "./common.js";
import { getLang, onLangChange } from "./i18n.js";
import { te } from "./i18n_evidence.js";

export const MAX_PER_MESSAGE = 5; // protocol.md: message.send attachments, ≤ 5 ids
export const MAX_BYTES = 10 * 1024 * 1024; // attachment_max_bytes (before processing)
const CACHE_MAX = 120; // blob URLs kept; the oldest are revoked beyond this

/** A refused upload or read, with the contract's code (413 too_large, 415 …). */
export class AttachmentError extends Error {
  constructor(code, message, status = 0) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

/** The refusal in the page's language: the code's sentence (never a bare code); in English the
 * server's message (it names the limit) follows it. */
export function attachmentErrorText(e) {
  const code = e?.code || "other";
  const words = te(`err.${code}`);
  const known = words !== `err.${code}`;
  const base = known ? words : te("err.other");
  if (getLang() === "en" && e?.message && e.message !== code && known && code !== "network") return `${base} (${e.message})`;
  return base;
}

const isRecording = (a) => a.kind === "recording" || String(a.content_type || "").startsWith("video/");

function clockText(s) {
  const n = Math.max(0, Math.round(Number(s) || 0));
  return `${Math.floor(n / 60)}:${String(n % 60).padStart(2, "0")}`;
}

/**
 * One per page: talks to the attachment API with the page's token.
 * ``getToken({refresh})`` is the page's token source (the same the socket uses).
 */
export class Evidence {
  constructor(getToken) {
    this.getToken = getToken;
    this.urls = new Map(); // "id|thumb|inline" → Promise<blob URL>
    this.dialog = null;
    onLangChange(() => this.close()); // its words are the old language's; reopened on a tap
  }

  async _fetch(url, init = {}) {
    for (let attempt = 0; ; attempt++) {
      const token = await this.getToken(attempt ? { refresh: true } : {});
      let r;
      try {
        r = await fetch(url, { ...init, cache: "no-store", headers: { ...(init.headers || {}), Authorization: `Bearer ${token}` } });
      } catch (e) {
        throw new AttachmentError("network", e?.message || String(e));
      }
      if (r.status === 401 && attempt === 0) continue; // a stale token: once more with a new one
      if (r.ok) return r;
      const body = await r.json().catch(() => ({}));
      throw new AttachmentError(body.error || (r.status === 413 ? "too_large" : "other"), body.message || `HTTP ${r.status}`, r.status);
    }
  }

  /**
   * Upload one image to conversation ``cid``; ``source: "call"`` with ``takenAt`` (epoch s)
   * marks a still from a call. Resolves the 201 body ``{attachment, content_type, width,
   * height, bytes, …}``; rejects with an AttachmentError. Files over the size limit are
   * refused here, before a byte goes over a phone's data connection.
   */
  async upload(cid, file, { source, takenAt } = {}) {
    if (file.size > MAX_BYTES) throw new AttachmentError("too_large", `the file is ${file.size} bytes; the limit is ${MAX_BYTES} bytes`, 413);
    const q = source === "call" ? `?source=call&taken_at=${encodeURIComponent(String(takenAt ?? Date.now() / 1000))}` : "";
    const form = new FormData();
    form.append("file", file, file.name || "photo");
    const r = await this._fetch(`/api/conversations/${encodeURIComponent(cid)}/attachments${q}`, { method: "POST", body: form });
    return r.json();
  }

  /** A blob: URL of the attachment (``thumb``: its thumbnail; ``inline``: a recording). */
  url(id, { thumb = false, inline = false } = {}) {
    const key = `${id}|${thumb ? 1 : 0}|${inline ? 1 : 0}`;
    let p = this.urls.get(key);
    if (!p) {
      const q = thumb ? "?thumb=1" : inline ? "?inline=1" : "";
      p = this._fetch(`/api/attachments/${encodeURIComponent(id)}${q}`).then(async (r) => URL.createObjectURL(await r.blob()));
      p.catch(() => this.urls.delete(key));
      this.urls.set(key, p);
      while (this.urls.size > CACHE_MAX) {
        const [old, op] = this.urls.entries().next().value;
        this.urls.delete(old);
        op.then((u) => URL.revokeObjectURL(u), () => {});
      }
    }
    return p;
  }

  /** The caption of an attachment: a still says it is from the call, and when. */
  caption(a) {
    if (isRecording(a)) return te("att.recording.open", { duration: clockText(a.duration_s) });
    if (a.source === "call") return a.taken_at ? te("att.still.at", { time: fmtTime(a.taken_at) }) : te("att.still");
    return te("att.photo");
  }

  /**
   * The thumbnails of a message's ``attachments`` (or of an approval, an audit entry): a
   * button per attachment (photos: the thumbnail image; recordings: a play tile), opening the
   * full view. Rendered again on every render of the chat: the blob URLs are cached.
   */
  thumbs(list, { testid = "attachments" } = {}) {
    const box = h("div.att-list", { testid });
    (list || []).forEach((a, i) => box.append(this.thumb(a, i + 1, list.length)));
    return box;
  }

  thumb(a, n = 1) {
    const rec = isRecording(a);
    const label = rec ? this.caption(a) : a.source === "call" ? this.caption(a) : te("att.open", { n });
    const btn = h(`button.att-thumb${rec ? ".att-rec" : ""}${a.source === "call" ? ".att-still" : ""}`, {
      type: "button", testid: rec ? "recording-item" : "attachment-thumb", title: label, "aria-label": label,
      dataset: { attachment: a.attachment, kind: rec ? "recording" : "image", source: a.source || "upload" },
      on: { click: () => this.open(a, btn) },
    });
    if (rec) {
      btn.append(icon("play"), h("span.att-rec-text", { text: `${te("att.recording")} ${clockText(a.duration_s)}` }));
      return btn;
    }
    const img = h("img", { testid: "attachment-img", alt: label, decoding: "async" });
    if (a.width && a.height) img.style.aspectRatio = `${a.width} / ${a.height}`;
    btn.append(img);
    if (a.source === "call") btn.append(h("span.att-badge", { "aria-hidden": "true" }, icon("camera")));
    this.url(a.attachment, { thumb: true }).then((u) => {
      img.src = u;
      btn.dataset.loaded = "1";
    }, (e) => {
      btn.dataset.error = e.code || "other";
      img.alt = `${label} · ${te("att.unreadable")}`;
    });
    return btn;
  }

  /** The full view: a modal dialog with the image (or the recording's player); Esc, the
   * close button or a click outside close it, and focus goes back to the thumbnail. */
  open(a, opener = null) {
    this.close();
    const rec = isRecording(a);
    const closeBtn = h("button.ghost.att-close", { type: "button", testid: "attachment-close", "aria-label": te("att.close"), title: te("att.close"), on: { click: () => this.close() } }, icon("x"));
    const title = h("h2.att-title#att-dialog-title", { text: this.caption(a) });
    const media = rec
      ? h("video.att-full", { testid: "recording-player", controls: true, preload: "metadata", playsInline: true, "aria-label": this.caption(a) })
      : h("img.att-full", { testid: "attachment-full", alt: this.caption(a) });
    const status = h("p.att-status", { testid: "attachment-status", role: "status", text: te("att.loading") });
    const card = h("div.att-card", {}, h("div.att-head", {}, title, closeBtn), media, status);
    const overlay = h("div.att-overlay", { testid: "attachment-dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "att-dialog-title", dataset: { attachment: a.attachment } }, card);
    overlay.addEventListener("click", (ev) => { if (ev.target === overlay) this.close(); });
    overlay.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        ev.stopPropagation();
        this.close();
      } else if (ev.key === "Tab") {
        ev.preventDefault(); // the dialog is modal: focus stays on its controls
        const items = [closeBtn, ...(rec ? [media] : [])];
        const i = items.indexOf(document.activeElement);
        items[(i + (ev.shiftKey ? items.length - 1 : 1)) % items.length].focus();
      }
    });
    document.body.append(overlay);
    this.dialog = { overlay, opener };
    closeBtn.focus();
    this.url(a.attachment, { inline: rec }).then((u) => {
      if (this.dialog?.overlay !== overlay) return;
      media.src = u;
      status.textContent = "";
      status.classList.add("hidden");
      overlay.dataset.loaded = "1";
    }, (e) => {
      status.textContent = attachmentErrorText(e);
      overlay.dataset.error = e.code || "other";
    });
    return overlay;
  }

  close() {
    if (!this.dialog) return;
    const { overlay, opener } = this.dialog;
    this.dialog = null;
    overlay.remove();
    if (opener && opener.isConnected) opener.focus();
  }
}

/** Every attachment of a conversation's messages, oldest first (the evidence list). */
export function attachmentsOf(messages) {
  const out = [];
  const seen = new Set();
  for (const m of messages) {
    for (const a of m?.attachments || []) {
      if (!a?.attachment || seen.has(a.attachment)) continue;
      seen.add(a.attachment);
      out.push({ ...a, from: m.from, ts: m.ts });
    }
  }
  return out;
}

/**
 * The photo button of a composer: a labelled button in front of a hidden
 * ``<input type=file accept="image/*" multiple>`` (no ``capture`` attribute: with it a phone
 * opens the camera only; without it the phone offers camera *and* gallery), preview chips for
 * the picked photos, each uploaded at once (so sending does not wait for the whole upload),
 * removable before sending. At most MAX_PER_MESSAGE per message.
 *
 * ``conversation()`` resolves the conversation id to upload to (opening one when needed);
 * ``onChange()`` is told when the set of chips changes.
 */
export class PhotoPicker {
  constructor({ evidence, button, input, chips, conversation, onChange = () => {} }) {
    this.evidence = evidence;
    this.button = button;
    this.input = input;
    this.chipsEl = chips;
    this.conversation = conversation;
    this.onChange = onChange;
    this.items = []; // {key, file, preview, status: uploading|ready|failed, attachment, error, promise}
    this.counter = 0;
    button.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      const files = [...(input.files || [])];
      input.value = "";
      this.add(files);
    });
    this.label();
    onLangChange(() => {
      this.label();
      this.render();
    });
  }

  label() {
    this.button.setAttribute("aria-label", te("photo.add"));
    this.button.title = te("photo.add");
    this.input.setAttribute("aria-label", te("photo.input"));
    this.chipsEl.setAttribute("aria-label", te("photo.chips"));
  }

  add(files) {
    const room = MAX_PER_MESSAGE - this.items.length;
    if (files.length > room) toast(te("photo.max", { n: MAX_PER_MESSAGE }), 4000);
    for (const file of files.slice(0, Math.max(0, room))) {
      const it = { key: ++this.counter, file, preview: URL.createObjectURL(file), status: "uploading", attachment: null, error: null };
      it.promise = this._upload(it);
      this.items.push(it);
    }
    this.render();
    this.onChange();
  }

  async _upload(it) {
    try {
      const cid = await this.conversation();
      const r = await this.evidence.upload(cid, it.file);
      it.attachment = { attachment: r.attachment, content_type: r.content_type, width: r.width, height: r.height };
      it.status = "ready";
    } catch (e) {
      it.status = "failed";
      it.error = e;
      toast(attachmentErrorText(e), 5000);
    }
    if (this.items.includes(it)) {
      this.render();
      this.onChange();
    }
  }

  remove(it) {
    this.items = this.items.filter((x) => x !== it);
    URL.revokeObjectURL(it.preview);
    this.render();
    this.onChange();
  }

  get busy() {
    return this.items.some((it) => it.status === "uploading");
  }

  get count() {
    return this.items.length;
  }

  /** Wait for the uploads in flight; the ids of those that made it (failed ones stay as chips). */
  async ready() {
    await Promise.all(this.items.map((it) => it.promise));
    return this.items.filter((it) => it.status === "ready");
  }

  /** The composer now writes to another conversation: photos uploaded to the previous one
   * cannot go there (message.send would refuse them as not_found), so they leave. */
  reset() {
    if (!this.items.length) return;
    this.taken([...this.items]);
  }

  /** Sent: the chips that went with the message leave the composer. */
  taken(items) {
    for (const it of items) URL.revokeObjectURL(it.preview);
    this.items = this.items.filter((x) => !items.includes(x));
    this.render();
    this.onChange();
  }

  render() {
    this.chipsEl.classList.toggle("hidden", !this.items.length);
    this.chipsEl.dataset.count = String(this.items.length);
    this.chipsEl.replaceChildren(...this.items.map((it, i) => {
      const state = te(`photo.${it.status}`);
      const why = it.status === "failed" ? attachmentErrorText(it.error) : state;
      return h(`div.att-chip.${it.status}`, { testid: "photo-chip", dataset: { status: it.status, error: it.error?.code || "" }, title: why },
        h("img", { src: it.preview, alt: `${te("att.photo")} ${i + 1} · ${why}` }),
        h("span.att-chip-state", { text: state }),
        h("button.ghost.att-chip-x", { type: "button", testid: "photo-chip-remove", "aria-label": te("photo.remove", { n: i + 1 }), title: te("photo.remove", { n: i + 1 }), on: { click: () => this.remove(it) } }, icon("x")));
    }));
    this.button.disabled = this.items.length >= MAX_PER_MESSAGE;
  }
}

/**
 * A still of a rendered <video>: the frame on screen, at the size it was decoded, as a
 * JPEG blob (docs/media.md#stills-from-a-call: made where the frame is rendered).
 */
export async function stillOf(video, quality = 0.92) {
  const w = video?.videoWidth || 0;
  const hgt = video?.videoHeight || 0;
  if (!w || !hgt) return null;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = hgt;
  canvas.getContext("2d").drawImage(video, 0, 0, w, hgt);
  const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", quality));
  return blob ? new File([blob], "still.jpg", { type: "image/jpeg" }) : null;
}
