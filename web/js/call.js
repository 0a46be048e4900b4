// Browser side of LiveDesk calls, reused by the viewer widget, agent console and host panel.
//
// Negotiation rules (protocol v1):
//  - the requester sends its FIRST rtc.offer as soon as call.state says "ringing" (early
//    media: its connection is up when the callee answers; TURN credentials come only with
//    "connecting", and an early connection not up by then is offered again with them);
//    the accepter right after call.accept is acknowledged, a joiner after call.join;
//  - the gateway's answer to our offer takes our media and may already send the other
//    side's media on our own m-lines (sendrecv; its `tracks` names them); any further remote
//    track arrives on m-lines the gateway adds in its own rtc.offer, which may come right
//    behind that answer (messages are applied in order, see _chain);
//  - after that only the gateway offers (participants joining/leaving); we answer with
//    rtc.answer. The gateway is the impolite peer: if its offer meets ours, we roll back;
//  - trickle ICE: every local candidate goes out as rtc.candidate, "" marks the end;
//  - after a resumed socket the peer connection is rebuilt and re-offered (aiortc has no
//    ICE restart: the gateway rebuilds its side too).
//
// CallManager holds the state; CallView renders one call (self view, remote views, mute,
// camera off, hang up, timer, reconnecting indicator) into a container.

import { t } from "./i18n.js";
import { h, icon, setText, errorWords, reasonLabel, toast, toastError } from "./common.js";
import { te } from "./i18n_evidence.js";
import { stillOf } from "./evidence.js";

// wall-clock milliseconds, comparable across pages (benchmarks compare tap and first frame)
const now = () => performance.timeOrigin + performance.now();

/** Why a call could not start, in words: not_found means its conversation (or the call) is
 * gone, e.g. in a server restart; never the server's raw message. */
function callErrorWords(e) {
  return e?.code === "not_found" ? t("call.failed.gone") : errorWords(e);
}

/** Does an ice_servers list (call.state's) hold a TURN server? */
function hasTurn(servers) {
  return (servers || []).some((sv) => [].concat(sv.urls || sv.url || []).some((u) => /^turns?:/.test(u)));
}

export class CallManager {
  constructor(client, { onChange, log } = {}) {
    this.client = client;
    this.onChange = onChange || (() => {});
    this.log = log || (() => {});
    this.call = null; // the call we are in (or dialling)
    this.incoming = null; // a call.incoming we have not answered yet
    this.local = null; // MediaStream
    this.localPromise = null;
    this.pc = null;
    this.remotes = new Map(); // mid → {track, kind, stream, mid}
    this.audioMuted = false;
    this.videoOff = false;
    this.mediaError = null;
    this.pcState = "new";
    this.marks = {}; // timing marks for benchmarks (now())
    this.trackOwners = new Map(); // mid → user (rtc.offer/answer "tracks" extension)
    this._negotiated = false;
    this._holdTimer = null; // a held render's cap (_hold)
    this._holdFor = null; // what it waits for: "media" | "offer"
    // the call's recording (call.recording / call.state recording): null, or {state:
    // "requested"|"recording", by, startedAt}; every page shows the indicator from it
    this.recording = null;

    client.on("call.incoming", (f) => this._onIncoming(f));
    client.on("call.state", (f) => this._onState(f));
    client.on("call.recording", (f) => this._onRecording(f));
    // negotiation steps run one at a time, in arrival order
    this._chain = Promise.resolve();
    client.on("rtc.answer", (f) => this._serial(() => this._onAnswer(f)));
    client.on("rtc.offer", (f) => this._serial(() => this._onOffer(f)));
    this._skipAnswer = false; // the answer to an early offer we replaced (see _turnRebuild)
    client.on("resumed", () => this._onResumed());
    client.on("fresh", () => this._teardown("connection_lost"));
    client.onState((s) => {
      if (this.call) this._changed();
    });
  }

  /** Run a negotiation step after the ones before it (messages apply in arrival order). */
  _serial(fn) {
    this._chain = this._chain.then(fn).catch((e) => this.log(e));
  }

  /** Is our media connection down (the page shows "reconnecting")? */
  get troubled() {
    return this.pcState === "disconnected" || this.pcState === "failed";
  }

  get inCall() {
    return !!this.call && this.call.state !== "ended";
  }

  /** Tap "video call" / "voice call": ask for the call and get the camera in parallel. */
  async request(conversation, video) {
    if (this.inCall) return this.call;
    this.marks = { tap: now() };
    if (!this.local) this._hold("media");
    this._getMedia(video); // the camera starts first: the re-render below takes a while
    this.call = { id: null, conversation, video, state: "ringing", participants: [], mine: "requester", startedAt: null };
    this._changed();
    try {
      const r = await this.client.request("call.request", { conversation, video });
      const id = r.call || r.call_id;
      if (this.call && !this.call.id) this.call.id = id;
      if (r.type === "call.state") this._onState(r);
      // early media: offer while it rings, so our connection is up when they answer
      if (this.call?.id && this.call.state === "ringing" && !this.pc) {
        this._offer().catch((e) => this.log("offer failed", e));
      }
      this._changed();
      return this.call;
    } catch (e) {
      this._teardown("error", callErrorWords(e));
      throw e;
    }
  }

  /** Accept (agent/viewer) or join (host) the incoming call. */
  async accept() {
    const inc = this.incoming;
    if (!inc) return;
    this.incoming = null;
    this.marks = { accept: now() };
    const join = inc.join ?? this.client.role === "host";
    // the camera starts first: the page's re-render below takes longer than the request
    this._getMedia(inc.video !== false);
    this.call = {
      id: inc.call, conversation: inc.conversation, video: inc.video !== false, state: "connecting",
      participants: inc.participants || [], mine: join ? "joiner" : "accepter", startedAt: null,
    };
    try {
      const request = this.client.request(join ? "call.join" : "call.accept", { call: inc.call });
      // the connection and its offer are built while the request is out; the offer is
      // applied (ICE gathering starts there, with the TURN servers the reply brings) and
      // sent once the call is ours
      const built = this._build();
      this._hold("offer");
      this._changed();
      const r = await request;
      if (r.type === "call.state") this._onState(r);
      await this._offer(built);
    } catch (e) {
      this._teardown("error", callErrorWords(e));
      throw e;
    }
  }

