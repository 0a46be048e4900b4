"""The churn guard: one viewer's repeated opens, escalations and calls must not reach agents.

A review found one viewer cycling open → escalate → close 30 times in 10 s: one agent got
30 ``conversation.assigned`` and 40 ``call.incoming``. Each of those is work (and noise) for
a person. The guard decides, per viewer, from counters every node shares
(:meth:`SupportBackend.hit`: memory on one node, one Lua script on Redis):

* **conversations opened**: at most ``conversations_per_viewer_per_hour`` new ones an hour;
* **escalations** (the viewer's own or the bot's on their behalf): the first
  ``escalations_slow_after`` an hour go through at once; each further one waits
  ``escalation_delay_s`` × how far over it is (the viewer is *slowed*); beyond
  ``escalations_per_viewer_per_hour`` they are refused;
* **rings**: a viewer's ``call.request`` rings an agent at most once per ``ring_interval_s``.

Every refusal is ``rate_limited`` with the seconds until one more would be allowed.
"""

from __future__ import annotations

import math

from signaling import ErrorCode, ProtocolError

from .backend import SupportBackend
from .limits import SupportLimits

HOUR_S = 3600.0


def refused(what: str, retry_after_s: float) -> ProtocolError:
    return ProtocolError(ErrorCode.RATE_LIMITED,
                         f"{what}; try again in {max(1, math.ceil(retry_after_s))} s")


class ChurnGuard:
    def __init__(self, backend: SupportBackend, limits: SupportLimits):
        self.backend = backend
        self.limits = limits

    async def admit_open(self, viewer: str) -> None:
        """Count a new conversation of ``viewer``, or refuse it."""
        n = self.limits.conversations_per_viewer_per_hour
        if n <= 0:
            return
        hit = await self.backend.hit(f"open:{viewer}", HOUR_S, n)
        if not hit.allowed:
            raise refused(f"you opened {hit.count} conversations in the last hour, the most "
                          f"allowed", hit.retry_after_s)

    async def admit_escalation(self, viewer: str) -> float:
        """Count an escalation of ``viewer``'s; returns how long it must wait first (0: at
        once), or refuses it."""
        lim = self.limits
        n = lim.escalations_per_viewer_per_hour
        if n <= 0:
            return 0.0
        hit = await self.backend.hit(f"esc:{viewer}", HOUR_S, n)
        if not hit.allowed:
            raise refused(f"your conversations were handed to a person {hit.count} times in "
                          f"the last hour, the most allowed", hit.retry_after_s)
        over = hit.count - lim.escalations_slow_after
        return over * lim.escalation_delay_s if over > 0 else 0.0

    async def answered(self, caller: str) -> None:
        """A ring ``caller`` placed was answered: the next one (a redial after a dropped
        call) is not a repeat ring, so it is not held back."""
        await self.backend.forget_hits(f"ring:{caller}")

    async def admit_ring(self, viewer: str) -> None:
        """Count a ring placed by ``viewer``, or refuse it (one per ``ring_interval_s``)."""
        s = self.limits.ring_interval_s
        if s <= 0:
            return
        hit = await self.backend.hit(f"ring:{viewer}", s, 1)
        if not hit.allowed:
            raise refused("you called a moment ago", hit.retry_after_s)
