"""Support-plane limits: what one viewer (or host) may make the gateway hold or do.

One frozen value, built once from :class:`gateway.config.Config` and handed to the support
service (``SupportConfig.limits``); the room service, the workspace (actions, wellbeing) and
the media service read the same object. Why one object: every limit a client runs into is
documented in ``docs/security.md`` with its default and its setting, and a limit that lives
in one place is the limit the docs describe.

Zero (or a negative number) switches a count limit off where the field says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SupportLimits:
    # one conversation: what a viewer or an agent may add to it (server-authored lines, such
    # as bot answers and notices, always go in: at most one per client message or host action)
    conversation_max_messages: int = 500
    conversation_max_bytes: int = 256 * 1024  # UTF-8 bytes of message text
    # how many of the latest messages conversation.get / conversation / conversation.assigned
    # carry (the rest are counted in ``omitted``)
    conversation_history: int = 200
    # one viewer
    open_conversations_per_viewer: int = 3
    conversations_per_viewer_per_hour: int = 12
    escalations_slow_after: int = 3  # escalations per hour before each further one waits
    escalations_per_viewer_per_hour: int = 6  # beyond: rate_limited
    escalation_delay_s: float = 5.0  # the wait grows by this per escalation over the slow mark
    ring_interval_s: float = 30.0  # agents get at most one call.incoming per viewer per this
    quick_close_s: float = 60.0  # the fatigue guard ignores viewer closes sooner after assignment
    nickname_max_chars: int = 24
    # rooms (host input and knowledge files)
    promotion_max_bytes: int = 2048  # one promotion as JSON
    promotions_per_room: int = 50
    knowledge_max_bytes: int = 512 * 1024  # a room's whole knowledge base as JSON
    # authority: what an agent grants to one viewer in one day without approval; 0 = off
    compensation_viewer_daily: float = 0.0

    @classmethod
    def from_config(cls, config: Any) -> SupportLimits:
        """The limits of ``config`` (a :class:`gateway.config.Config`); fields it does not
        have keep their defaults (tests build partial configs)."""
        kw = {}
        for name in cls.__dataclass_fields__:
            if hasattr(config, name):
                kw[name] = getattr(config, name)
        return cls(**kw)
