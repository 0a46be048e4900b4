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

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from signaling.events import Events

from .events import QuestionClassified
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


# --- the radar's hook: the bot's decision shared, a pinned answer quoted first ----------------

class PinnedAnswers(Protocol):
    """What the responder wrapper asks of the question radar (``radar.Radar``)."""

    def pinned_answer(self, room: str, intent: str, sku: str | None,
                      slot: str | None) -> str | None:
        """The answer a host pinned for this question's group, if any."""


def question_keys(slots: dict[str, Any]) -> tuple[str | None, str | None]:
    """The product and the distinguishing slot of a bot decision: ``sku`` (several named
    products joined by ``+``, sorted) and the size. One function, so the radar's groups and
    the pins they carry agree on what "the same question" is."""
    sku = slots.get("sku")
    if isinstance(sku, list):
        sku = "+".join(sorted(str(x) for x in sku)) or None
    size = slots.get("size")
    return (str(sku) if sku else None), (str(size) if size else None)


class ObservedResponder:
    """Wraps any responder. Why here and not in the bot: the bot already decided intent,
    product and size for every viewer message it answers; this publishes that one decision
    as :class:`~.events.QuestionClassified` (the radar, anomaly flags and surge count it)
    and, when a host pinned an answer for the question's group (``room.pin``), puts that
    answer first in the reply. The bot's own answer follows it, so nothing it would have
    said is lost; its escalation decision is unchanged."""

    def __init__(self, inner: Responder, pins: PinnedAnswers, events: Events,
                 clock: Callable[[], float] = time.time):
        self.inner = inner
        self.pins = pins
        self.events = events
        self.clock = clock

    def __getattr__(self, name: str) -> Any:  # warm_up and friends of the inner responder
        return getattr(self.inner, name)

    async def respond(self, query: BotQuery) -> BotReply:
        reply = await self.inner.respond(query)
        room = query.knowledge.room.id
        sku, slot = question_keys(reply.slots)
        reasons = reply.slots.get("escalation_reasons") or ()
        conv = query.context.get("conversation")
        self.events.publish(QuestionClassified(
            room=room, conversation=conv if isinstance(conv, str) else None, viewer=query.user,
            text=query.text, intent=reply.intent, sku=sku, slot=slot,
            reasons=tuple(str(r) for r in reasons), ts=self.clock()))
        pin = self.pins.pinned_answer(room, reply.intent, sku, slot)
        if not pin:
            return reply
        return dataclasses.replace(reply, text=f"{pin}\n{reply.text}",
                                   slots={**reply.slots, "pinned": True})