  async decline() {
    const inc = this.incoming;
    if (!inc) return;
    this.incoming = null;
    this._changed();
    const join = inc.join ?? this.client.role === "host";
    try {
      await this.client.request("call.decline", { call: inc.call });
    } catch (e) {
      if (!join) this.log("decline failed", e);
    }
  }

  async hangup() {
    const c = this.call;
    if (!c) return;
    this._teardown("hangup");
    if (c.id) {
      try {
        await this.client.request("call.hangup", { call: c.id });
      } catch (e) {
        this.log("hangup failed", e);
      }
    }
  }

  async invite(user) {
    if (!this.call?.id) throw new Error("no call");
    return this.client.request("call.invite", { call: this.call.id, user });
  }

  toggleMute() {
    this.audioMuted = !this.audioMuted;
    for (const tr of this.local?.getAudioTracks() || []) tr.enabled = !this.audioMuted;
    if (this.call?.id) this.client.send("call.mute", { call: this.call.id, audio: !this.audioMuted });
    this._changed();
  }

  toggleCamera() {
    this.videoOff = !this.videoOff;
    for (const tr of this.local?.getVideoTracks() || []) tr.enabled = !this.videoOff;
    if (this.call?.id) this.client.send("call.mute", { call: this.call.id, video: !this.videoOff });
    this._changed();
  }

  /** The agent asks to record (``start``), or anyone stops or cancels (``stop``). */
  async record(action) {
    if (!this.call?.id) return;
    const r = await this.client.request("call.record", { call: this.call.id, action });
    if (r?.type === "call.recording") this._onRecording(r);
  }

  /** The viewer's answer to a recording request: nothing is recorded before ``true``. */
  async consent(accept) {
    if (!this.call?.id) return;
    const r = await this.client.request("call.record.consent", { call: this.call.id, accept });
    if (r?.type === "call.recording") this._onRecording(r);
  }

  _onRecording(f) {
    if (!this.call || f.call !== this.call.id) return;
    const was = this.recording?.state;
    if (f.state === "requested" || f.state === "recording") {
      this.recording = { state: f.state, by: f.by || this.recording?.by, startedAt: f.started_at || null };
    } else {
      this.recording = null;
    }
    // the outcome as a line for the page (declined, stopped, saved, failed), once
    if (!(f.state === "requested" || f.state === "recording") || was !== f.state) this.lastRecordingEvent = { ...f };
    this._changed();
  }

  /** Active remote video tracks, in m-line order. */
  remoteVideos() {
    return [...this.remotes.values()].filter((r) => r.kind === "video");
  }

  // --- events -----------------------------------------------------------------------------
  _onIncoming(f) {
    if (this.call && this.call.id === f.call) return;
    this.incoming = { ...f, join: f.invited ?? (this.client.role === "host" ? true : undefined) };
    this._changed();
  }

  _onState(f) {
    if (this.incoming && this.incoming.call === f.call && f.state === "ended") {
      this.incoming = null;
      this.lastEnded = { reason: f.reason };
      this._changed();
      return;
    }
    const c = this.call;
    if (!c) return;
    if (!c.id && c.mine === "requester" && (!f.conversation || f.conversation === c.conversation)) c.id = f.call;
    if (c.id !== f.call) return;
    const prev = c.state;
    c.state = f.state;
    if (f.participants) c.participants = f.participants;
    if (f.ice_servers) c.iceServers = f.ice_servers;
    if (f.reason) c.reason = f.reason;
    if (f.state === "active" && !c.startedAt) c.startedAt = Date.now();
    // call.state carries ``recording`` while one is requested or running (a reloaded page
    // shows the indicator again); without it there is none
    if (f.recording === "requested" || f.recording === "recording") {
      if (this.recording?.state !== f.recording) this.recording = { state: f.recording, by: this.recording?.by, startedAt: this.recording?.startedAt || null };
    } else if (f.state) {
      this.recording = null;
    }
    if (f.state === "ended") {
      this._teardown(f.reason || "hangup");
      return;
    }
    if (f.state === "connecting" && prev === "ringing" && c.mine === "requester") {
      if (!this.pc) this._offer().catch((e) => this.log("offer failed", e));
      else if (hasTurn(f.ice_servers)) this._serial(() => this._turnRebuild());
    }
    this._changed();
  }

  /** Our early offer (made while ringing, with the welcome's STUN servers only) is not up
   * yet and call.state connecting brought TURN: offer again on a connection that can use
   * them (aiortc has no ICE restart; the gateway rebuilds its side). The gateway answers
   * every offer of a socket in order, so an early answer still to come precedes the new
   * one: it is skipped. */
  async _turnRebuild() {
    if (!this.pc || !this.call || this.pc.connectionState === "connected") return;
    // skip the early answer only if our early offer went out (it may still be in the making)
    this._skipAnswer = this._offerSent && !this._negotiated;
    this._closePc();
    await this._offer();
  }

  async _onAnswer(f) {
    if (!this.pc || !this.call || f.call !== this.call.id) return;
    if (this._skipAnswer) {
      this._skipAnswer = false;
      return;
    }
    this._noteTracks(f.tracks);
    try {
      await this.pc.setRemoteDescription({ type: "answer", sdp: f.sdp });
      this._negotiated = true;
      this._reconcile();
    } catch (e) {
      this.log("setRemoteDescription(answer) failed", e);
    }
  }

