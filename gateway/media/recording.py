"""Recording a call, with the viewer's consent: the state machine and who is told.

``call.record {start}`` (the agent) → every participant and member gets
``call.recording {state: "requested"}``; nothing is recorded yet. The viewer answers
``call.record.consent {accept}``: ``true`` starts the :class:`~.recorder.CallRecorder` and
everyone gets ``recording`` (the indicator); ``false``, or no answer within
``recording_consent_timeout_s``, gives ``declined`` and the call goes on unrecorded.
``call.record {stop}`` (the agent, or the viewer withdrawing consent), the call ending, or
``recording_max_s`` stop it: ``stopped`` at once, then ``saved`` once each participant's file
is stored as an attachment of the conversation (kind ``recording``) and a system line in
the chat lists them. ``call.state`` carries ``recording`` while one is requested or running,
so a page that reloads shows the indicator again.

Why the viewer's consent, and only theirs: the agent asks and hosts are staff of the room;
the viewer is the one person whose voice and face are recorded without working for us.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from signaling import ErrorCode, ProtocolError, Request

from .call import Call
from .forward.seam import SourceKey
from .messages import CallRecord, CallRecordConsent, CallRecordingEvent
from .recorder import CallRecorder

if TYPE_CHECKING:
    from .service import MediaService

log = logging.getLogger(__name__)


@dataclass
class Recording:
    call: str
    conversation: str
    by: str  # the agent who asked
    by_role: str
    state: str = "requested"  # requested | recording
    recorder: CallRecorder | None = None
    started_at: float | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    def cancel_timers(self) -> None:
        for t in self.timers:
            t.cancel()
        self.timers.clear()


class RecordingControl:
    """Owns every call's recording state on this node (the node hosting the call: the
    handlers run there, forwarded like every ``call.*``)."""

    def __init__(self, media: MediaService, attachments: Any, consent_timeout_s: float,
                 max_s: float):
        self.media = media
        self.attachments = attachments  # AttachmentService (stores the files), or None
        self.consent_timeout_s = consent_timeout_s
        self.max_s = max_s
        self.active: dict[str, Recording] = {}
        self.started = 0  # recordings begun (tests, metrics)
        self.saving: set[asyncio.Task] = set()

    def state_of(self, call_id: str) -> str | None:
        r = self.active.get(call_id)
        return r.state if r is not None else None

    async def _tell(self, call: Call, ev: CallRecordingEvent, req: Request | None = None) -> None:
        for user in call.audience(self.media._members(call)):
            if req is not None and user == req.user:
                req.reply(ev)
                await self.media.hub.send_to_user(user, ev, exclude_session=req.session.id)
            else:
                await self.media.hub.send_to_user(user, ev)

    def _event(self, r: Recording, state: str, **kw: Any) -> CallRecordingEvent:
        return CallRecordingEvent(call=r.call, conversation=r.conversation, state=state,
                                  started_at=r.started_at, **kw)

    # --- handlers --------------------------------------------------------------------------
    async def on_record(self, req: Request[CallRecord]):
        msg: CallRecord = req.msg
        call = await self.media._call_for(req, msg.call)
        p = self.media._participant(req, call, "call.record")
        r = self.active.get(call.id)
        if msg.action == "stop":
            if r is None:
                raise ProtocolError(ErrorCode.BAD_STATE, "call.record: nothing is being recorded")
            await self._stop(call, r, "stop", by=req.user, req=req)
            return None
        if p.role != "agent":
            raise ProtocolError(ErrorCode.FORBIDDEN, "call.record: only the agent starts a "
                                                     "recording")
        if r is not None:
            raise ProtocolError(ErrorCode.CONFLICT, f"call.record: a recording is already "
                                                    f"{r.state}")
        if self.attachments is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "call.record: this gateway keeps no "
                                                       "attachments (no store configured)")
        if self.media.forwarder.mode != "passthrough":
            raise ProtocolError(ErrorCode.UNAVAILABLE, "call.record: recording needs "
                                                       "media_mode=passthrough")
        if not any(q.role == "viewer" for q in call.participants.values()):
            raise ProtocolError(ErrorCode.BAD_STATE, "call.record: the viewer is not in "
                                                     "the call")
        r = self.active[call.id] = Recording(call.id, call.conversation, req.user, req.role)
        loop = asyncio.get_running_loop()
        r.timers.append(loop.call_later(self.consent_timeout_s, lambda: self.media._spawn(
            self._consent_timeout(call, r))))
        await self._tell(call, self._event(r, "requested", by=req.user), req)
        await self.media._announce(call)
        return None

    async def on_consent(self, req: Request[CallRecordConsent]):
        msg: CallRecordConsent = req.msg
        call = await self.media._call_for(req, msg.call)
        p = self.media._participant(req, call, "call.record.consent")
        r = self.active.get(call.id)
        if p.role != "viewer":
            raise ProtocolError(ErrorCode.FORBIDDEN, "call.record.consent: the viewer answers")
        if r is None or r.state != "requested":
            raise ProtocolError(ErrorCode.BAD_STATE, "call.record.consent: no recording is "
                                                     "waiting for consent")
        r.cancel_timers()
        if not msg.accept:
            del self.active[call.id]
            await self._tell(call, self._event(r, "declined", by=req.user, reason="declined"),
                             req)
            await self.media._announce(call)
            return None
        self._begin(call, r)
        await self._tell(call, self._event(r, "recording", by=r.by), req)
        await self.media._announce(call)
        return None

    async def _consent_timeout(self, call: Call, r: Recording) -> None:
        if self.active.get(call.id) is r and r.state == "requested":
            del self.active[call.id]
            await self._tell(call, self._event(r, "declined", reason="timeout"))
            await self.media._announce(call)

    # --- the recorder ----------------------------------------------------------------------
    def _begin(self, call: Call, r: Recording) -> None:
        r.state = "recording"
        r.started_at = time.time()
        r.recorder = CallRecorder(self.media.forwarder, f"rec-{call.id}")
        self.started += 1
        for key in self.media.forwarder.sources():
            self._add(call, r, key)
        r.timers.append(asyncio.get_running_loop().call_later(
            self.max_s, lambda: self.media._spawn(self._stop(call, r, "max_duration"))))

    def _add(self, call: Call, r: Recording, key: SourceKey) -> None:
        """Record ``key`` if it is this call's: the forwarder serves every call on the node,
        so a source counts only when it is one its owner's current connection in *this*
        call received."""
        q = call.participants.get(key.owner)
        if r.recorder is None or q is None or q.peer is None or key.gen != q.gen:
            return
        mine = {x.key for x in q.peer.received}
        if key not in mine:
            return
        r.recorder.add(key, {k.kind for k in mine})

    def published(self, call: Call, keys: list[SourceKey]) -> None:
        """New sources of a participant (joined, or rebuilt its connection) while recording."""
        r = self.active.get(call.id)
        if r is not None and r.state == "recording":
            for key in keys:
                self._add(call, r, key)

    def unpublished(self, call: Call, keys: list[SourceKey]) -> None:
        r = self.active.get(call.id)
        if r is not None and r.recorder is not None:
            for key in keys:
                r.recorder.remove(key)

    async def call_ended(self, call: Call) -> None:
        r = self.active.get(call.id)
        if r is not None:
            await self._stop(call, r, call.reason or "ended")

    async def _stop(self, call: Call, r: Recording, reason: str, by: str | None = None,
                    req: Request | None = None) -> None:
        if self.active.get(call.id) is not r:
            return
        del self.active[call.id]
        r.cancel_timers()
        recorder, was = r.recorder, r.state
        await self._tell(call, self._event(r, "stopped" if was == "recording" else "declined",
                                           by=by, reason=reason), req)
        if call.live:
            await self.media._announce(call)
        if recorder is not None:
            t = self.media._spawn(self._save(call, r, recorder))
            self.saving.add(t)
            t.add_done_callback(self.saving.discard)

    async def _save(self, call: Call, r: Recording, recorder: CallRecorder) -> None:
        from ..attachments import Caller

        try:
            files = await recorder.stop()
            refs = []
            viewer = next((q.user for q in call.participants.values() if q.role == "viewer"),
                          None) or (self.media._members(call) or [""])[0]
            for f in files:
                meta = {"call": call.id, "user": f.user, "duration_s": f.duration_s,
                        "width": f.width, "height": f.height, "started_at": r.started_at,
                        "frames": f.frames}
                rec = await self.attachments.store_recording(
                    call.conversation, viewer, Caller(r.by, r.by_role), f.path, f.content_type,
                    meta)
                refs.append(rec.ref())
            await self._tell(call, self._event(r, "saved", recordings=refs))
            if refs:
                await self.media.conversations.recorded(call.conversation, refs)
        except Exception as e:  # noqa: BLE001 - told, logged; the call is unaffected
            log.exception("recording of %s failed", call.id)
            await self._tell(call, self._event(r, "failed", reason=type(e).__name__))
        finally:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: shutil.rmtree(recorder.dir, ignore_errors=True))

    async def drain(self, timeout_s: float = 15.0) -> None:
        """Shutdown: let recordings being saved finish (bounded) before tasks are cancelled."""
        if self.saving:
            await asyncio.wait(list(self.saving), timeout=timeout_s)
