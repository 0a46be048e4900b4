// Agent alerts: a desktop notification and a short sound for a new assignment and for a
// ringing call, repeated while a ring is unanswered. Why a module of its own: the console
// decides *when* to alert; how (permission, Notification, WebAudio beep, re-notify timer)
// is one small thing with its own rules, testable by overriding window.Notification.
//
// Rules (docs/workspace.md, "Agent alerts"):
//  - permission is asked on the first user gesture on the page (browsers ignore or
//    penalise a prompt without one) and from the header's "Enable alerts" button;
//  - a ring re-notifies every ``reringMs`` (10 s) until it is answered, declined or ends
//    (the gateway drops an unanswered ring after ring_timeout_s, 30 s: three alerts);
//  - without permission the sound and the title badge still work;
//  - a ring's tone stops the moment the ring does (answered, declined, gone), and the page's
//    AudioContext is suspended whenever no tone plays: a running context renders silence
//    through the browser's audio service for as long as the page is open — CPU the agent's
//    machine needs during the call that follows (benchmarks/call_setup.py, docs/performance.md
//    "Call set-up").

export class Alerts {
  constructor({ reringMs = 10_000, onClick = null } = {}) {
    this.reringMs = reringMs;
    this.onClick = onClick;
    this.ring = null; // {key, title, body, timer}
    this.audio = null;
    this.voices = new Map(); // oscillator → its tone ("ring" | "assign"), while scheduled
    this.sent = []; // what was notified (for the page's own diagnostics): [{title, body, tag, at}]
  }

  get supported() {
    return typeof window.Notification === "function";
  }

  get permission() {
    return this.supported ? window.Notification.permission : "unsupported";
  }

  /** Ask for permission (call from a user gesture). Resolves the resulting permission. */
  async ask() {
    if (!this.supported || this.permission !== "default") return this.permission;
    try {
      await window.Notification.requestPermission();
    } catch (e) {
      console.warn("notification permission", e);
    }
    return this.permission;
  }

  /** Ask once, on the first click or key press anywhere on the page. */
  askOnFirstGesture(onResult) {
    const once = async () => {
      window.removeEventListener("pointerdown", once, true);
      window.removeEventListener("keydown", once, true);
      const p = await this.ask();
      if (onResult) onResult(p);
    };
    window.addEventListener("pointerdown", once, true);
    window.addEventListener("keydown", once, true);
  }

  /** Notify now: a desktop notification (when permitted) and a beep. */
  notify({ title, body = "", tag = undefined, tone = "assign" }) {
    this.sent.push({ title, body, tag, at: Date.now() });
    this.beep(tone);
    if (this.permission !== "granted") return null;
    try {
      const n = new window.Notification(title, { body, tag, renotify: !!tag });
      n.onclick = () => {
        window.focus();
        if (this.onClick) this.onClick(tag);
        n.close?.();
      };
      return n;
    } catch (e) {
      console.warn("notification failed", e);
      return null;
    }
  }

  /**
   * The ringing call, or null when nothing rings. A new ring notifies at once and then every
   * ``reringMs`` while it is still the same ring.
   */
  ringing(r) {
    if (!r) {
      if (this.ring) {
        clearInterval(this.ring.timer);
        this.hush("ring");
      }
      this.ring = null;
      return;
    }
    if (this.ring && this.ring.key === r.key) {
      Object.assign(this.ring, { title: r.title, body: r.body });
      return;
    }
    if (this.ring) clearInterval(this.ring.timer);
    const ring = { ...r, count: 0 };
    const fire = () => {
      ring.count++;
      this.notify({ title: ring.title, body: ring.body, tag: `ring-${ring.key}`, tone: "ring" });
    };
    ring.timer = setInterval(fire, this.reringMs);
    this.ring = ring;
    fire();
  }

  /** A short tone with WebAudio (no sound file to load, nothing to fail on). */
  beep(tone = "assign") {
    try {
      this.audio ||= new AudioContext();
      const ctx = this.audio;
      if (ctx.state === "suspended") ctx.resume().catch(() => {});
      const notes = tone === "ring" ? [880, 660, 880] : [660, 990];
      notes.forEach((f, i) => {
        const o = ctx.createOscillator();
        const g = ctx.createGain();
        o.frequency.value = f;
        const at = ctx.currentTime + i * 0.16;
        g.gain.setValueAtTime(0.0001, at);
        g.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, at + 0.14);
        o.connect(g).connect(ctx.destination);
        this.voices.set(o, tone);
        o.onended = () => this._ended(o);
        o.start(at);
        o.stop(at + 0.15);
      });
    } catch {
      // no audio output: the notification and the title badge remain
    }
  }

  /** Stop every scheduled note of ``tone`` now (a ring answered mid-tone goes quiet). */
  hush(tone) {
    for (const [o, t] of this.voices) {
      if (t !== tone) continue;
      try {
        o.stop();
        o.disconnect();
      } catch {
        // already stopped or never started: it is dropped below all the same
      }
      this._ended(o);
    }
  }

  _ended(o) {
    o.onended = null;
    this.voices.delete(o);
    if (!this.voices.size && this.audio && this.audio.state === "running") this.audio.suspend().catch(() => {});
  }
}
