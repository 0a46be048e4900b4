"""What the media plane needs from conversations, declared by media and nothing more.

A call belongs to a conversation: who may touch it (the conversation's members), who
rings whom (its viewer and agent), whether a call may start (it is assigned), what a
resolved conversation means for its call. Those facts are owned by the support plane;
media states here the few it reads and the two things it reports back (a ring a viewer
placed went unanswered; a ring is about to be placed), the one question surge mode asks
(a callback slot instead of a ring?), and the support plane implements
this port (``gateway/support/call_port.py``). So media never imports support, the bot or
its store, and support is free to change how it keeps conversations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class CallConversation(Protocol):
    """A conversation as a call sees it: read once, when a call is requested."""

    @property
    def id(self) -> str: ...

    @property
    def room(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def viewer(self) -> str: ...

    @property
    def agent(self) -> str | None: ...

    @property
    def members(self) -> tuple[str, ...]: ...

    @property
    def viewer_name(self) -> str: ...

    @property
    def reason(self) -> str | None:
        """Why the viewer wanted a person (the escalation reason code), if known."""


class CallbackOffer(Protocol):
    """During surge: when the viewer will be called back, and what they are told."""

    @property
    def at(self) -> float: ...

    @property
    def position(self) -> int: ...

    @property
    def text(self) -> str: ...


class ConversationPort(Protocol):
    async def conversation(self, conversation: str, user: str) -> CallConversation | None:
        """``conversation`` as it stands; ``None`` if unknown. If this node does not know it,
        or does not count ``user`` among its members, the port first catches up with changes
        made on other nodes a moment ago."""

    def members(self, conversation: str) -> list[str]:
        """The conversation's members now (viewer, and agent if any); ``[]`` if unknown.
        Synchronous: read on every call event, from this node's copy."""

    async def callback_instead(self, conversation: str) -> CallbackOffer | None:
        """The viewer of ``conversation`` asks to call: a callback slot instead of a ring
        (the room is in surge), or ``None`` to ring as usual."""

    async def admit_ring(self, viewer: str) -> None:
        """Raise :class:`~signaling.ProtocolError` if ``viewer`` may not ring now."""

    async def call_answered(self, caller: str) -> None:
        """A ring ``caller`` placed was answered (their next ring is a redial, not a repeat)."""

    async def missed_call(self, conversation: str, caller: str) -> None:
        """A ring ``caller`` placed in ``conversation`` ended unanswered (``missed``)."""

    async def recorded(self, conversation: str, recordings: list[dict]) -> None:
        """A call recording of ``conversation`` was stored: ``recordings`` are its
        attachment refs (one per participant); the conversation shows them."""

    def on_resolved(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(conversation_id)`` whenever a conversation is resolved on this
        node: its call, wherever it runs, ends."""
