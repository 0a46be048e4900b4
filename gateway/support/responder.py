"""The seam between conversations and whatever answers viewers automatically.

A :class:`Responder` gets the viewer's new message, the earlier viewer messages of the
conversation and the room's live :class:`Knowledge` itself, not a copy: the offline bot reads
it synchronously between two awaits, so an answer reflects every change applied before it; a
responder reads it and never mutates it (the LLM responder serialises it into its prompt before
awaiting). It returns one :class:`BotReply`. The conversation service owns when it is called
(only while a conversation is with the bot) and what happens with the answer (post it,
escalate).
The offline bot (``gateway.support.bot``) is the default; an LLM responder can wrap it
and fall back to it on timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .knowledge import Knowledge

INTENTS = (
    "greeting", "product_info", "size_advice", "stock", "price_promo", "order_change",
    "logistics", "payment", "return_refund", "complaint", "human_request", "other",
)

MOODS = ("positive", "neutral", "negative", "angry")


@dataclass
class BotQuery:
    """What a responder may look at. ``history`` holds the earlier viewer messages, oldest
    first: the most recent 20 (``service.BOT_HISTORY``) in a longer conversation."""

    text: str
    history: list[str]
    knowledge: Knowledge
    lang: str | None = None  # "zh" | "en" | None (detect)
    user: str | None = None  # the viewer, for after-sale lookups (later issue)
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class BotReply:
    intent: str
    escalate: bool
    text: str
    mood: str = "neutral"
    lang: str = "zh"
    slots: dict[str, Any] = field(default_factory=dict)


class Responder(Protocol):
    async def respond(self, query: BotQuery) -> BotReply: ...
