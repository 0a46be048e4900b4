"""CSAT: the viewer's rating of a resolved conversation, stored against it and its agent.

Owns ``csat.request`` (sent to the viewer when an agent-handled conversation is resolved),
``csat.submit`` (viewer, own conversation, once, 1–5 with an optional comment) and the
ratings. ``livedesk_csat_rating`` observes each accepted rating, and only those.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from signaling import ErrorCode, Hub, ProtocolError, Request
from signaling.limits import MaxChars
from signaling.protocol import Event, Message, message

from .conversation import Conversation
from .events import ConversationResolved, CsatGiven

MAX_COMMENT = 1000


@message("csat.submit", roles=("viewer",))
class CsatSubmit(Message):
    conversation: str
    rating: int
    comment: Annotated[str, MaxChars(MAX_COMMENT)] | None = None


@dataclass
class CsatRequest(Event):
    TYPE: ClassVar[str] = "csat.request"
    conversation: str
    agent: dict | None = None


@dataclass
class Rating:
    conversation: str
    room: str
    agent: str | None
    rating: int
    comment: str | None
    ts: float

    def to_wire(self) -> dict[str, Any]:
        return {"conversation": self.conversation, "room": self.room, "agent": self.agent,
                "rating": self.rating, "comment": self.comment, "ts": self.ts}


class Csat:
    def __init__(self, hub: Hub, support, metrics: Any = None):
        self.hub = hub
        self.support = support
        self.metrics = metrics
        self.requested: set[str] = set()
        self.ratings: dict[str, Rating] = {}
        # both are replicated records, so a viewer may rate on any node, exactly once
        support.backend.listen("csat_req", lambda cid, v: self.requested.add(cid),
                               forget=self.requested.discard)
        support.backend.listen("csat", self._rated, forget=self._forget_rating)
        hub.handle(CsatSubmit, self.on_submit)
        support.events.subscribe(ConversationResolved, lambda e: self._on_resolved(e.conversation))

    def _rated(self, cid: str, v: dict) -> None:
        self.ratings[cid] = Rating(cid, v["room"], v["agent"], v["rating"], v["comment"], v["ts"])

    def _forget_rating(self, cid: str) -> None:
        """Past the retention: the rating leaves the dashboard's figures with its conversation."""
        self.ratings.pop(cid, None)

    async def _on_resolved(self, conv: Conversation) -> None:
        if not conv.agent:  # nobody to rate: bot-only or abandoned
            return
        await self.support.backend.put("csat_req", conv.id, {"agent": conv.agent},
                                       ttl_s=self.support.record_ttl_s)
        await self.hub.send_to_user(conv.viewer, CsatRequest(conv.id, conv.agent_ref()))

    async def on_submit(self, req: Request[CsatSubmit]):
        msg: CsatSubmit = req.msg
        conv = self.support.store.get(msg.conversation)
        if conv is None or conv.viewer != req.user:
            raise ProtocolError(ErrorCode.NOT_MEMBER,
                                f"you are not a member of conversation {msg.conversation!r}")
        if not 1 <= msg.rating <= 5:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "csat.submit: 'rating' must be 1..5")
        comment = (msg.comment or "").strip() or None
        if comment and len(comment) > MAX_COMMENT:
            raise ProtocolError(ErrorCode.TOO_LARGE,
                                f"csat.submit: 'comment' is over {MAX_COMMENT} characters")
        if conv.state != "resolved" or conv.id not in self.requested:
            raise ProtocolError(ErrorCode.BAD_STATE, "no rating was asked for this conversation")
        r = Rating(conv.id, conv.room, conv.agent, msg.rating, comment, time.time())
        written, _ = await self.support.backend.put("csat", conv.id, r.to_wire(), if_absent=True,
                                                   ttl_s=self.support.record_ttl_s)
        if not written:
            raise ProtocolError(ErrorCode.CONFLICT, "this conversation was already rated")
        if self.metrics:
            self.metrics.csat.observe(msg.rating)
        # only the writer publishes it (``if_absent``): one ``conversation.rated`` webhook
        self.support.events.publish(CsatGiven(conv, r.rating, r.comment, r.ts))
        return None

    def for_conversation(self, conv_id: str) -> int | None:
        r = self.ratings.get(conv_id)
        return r.rating if r else None
