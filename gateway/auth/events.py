"""Events of the auth plane, published on the node's :class:`~signaling.events.Events`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccountRevoked:
    """``user``'s tokens are refused from now on (signed out, disabled, role or password
    changed). Published on the node that learns it: the one that made the change, and every
    node when its refresh sees the epoch move. The hook for closing the user's live sockets
    (a later change); ``reason`` is for logs."""

    user: str
    reason: str
