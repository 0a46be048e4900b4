"""The support side of the media plane's conversation port (``gateway/media/port.py``).

Media declares what it needs of conversations; this adapter answers from the support
service without media learning how conversations are stored, and keeps the support rules a
call triggers here: who may ring how often (churn), and what a missed call does to the
conversation (a system line, then back to the head of the queue). It matches the port
structurally, so support does not import media either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .conversation import Conversation
from .events import ConversationResolved
from .service import BOT, SupportService
from .surge import CallbackOffer, SurgeService

RECORDED_ZH = "通话录制已保存。"
MISSED_CALL_ZH = "客服暂时未能接听，已为您重新排队，请稍候。"


@dataclass(frozen=True)
class CallConversation:
    """A copy of what a call reads of a conversation (the replica's object stays here)."""

    id: str
    room: str
    state: str
    viewer: str
    agent: str | None
    members: tuple[str, ...]
    viewer_name: str = ""
    reason: str | None = None

    @classmethod
    def of(cls, conv: Conversation) -> CallConversation:
        return cls(id=conv.id, room=conv.room, state=conv.state, viewer=conv.viewer,
                   agent=conv.agent, members=tuple(conv.members()),
                   viewer_name=conv.viewer_name, reason=conv.escalation_reason)


class SupportCallPort:
    def __init__(self, support: SupportService, surge: SurgeService | None = None):
        self.support = support
        self.surge = surge

    async def conversation(self, conversation: str, user: str) -> CallConversation | None:
        conv = self.support.store.get(conversation)
        if conv is None or not conv.is_member(user):
            await self.support.backend.sync()  # changed on another node a moment ago?
            conv = self.support.store.get(conversation)
        return CallConversation.of(conv) if conv is not None else None

    def members(self, conversation: str) -> list[str]:
        conv = self.support.store.get(conversation)
        return conv.members() if conv is not None else []

    async def callback_instead(self, conversation: str) -> CallbackOffer | None:
        """Surge's rule (``surge.py``): while the room is in surge a viewer is called back."""
        conv = self.support.store.get(conversation)
        if self.surge is None or conv is None:
            return None
        return await self.surge.offer_callback(conv)

    async def admit_ring(self, viewer: str) -> None:
        await self.support.churn.admit_ring(viewer)

    async def call_answered(self, caller: str) -> None:
        await self.support.churn.answered(caller)

    async def missed_call(self, conversation: str, caller: str) -> None:
        """Only a viewer's unanswered ring puts the conversation back in the queue: an agent
        the viewer did not answer keeps it."""
        conv = self.support.store.get(conversation)
        if conv is None or caller != conv.viewer:
            return
        await self.support.post(conv, BOT, MISSED_CALL_ZH, kind="system")
        await self.support.requeue(conv, "missed_call")

    async def recorded(self, conversation: str, recordings: list[dict]) -> None:
        conv = self.support.store.get(conversation)
        if conv is not None:  # a system line carrying the recordings (history, export)
            await self.support.post(conv, BOT, RECORDED_ZH, kind="system",
                                    meta={"attachments": recordings})

    def on_resolved(self, callback: Callable[[str], None]) -> None:
        self.support.events.subscribe(ConversationResolved,
                                      lambda e: callback(e.conversation.id))
