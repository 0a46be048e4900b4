"""Wire messages of calls (``call.*``) and of WebRTC negotiation (``rtc.*``), protocol v1.

Names and fields are a contract and are documented in ``docs/protocol.md``:
extend, never rename. Client messages are validated at the edge into these dataclasses
(types and roles) before :mod:`gateway.media.service` sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from signaling.limits import MaxChars
from signaling.protocol import Event, Message, message

# an SDP is the largest string a client sends; the frame (64 KiB) bounds it anyway
MAX_SDP_CHARS = 60_000

# --- client → server ------------------------------------------------------------------------


@message("call.request", roles=("viewer", "agent"))
class CallRequest(Message):
    conversation: str
    video: bool = True


@message("call.accept", roles=("viewer", "agent", "host"))
class CallAccept(Message):
    """The callee answers a ringing call; an invited host may accept instead of ``call.join``."""
    call: str


@message("call.decline", roles=("viewer", "agent", "host"))
class CallDecline(Message):
    call: str


@message("call.hangup", roles=("viewer", "agent", "host"))
class CallHangup(Message):
    call: str


@message("call.invite", roles=("agent",))
class CallInvite(Message):
    call: str
    user: str


@message("call.join", roles=("host",))
class CallJoin(Message):
    call: str


@message("call.mute", roles=("viewer", "agent", "host"))
class CallMute(Message):
    call: str
    audio: bool | None = None
    video: bool | None = None


@message("rtc.offer", roles=("viewer", "agent", "host"))
class RtcOffer(Message):
    call: str
    sdp: Annotated[str, MaxChars(MAX_SDP_CHARS)]


@message("rtc.answer", roles=("viewer", "agent", "host"))
class RtcAnswer(Message):
    call: str
    sdp: Annotated[str, MaxChars(MAX_SDP_CHARS)]


@message("rtc.candidate", roles=("viewer", "agent", "host"))
class RtcCandidate(Message):
    call: str
    candidate: Annotated[str, MaxChars(1024)]  # the browser's "candidate:…"; "" = end
    sdpMid: Annotated[str, MaxChars(64)] | None = None  # noqa: N815 (WebRTC's names)
    sdpMLineIndex: int | None = None  # noqa: N815


@message("call.record", roles=("viewer", "agent"))
class CallRecord(Message):
    """The agent starts (``start``) or stops (``stop``) recording the call; the viewer may
    stop it too (withdrawing consent). Recording begins only once the viewer accepted
    (``call.record.consent``); docs/protocol.md#recording-a-call."""
    call: str
    action: Literal["start", "stop"]


@message("call.record.consent", roles=("viewer",))
class CallRecordConsent(Message):
    """The viewer's answer to ``call.recording {state: "requested"}``."""
    call: str
    accept: bool


# --- server → client ------------------------------------------------------------------------


@dataclass
class CallCallback(Event):
    """The reply to a viewer's ``call.request`` while the room is in surge: no ring; an
    agent calls back at about ``at`` (Unix seconds), ``position`` in that slot."""
    TYPE: ClassVar[str] = "call.callback"
    conversation: str
    at: float
    position: int
    text: str


@dataclass
class CallIncoming(Event):
    TYPE: ClassVar[str] = "call.incoming"
    call: str
    conversation: str
    # ``from`` is a Python keyword: the wire name is produced in to_wire().
    from_: dict
    video: bool
    # only for an invited host: whom the call is about and why (the viewer's name and the
    # conversation's escalation reason code), so the invitation is not a bare "join?"
    about: dict | None = None

    def to_wire(self) -> dict[str, Any]:
        d = super().to_wire()
        d["from"] = d.pop("from_")
        return d


@dataclass
class CallStateEvent(Event):
    """Every change of a call, to the conversation's members and any invited host."""
    TYPE: ClassVar[str] = "call.state"
    call: str
    state: str  # ringing | connecting | active | ended
    participants: list  # [{user, role, audio, video, status}]
    reason: str | None = None
    # extensions
    conversation: str | None = None
    video: bool | None = None
    started_at: float | None = None  # wall clock when the call became active
    invited: list | None = None  # users invited but not (yet) in the call
    ice_servers: list | None = None  # for a recipient that still has to send its rtc.offer
    node: str | None = None  # the gateway node hosting the call's media (multi-node)
    recording: str | None = None  # "requested" | "recording" while either is so


@dataclass
class RtcOfferEvent(Event):
    TYPE: ClassVar[str] = "rtc.offer"
    call: str
    sdp: str
    tracks: list | None = None  # extension: [{mid, user, kind}] forwarded on this connection


@dataclass
class RtcAnswerEvent(Event):
    TYPE: ClassVar[str] = "rtc.answer"
    call: str
    sdp: str
    tracks: list | None = None  # extension, as in rtc.offer


@dataclass
class CallRecordingEvent(Event):
    """Recording of a call, to everyone concerned by it: ``requested`` (the viewer is asked:
    answer ``call.record.consent``), ``recording`` (the indicator is on), ``declined``,
    ``stopped`` (indicator off), ``saved`` (with ``recordings``), ``failed``."""
    TYPE: ClassVar[str] = "call.recording"
    call: str
    conversation: str
    state: str
    by: str | None = None  # who asked for it / stopped it
    reason: str | None = None  # declined: "declined" | "timeout"; stopped: "stop" | call's reason
    started_at: float | None = None
    recordings: list | None = None  # saved: [{attachment, content_type, user, duration_s, ...}]