  async _onOffer(f) {
    if (!this.call || f.call !== this.call.id) return;
    if (!this.pc) this._makePc();
    const pc = this.pc;
    this._noteTracks(f.tracks);
    try {
      if (pc.signalingState === "have-local-offer") {
        await pc.setLocalDescription({ type: "rollback" }); // the gateway wins (we are polite)
      }
      await pc.setRemoteDescription({ type: "offer", sdp: f.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      this.client.send("rtc.answer", { call: this.call.id, sdp: pc.localDescription.sdp });
      this._negotiated = true;
      this._reconcile();
    } catch (e) {
      this.log("answering the gateway's offer failed", e);
    }
  }

  _noteTracks(tracks) {
    for (const tr of tracks || []) {
      if (tr.mid == null || this.trackOwners.get(String(tr.mid)) === tr.user) continue;
      this.trackOwners.set(String(tr.mid), tr.user);
      this._changed(); // a tile's name
    }
  }

  /** The participant whose media arrives on m-line ``mid`` (when the gateway says). */
  ownerOf(mid) {
    const user = this.trackOwners.get(String(mid));
    return (this.call?.participants || []).find((p) => p.user === user) || (user ? { user } : null);
  }

  _onResumed() {
    if (!this.inCall || !this.pc) return;
    // aiortc cannot ICE-restart: rebuild our peer connection and offer afresh.
    this._closePc();
    this._offer().catch((e) => this.log("re-offer after resume failed", e));
    this._changed();
  }

  // --- media and peer connection ---------------------------------------------------------
  _getMedia(video) {
    if (!this.localPromise) {
      this.localPromise = navigator.mediaDevices
        .getUserMedia({ audio: true, video: video ? { width: 640, height: 480 } : false })
        .then((s) => {
          this.local = s;
          for (const tr of s.getAudioTracks()) tr.enabled = !this.audioMuted;
          for (const tr of s.getVideoTracks()) tr.enabled = !this.videoOff;
          this._releaseHold("media");
          this._changed();
          return s;
        })
        .catch((e) => {
          this.mediaError = e.message || String(e);
          this._releaseHold("media");
          this._changed();
          return null;
        });
    }
    return this.localPromise;
  }

  _iceServers() {
    // TURN credentials come only with the call (call.state connecting, expiring with it);
    // welcome's ice_servers are STUN only.
    return this.call?.iceServers || this.client.welcome?.ice_servers || [];
  }

  _makePc() {
    const pc = new RTCPeerConnection({ iceServers: this._iceServers(), bundlePolicy: "max-bundle" });
    this.pc = pc;
    this.remotes = new Map();
    this.trackOwners = new Map();
    this._negotiated = false;
    this._offerSent = false;
    pc.onicecandidate = (ev) => {
      if (!this.call?.id || this.pc !== pc) return;
      const c = ev.candidate;
      this.client.send("rtc.candidate", {
        call: this.call.id,
        candidate: c ? c.candidate : "",
        sdpMid: c ? c.sdpMid : null,
        sdpMLineIndex: c ? c.sdpMLineIndex : null,
      });
    };
    pc.ontrack = (ev) => {
      const mid = ev.transceiver?.mid ?? ev.track.id;
      this.remotes.set(mid, { track: ev.track, kind: ev.track.kind, mid, stream: new MediaStream([ev.track]), streamId: ev.streams[0]?.id });
      if (!this.marks.track) this.marks.track = now();
      ev.track.addEventListener("ended", () => this._reconcile());
      this._changed();
    };
    pc.onconnectionstatechange = () => {
      const was = this.troubled;
      this.pcState = pc.connectionState;
      // only the reconnecting indicator shows the connection's state: render when it turns
      // (new → connecting → connected is three renders less of a call's set-up)
      if (this.troubled !== was) this._changed();
    };
    return pc;
  }

  /** Send our first offer, on the connection :meth:`_build` made (``built``) or a new one. */
  async _offer(built = null) {
    if (!this.call) return;
    const { pc, offer } = built || this._build();
    let desc;
    try {
      desc = await offer;
    } catch (e) {
      if (this.pc === pc) throw e;
      return; // replaced meanwhile
    }
    if (this.pc !== pc || !this.call) return;
    const iceServers = this._iceServers();
    if (JSON.stringify(iceServers) !== JSON.stringify(pc.getConfiguration().iceServers || [])) {
      // the TURN servers came with call.state after the connection was made: before
      // setLocalDescription they are the ones its ICE gathering uses
      pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
    }
    // No SDP munging: the gateway answers with our own numbering and keeps our payload
    // types and header-extension ids in all its later offers (docs/media.md).
    await pc.setLocalDescription(desc);
    if (this.pc !== pc || !this.call) return;
    this.marks.offer = now();
    this._offerSent = true;
    this.client.send("rtc.offer", { call: this.call.id, sdp: pc.localDescription.sdp });
    this._releaseHold("offer");
    // nothing on screen shows that an offer went out: no render
  }

  /** A new connection with our media (or empty slots for it) and its offer, not applied. */
  _build() {
    const video = this.call.video;
    const media = this._getMedia(video);
    const pc = this._makePc();
    if (this.local) {
      // the camera and microphone are already on: their tracks go into the offer
      const stream = this.local;
      for (const tr of stream.getTracks()) pc.addTrack(tr, stream);
      // make sure we can receive even without a camera/microphone
      if (!stream.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
      if (video && !stream.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
    } else {
      // Not yet (getUserMedia takes 30–70 ms even with a fake device, and the accepter
      // starts it only at the tap): negotiate now on empty sendrecv transceivers and attach
      // the tracks with replaceTrack when they come — no new offer/answer round, and the
      // offer, ICE and DTLS run while the camera starts (benchmarks/call_setup.py --trace).
      const slots = [pc.addTransceiver("audio", { direction: "sendrecv" })];
      if (video) slots.push(pc.addTransceiver("video", { direction: "sendrecv" }));
      media.then((stream) => this._attach(pc, slots, stream));
    }
    const offer = pc.createOffer();
    offer.catch(() => {}); // a call that failed before the offer was wanted: nobody awaits it
    return { pc, offer };
  }

  /** The local tracks onto the transceivers negotiated before getUserMedia resolved. A
   * kind the device did not give (no camera, refused) stays empty and turns receive-only
   * from the next negotiation on (only the gateway offers after the first round). */
  _attach(pc, slots, stream) {
    if (this.pc !== pc) return;
    for (const t of slots) {
      const kind = t.receiver.track.kind;
      const track = stream && (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0];
      if (track) {
        t.sender.replaceTrack(track).catch((e) => this.log("attaching the local track failed", e));
        if (t.sender.setStreams) t.sender.setStreams(stream);
      } else {
        t.direction = "recvonly";
      }
    }
  }

  _reconcile() {
    if (!this.pc) return;
    const before = new Set(this.remotes.keys());
    const live = new Set();
    for (const tr of this.pc.getTransceivers()) {
      const d = tr.currentDirection;
      if (tr.mid != null && (d === "sendrecv" || d === "recvonly") && tr.receiver.track.readyState === "live") {
        live.add(tr.mid);
        if (!this.remotes.has(tr.mid)) {
          const track = tr.receiver.track;
          this.remotes.set(tr.mid, { track, kind: track.kind, mid: tr.mid, stream: new MediaStream([track]) });
        }
      }
    }
    for (const mid of [...this.remotes.keys()]) if (!live.has(mid)) this.remotes.delete(mid);
    // a render only for a track come or gone (ontrack renders the ones it adds itself)
    if (this.remotes.size !== before.size || [...before].some((mid) => !this.remotes.has(mid))) this._changed();
  }

  _closePc() {
    if (this.pc) {
      try {
        this.pc.close();
      } catch {}
    }
    this.pc = null;
    this.remotes = new Map();
    this.pcState = "new";
  }

  _teardown(reason, message) {
    this._closePc();
    if (this.local) for (const tr of this.local.getTracks()) tr.stop();
    this.local = null;
    this.localPromise = null;
    if (this.call) this.lastEnded = { reason, message, call: this.call.id };
    this.call = null;
    this.recording = null;
    this.audioMuted = false;
    this.videoOff = false;
    this._releaseHold();
    this._changed();
  }

  /** Hold the page's renders of a call until ``reason`` is over, at most MEDIA_HOLD_MS; the
   * call's state changes at once and its signalling goes on, only drawing waits. It ends at
   * its own event (``_releaseHold(reason)``: a camera's answer does not end a hold for the
   * offer), at the cap, or at a teardown (``_releaseHold()``).
   *
   * - ``"media"`` (a call we ask for): until our camera and microphone are on (or
   *   refused). The window opens with the self view live instead of being drawn, laid out
   *   and painted while the camera starts: on a phone's CPU the capture service's start and
   *   the window's first renders compete, and our camera is what the other side's first
   *   frame waits for — getUserMedia took ~180 ms in the widget against ~90 ms in a bare
   *   page, ~120 ms with the renders held. The cap covers a permission prompt or a slow
   *   camera: the window then opens without them.
   * - ``"offer"`` (a call we accept or join): until our first offer is out. The accept's
   *   render is the console's biggest (the call's window, its tiles and controls, the
   *   conversation's layout around them) and it ran as the offer was being made: under
   *   --cpu-quota 0.4 the agent's createOffer took 83 ms against 12 in a bare page and its
   *   offer went out 189 ms after the tap; held, 139 ms. The offer needs no camera (empty
   *   transceivers, _build): ~20 ms on a fast machine; the cap covers a slow accept round
   *   trip. An accepter is never held for its camera: its window shows the caller, whose
   *   media already flow (early media), and that hold (tried) held the remote picture's
   *   first frame too; the remote tracks come only with the answer to this offer.
   *
   * (benchmarks/call_setup.py --trace, docs/performance.md "Call set-up".) */
  _hold(reason) {
    if (this._holdTimer) return;
    this._holdFor = reason;
    this._holdTimer = setTimeout(() => this._releaseHold(), MEDIA_HOLD_MS);
  }

  /** End the hold: the held render is scheduled now. With a ``reason``, only a hold for it. */
  _releaseHold(reason = null) {
    if (!this._holdTimer || (reason && reason !== this._holdFor)) return;
    clearTimeout(this._holdTimer);
    this._holdTimer = null;
    this._holdFor = null;
    if (this._renderPending) {
      this._renderPending = false; // the held render: scheduled again, now
      this._changed();
    }
  }

  /** Tell the page the call changed — once per frame, however many changes the frame saw.
   * A call's set-up is ~20 changes in its first 300 ms (each message, description and
   * connection state); rendering each at once kept both pages' main threads busy while
   * their camera and connection steps waited behind them (benchmarks/call_setup.py). The
   * state itself changes at once; only the page's render is coalesced. A timer backs the
   * frame up: a hidden tab gets no frames, and its <audio> elements must still be attached. */
  _changed() {
    if (this._renderPending) return;
    this._renderPending = true;
    const run = () => {
      if (!this._renderPending || this._holdTimer) return; // held: _releaseHold renders
      this._renderPending = false;
      try {
        this.onChange(this);
      } catch (e) {
        console.error(e);
      }
    };
    if (document.visibilityState !== "hidden") requestAnimationFrame(run);
    setTimeout(run, RENDER_FALLBACK_MS);
  }
}

/** The longest a call change waits for its render when no frame comes (a hidden tab). */
const RENDER_FALLBACK_MS = 100;

/** How long after a call's window first shows its speaking meters start (CallView.render,
 * SpeakingMeter.notBefore). */
const METER_DELAY_MS = 500;

/** The longest a starting call's window is held (CallManager._hold): for the camera,
 * Chromium's fake camera started in 90–250 ms from cold on the benchmark's machine and a
 * permission prompt takes longer (the window then opens without them); for an accepter's
 * offer, ~20 ms on a fast machine and 100–150 ms under --cpu-quota 0.4. */
const MEDIA_HOLD_MS = 400;

function pad(n) {
  return String(n).padStart(2, "0");
}

export function fmtTimer(ms) {
  const s = Math.floor(ms / 1000);
  return `${pad(Math.floor(s / 60))}:${pad(s % 60)}`;
}

/**
 * Audio level → "speaking" for the call tiles: one AnalyserNode per audio track (WebAudio),
 * sampled a few times a second. Why not the RTP audio-level extension: the gateway relays
 * media as it comes and the browser only exposes levels per receiver in getStats, which
 * lags; an analyser on the track the page already plays is immediate and costs little.
 */
export class SpeakingMeter {
  constructor({ threshold = 0.02, intervalMs = 150 } = {}) {
    this.threshold = threshold;
    this.intervalMs = intervalMs;
    this.ctx = null;
    this.meters = new Map(); // key → {track, analyser, source, buf, level}
    this.timer = null;
    this.onLevels = null;
    this.notBefore = 0; // performance.now() ms before which no analyser (no AudioContext) starts
    this._later = null;
  }

  /** Keep exactly the tracks of ``want`` (key → MediaStreamTrack) analysed — from
   * ``notBefore`` on: until then the latest ``want`` waits (a page's first AudioContext is
   * a long main-thread task, see CallView.render). */
  sync(want) {
    clearTimeout(this._later);
    this._later = null;
    const wait = this.notBefore - performance.now();
    if (wait > 0 && want.size) {
      this._later = setTimeout(() => this.sync(want), wait);
      return;
    }
    for (const [key, m] of this.meters) {
      if (want.get(key) !== m.track) {
        try { m.source.disconnect(); } catch {}
        this.meters.delete(key);
      }
    }
    for (const [key, track] of want) {
      if (this.meters.has(key) || !track || track.readyState !== "live") continue;
      try {
        this.ctx ||= new AudioContext();
        const source = this.ctx.createMediaStreamSource(new MediaStream([track]));
        const analyser = this.ctx.createAnalyser();
        analyser.fftSize = 512;
        source.connect(analyser); // not to the destination: the <audio> elements play it
        this.meters.set(key, { track, analyser, source, buf: new Float32Array(analyser.fftSize), level: 0 });
      } catch (e) {
        console.warn("no audio meter", e);
      }
    }
    if (this.meters.size && !this.timer) this.timer = setInterval(() => this._sample(), this.intervalMs);
    if (!this.meters.size && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  _sample() {
    if (this.ctx && this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
    const out = new Map();
    for (const [key, m] of this.meters) {
      m.analyser.getFloatTimeDomainData(m.buf);
      let sum = 0;
      for (const v of m.buf) sum += v * v;
      m.level = Math.sqrt(sum / m.buf.length);
      out.set(key, m.level);
    }
    if (this.onLevels) this.onLevels(out);
  }

  speaking(key) {
    const m = this.meters.get(key);
    return !!m && m.level > this.threshold;
  }
}

/** "小王 · 观众": a participant's display name and role, as every tile and bar shows them. */
export function participantLabel(p) {
  if (!p) return "";
  const role = p.role ? t(`role.${p.role}`) : "";
  const name = p.name || p.user || "";
  return role && name ? `${name} · ${role}` : name || role;
}

function initial(p) {
  return [...String(p?.name || p?.user || "?")][0].toUpperCase();
}

/** A control of the call bar: an icon, a visible label and an accessible name. */
function ctrl(testid, iconName, cls, onClick) {
  const b = h(`button.cbtn${cls}`, { testid, type: "button", on: { click: onClick } });
  b._icon = iconName;
  return b;
}

function setCtrl(b, iconName, label, { pressed } = {}) {
  if (b.dataset.icon !== iconName || b.dataset.label !== label) {
    b.dataset.icon = iconName;
    b.dataset.label = label;
    b.replaceChildren(icon(iconName), h("span.cl", { text: label }));
  }
  b.setAttribute("aria-label", label);
  b.title = label;
  if (pressed !== undefined) b.setAttribute("aria-pressed", String(pressed));
}

/**
 * Renders a CallManager's current call into `root`. Keeps <video> elements across renders
 * so playback is not interrupted. `extraControls(el, call)` adds page-specific controls
 * (e.g. the agent's host picker).
 *
 * Layout rules (docs/media.md, "Call UI"): the self view is a tile of the grid like the
 * others, so it never covers a remote picture; every tile is labelled with the person's
 * display name and role; a participant whose camera is off is an avatar with "camera off";
 * a voice call is a compact bar of avatars with the timer; a ring shows who speaks from the
 * audio level (SpeakingMeter).
 */
export class CallView {
  constructor(root, mgr, { extraControls, onStill } = {}) {
    this.root = root;
    this.mgr = mgr;
    this.extraControls = extraControls;
    // evidence (issue 19): ``onStill(file, takenAt)`` stores a still of the viewer's picture
    // (the agent's page) or of one's own camera (the viewer's page); without it, no button
    this.onStill = onStill;
    this.videos = new Map(); // mid → tile element
    this.audios = new Map();
    this.meter = new SpeakingMeter();
    this.meter.onLevels = () => this._renderSpeaking();
    root.classList.add("call");
    root.dataset.testid = "call-view";
    root.setAttribute("role", "region");
    this.status = h("span.status", { testid: "call-status", role: "status" });
    this.timer = h("span.timer", { testid: "call-timer", text: "00:00" });
    this.parts = h("span.parts", { testid: "call-participants" });
    this.remotesEl = h("div.remotes", { testid: "call-remotes" });
    this.selfVideo = h("video", { autoplay: true, muted: true, playsInline: true, testid: "self-video" });
    this.selfVideo.muted = true;
    this.selfAvatar = h("div.avatar-off", { testid: "self-camera-off" });
    this.selfLabel = h("span.label", { testid: "self-label" });
    this.selfEl = h("div.tile.self", { testid: "self-tile" }, this.selfVideo, this.selfAvatar, this.selfLabel);
    this.voiceBar = h("div.voicebar", { testid: "call-voicebar" });
    this.reconnecting = h("div.reconnecting.hidden", { testid: "call-reconnecting", role: "status" }, h("span", { text: t("call.reconnecting") }));
    this.muteBtn = ctrl("call-mute", "mic", "", () => mgr.toggleMute());
    this.camBtn = ctrl("call-camera", "video", "", () => mgr.toggleCamera());
    this.hangBtn = ctrl("call-hangup", "phoneoff", ".danger", () => mgr.hangup());
    this.extra = h("span.extra");
    // recording (docs/protocol.md#recording-a-call): the indicator on every participant's
    // page, the viewer's consent prompt, the agent's record button; a still button
    this.recIndicator = h("span.rec-indicator.hidden", { testid: "recording-indicator", role: "status" });
    this.consentEl = h("div.rec-consent.hidden", { testid: "recording-consent", role: "alertdialog", "aria-modal": "false", "aria-labelledby": "rec-consent-title", "aria-describedby": "rec-consent-text" });
    this.recBtn = ctrl("call-record", "rec", ".rec", () => this._toggleRecord());
    this.stillBtn = ctrl("call-still", "camera", "", () => this._takeStill());
    root.replaceChildren(
      h("div.call-top", {}, this.recIndicator, this.status, this.parts, this.timer),
      this.consentEl,
      this.reconnecting,
      this.remotesEl,
      this.voiceBar,
      h("div.controls", { testid: "call-controls" }, this.muteBtn, this.camBtn, this.stillBtn, this.recBtn, this.extra, this.hangBtn),
      h("div.audios.hidden"),
    );
    this.audioBox = root.querySelector(".audios");
    this._tick = setInterval(() => this._renderTimer(), 500);
  }

  render() {
    const mgr = this.mgr;
    const c = mgr.call;
    this.root.classList.toggle("hidden", !c);
    if (!c) {
      for (const el of this.videos.values()) el.remove();
      this.videos.clear();
      for (const el of this.audios.values()) el.remove();
      this.audios.clear();
      this.selfVideo.srcObject = null;
      this._shown = false;
      this.meter.sync(new Map());
      return;
    }
    if (!this._shown) {
      // speaking meters from METER_DELAY_MS after the call's window first shows: a page's
      // first AudioContext took its main thread 250 ms on the benchmark's phone CPU, just as
      // the camera's first frame was being captured and sent (call_setup.py --trace)
      this._shown = true;
      this.meter.notBefore = performance.now() + METER_DELAY_MS;
    }
    this.root.dataset.state = c.state;
    this.root.dataset.kind = c.video ? "video" : "voice";
    this.root.classList.toggle("voice", !c.video);
    this.root.setAttribute("aria-label", t(c.video ? "call.region.video" : "call.region.voice"));
    setText(this.status, t(`call.${c.state}`) || c.state);
    const me = (c.participants || []).find((p) => p.user === mgr.client.user) || { user: mgr.client.user, name: mgr.client.welcome?.name, role: mgr.client.role };
    const others = (c.participants || []).filter((p) => p.user !== mgr.client.user);
    setText(this.parts, others.map((p) => participantLabel(p) + (p.audio === false ? ` (${t("call.muted")})` : "")).join(" / "));
    // self view: a tile of the grid (never over a remote picture)
    if (mgr.local && this.selfVideo.srcObject !== mgr.local) this.selfVideo.srcObject = mgr.local;
    const selfCamOff = !mgr.local || mgr.videoOff || !mgr.local.getVideoTracks().length;
    this.selfEl.classList.toggle("cam-off", selfCamOff);
    this.selfEl.dataset.user = me.user || "";
    setText(this.selfLabel, `${t("call.self")} · ${participantLabel(me)}`);
    if (this.selfLabel.title !== this.selfLabel.textContent) this.selfLabel.title = this.selfLabel.textContent;  // a narrow tile ellipsizes: the full name on hover
    this._avatar(this.selfAvatar, me);
    // remote videos: one tile per live remote video track
    // while it rings the early connection already has the callee's (empty) m-lines: no
    // tile for them until the call is answered
    const vids = c.video && c.state !== "ringing" ? mgr.remoteVideos() : [];
    const want = new Set(vids.map((r) => r.mid));
    for (const [mid, el] of this.videos) {
      if (!want.has(mid)) {
        el.remove();
        this.videos.delete(mid);
      }
    }
    let i = 0;
    const byOwner = new Set(vids.map((r) => mgr.ownerOf(r.mid)?.user).filter(Boolean)).size === vids.length;
    for (const r of vids) {
      let tile = this.videos.get(r.mid);
      if (!tile) {
        const v = h("video", { autoplay: true, playsInline: true, testid: "remote-video" });
        v.muted = true; // audio plays through the <audio> elements
        v.srcObject = r.stream;
        tile = h("div.tile.remote", { testid: "call-tile", dataset: { mid: r.mid } }, v, h("div.avatar-off"), h("span.label"));
        this.videos.set(r.mid, tile);
        this.remotesEl.append(tile);
        if (!mgr.marks.firstFrame && v.requestVideoFrameCallback) {
          v.requestVideoFrameCallback(() => {
            if (!mgr.marks.firstFrame) mgr.marks.firstFrame = now();
          });
        }
      }
      const p = byOwner ? mgr.ownerOf(r.mid) : others[i];
      i++;
      const full = p ? (c.participants || []).find((x) => x.user === p.user) || p : null;
      tile.dataset.user = full?.user || "";
      tile.dataset.role = full?.role || "";
      tile.classList.toggle("cam-off", full?.video === false);
      this._avatar(tile.querySelector(".avatar-off"), full);
      const label = tile.querySelector(".label");
      setText(label, full ? participantLabel(full) + (full.audio === false ? " · " + t("call.muted") : "") : "");
      if (label.title !== label.textContent) label.title = label.textContent;  // a narrow tile ellipsizes: the full name on hover
    }
    const waiting = c.video && vids.length === 0;
    let w = this.remotesEl.querySelector(".waiting");
    if (waiting && !w) {
      w = h("div.tile.waiting", { testid: "call-waiting" });
      this.remotesEl.prepend(w);
    } else if (!waiting && w) {
      w.remove();
      w = null;
    }
    if (w) setText(w, t(c.state === "ringing" ? "call.ringing" : "call.remote.waiting"));
    if (c.video && this.selfEl.parentElement !== this.remotesEl) this.remotesEl.append(this.selfEl);
    else if (c.video && this.remotesEl.lastElementChild !== this.selfEl) this.remotesEl.append(this.selfEl);
    this.remotesEl.dataset.n = String(Math.max(1, vids.length) + 1);
    this.remotesEl.classList.toggle("hidden", !c.video);
    // voice: a compact bar of avatars (me first), the timer sits in the top line
    this.voiceBar.classList.toggle("hidden", !!c.video);
    if (!c.video) this._renderVoiceBar(me, others);
    // remote audio
    const auds = [...mgr.remotes.values()].filter((r) => r.kind === "audio");
    const wantA = new Set(auds.map((r) => r.mid));
    for (const [mid, el] of this.audios) {
      if (!wantA.has(mid)) {
        el.remove();
        this.audios.delete(mid);
      }
    }
    for (const r of auds) {
      if (!this.audios.has(r.mid)) {
        const a = h("audio", { autoplay: true, testid: "remote-audio" });
        a.srcObject = r.stream;
        this.audios.set(r.mid, a);
        this.audioBox.append(a);
      }
    }
    // speaking: an analyser per audio track, keyed by the user it belongs to (started
    // METER_DELAY_MS after the window first showed, SpeakingMeter.notBefore)
    const meters = new Map();
    for (const r of auds) {
      const u = mgr.ownerOf(r.mid)?.user;
      if (u) meters.set(u, r.track);
    }
    const mine = mgr.local?.getAudioTracks()[0];
    if (mine && !mgr.audioMuted) meters.set(mgr.client.user, mine);
    this.meter.sync(meters);
    // controls: icons with labels and accessible names
    setCtrl(this.muteBtn, mgr.audioMuted ? "micoff" : "mic", mgr.audioMuted ? t("call.unmute") : t("call.mute"), { pressed: mgr.audioMuted });
    setCtrl(this.camBtn, mgr.videoOff ? "videooff" : "video", mgr.videoOff ? t("call.camon") : t("call.camoff"), { pressed: mgr.videoOff });
    this.camBtn.classList.toggle("hidden", !c.video);
    setCtrl(this.hangBtn, "phoneoff", c.state === "ringing" ? t("call.cancel") : t("call.hangup"));
    const reconnecting =
      mgr.client.state === "reconnecting" || mgr.pcState === "disconnected" || mgr.pcState === "failed";
    this.reconnecting.classList.toggle("hidden", !reconnecting);
    this.root.dataset.reconnecting = String(reconnecting);
    this._renderRecording(c);
    if (this.extraControls) this.extraControls(this.extra, c);
    this._renderTimer();
    this._renderSpeaking();
  }

  /** The indicator, the consent prompt (the viewer), the record and still buttons. */
  _renderRecording(c) {
    const mgr = this.mgr;
    const role = mgr.client.role;
    const rec = mgr.recording;
    const on = rec?.state === "recording";
    const asked = rec?.state === "requested";
    this.root.dataset.recording = rec?.state || "";
    this.recIndicator.classList.toggle("hidden", !rec);
    this.recIndicator.dataset.state = rec?.state || "";
    const recText = on ? te("rec.on") : asked ? te("rec.requested") : "";
    if (this.recIndicator.dataset.text !== recText) {
      this.recIndicator.dataset.text = recText;
      this.recIndicator.title = recText;
      this.recIndicator.replaceChildren(h("span.rec-dot", { "aria-hidden": "true" }), h("span.rec-text", { text: recText }));
    }
    // the viewer is asked; declining keeps the call going
    const ask = asked && role === "viewer";
    this.consentEl.classList.toggle("hidden", !ask);
    if (ask && this.consentEl.dataset.lang !== te("rec.consent.title")) {
      this.consentEl.dataset.lang = te("rec.consent.title");
      const answer = (accept) => () => {
        for (const b of this.consentEl.querySelectorAll("button")) b.disabled = true;
        mgr.consent(accept).then(() => { if (!accept) toast(te("rec.consent.declined"), 4000); }, (e) => toastError(e))
          .finally(() => { for (const b of this.consentEl.querySelectorAll("button")) b.disabled = false; });
      };
      this.consentEl.replaceChildren(
        h("b#rec-consent-title", {}, icon("rec"), " ", te("rec.consent.title")),
        h("p#rec-consent-text", { text: te("rec.consent.text") }),
        h("div.rec-consent-btns", {},
          h("button.green", { type: "button", testid: "recording-accept", text: te("rec.consent.accept"), on: { click: answer(true) } }),
          h("button", { type: "button", testid: "recording-decline", text: te("rec.consent.decline"), on: { click: answer(false) } })));
    } else if (!ask) {
      this.consentEl.dataset.lang = "";
      this.consentEl.replaceChildren();
    }
    // the agent starts and stops; the viewer may stop (withdraw consent) while it runs
    const canRecord = c.state === "active" && (role === "agent" || (role === "viewer" && on));
    this.recBtn.classList.toggle("hidden", !canRecord);
    setCtrl(this.recBtn, "rec", on ? (role === "viewer" ? te("rec.withdraw") : te("rec.stop")) : asked ? te("rec.cancel") : te("rec.start"), { pressed: !!rec });
    this.recBtn.dataset.state = rec?.state || "";
    // a still: the agent of the viewer's picture, the viewer of their own camera
    const canStill = !!this.onStill && !!c.video && c.state === "active" && (role === "agent" || role === "viewer");
    this.stillBtn.classList.toggle("hidden", !canStill);
    setCtrl(this.stillBtn, "camera", role === "viewer" ? te("still.take.self") : te("still.take"));
    // what became of a recording, once, in words (declined, timeout, stopped, saved, failed)
    const ev = mgr.lastRecordingEvent;
    if (ev && ev !== this._shownRecEvent) {
      this._shownRecEvent = ev;
      const key = ev.state === "declined" ? (ev.reason === "timeout" ? "rec.timeout" : role === "viewer" ? null : "rec.declined")
        : ev.state === "stopped" ? "rec.stopped" : ev.state === "saved" ? "rec.saved" : ev.state === "failed" ? "rec.failed" : null;
      if (key) toast(te(key), 4000);
    }
  }

  async _toggleRecord() {
    const rec = this.mgr.recording;
    try {
      await this.mgr.record(rec ? "stop" : "start");
    } catch (e) {
      toastError(e);
    }
  }

  /** The frame on screen: the viewer's tile on the agent's page, the self view on the viewer's. */
  stillSource() {
    if (this.mgr.client.role === "viewer") return this.selfVideo;
    const tiles = [...this.videos.values()];
    const tile = tiles.find((el) => el.dataset.role === "viewer") || tiles[0];
    return tile?.querySelector("video") || null;
  }

  async _takeStill() {
    const takenAt = Date.now() / 1000;
    const file = await stillOf(this.stillSource());
    if (!file) {
      toast(te("still.none"), 3000);
      return;
    }
    this.stillBtn.disabled = true;
    try {
      await this.onStill(file, takenAt);
    } finally {
      this.stillBtn.disabled = false;
    }
  }

  _avatar(el, p) {
    const text = t("call.camoff.state");
    if (el.dataset.for === `${p?.user}|${text}`) return;
    el.dataset.for = `${p?.user}|${text}`;
    el.replaceChildren(h("span.av", { text: initial(p), "aria-hidden": "true" }), h("span.avt", { text }));
  }

  _renderVoiceBar(me, others) {
    const people = [me, ...others];
    const sig = people.map((p) => `${p.user}|${p.name}|${p.role}|${p.audio}`).join(",") + t("call.self");
    if (this.voiceBar.dataset.sig !== sig) {
      this.voiceBar.dataset.sig = sig;
      this.voiceBar.replaceChildren(...people.map((p) =>
        h("span.vp", { testid: "voice-participant", dataset: { user: p.user || "" } },
          h("span.av", { text: initial(p), "aria-hidden": "true" }),
          h("span.vn", { text: (p === me ? `${t("call.self")} · ` : "") + participantLabel(p) + (p.audio === false ? ` (${t("call.muted")})` : "") }))));
    }
  }

  _renderSpeaking() {
    for (const el of this.root.querySelectorAll("[data-user]")) {
      const u = el.dataset.user;
      const on = !!u && this.meter.speaking(u);
      if (el.classList.contains("speaking") !== on) el.classList.toggle("speaking", on);
      if (el.dataset.speaking !== String(on)) el.dataset.speaking = String(on);
    }
  }

  _renderTimer() {
    const c = this.mgr.call;
    setText(this.timer, c && c.startedAt ? fmtTimer(Date.now() - c.startedAt) : "00:00");
  }
}

/** The incoming-call banner (accept/decline or join/decline), shared by the pages. A host's
 * invitation names the viewer and why they asked for a person (call.incoming ``about``). */
export function renderIncoming(el, mgr) {
  const inc = mgr.incoming;
  el.classList.toggle("hidden", !inc);
  if (!inc) {
    el.replaceChildren();
    el.removeAttribute("role");
    return;
  }
  el.setAttribute("role", "alert");
  const who = inc.from?.name || inc.from?.user || "";
  const join = inc.join ?? mgr.client.role === "host";
  const about = inc.about;
  const text = join
    ? about?.viewer
      ? t("call.invited.about", { name: who, viewer: about.viewer.name || about.viewer.user, reason: reasonLabel(about.reason) })
      : t("call.invited", { name: who })
    : t(inc.video === false ? "call.incoming.voice" : "call.incoming.video", { name: who });
  const accept = h("button.green", { type: "button", testid: join ? "call-join" : "call-accept", "aria-keyshortcuts": join ? null : "a", on: { click: () => mgr.accept().catch((e) => console.error(e)) } },
    icon(inc.video === false ? "phone" : "video"), " ", join ? t("call.join") : t("call.accept"));
  const decline = h("button.danger", { type: "button", testid: "call-decline", "aria-keyshortcuts": join ? null : "d", on: { click: () => mgr.decline() } },
    icon("phoneoff"), " ", t("call.decline"));
  el.replaceChildren(
    icon(inc.video === false ? "phone" : "video"),
    h("span.who", { testid: "incoming-text", text }),
    accept,
    decline,
  );
}
