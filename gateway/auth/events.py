"""Events of the auth plane, published on the node's :class:`~signaling.events.Events`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccountRevoked:
    """``user``'s tokens are refused from now on (signed out, disabled, role or password
    changed). Published on the node that learns it: the one that made the change, and every
    node when its refresh sees the epoch move or the sign-out. The wiring closes the user's
    live sockets on every node when it hears it (only those of sign-in session ``session``
    when set: a sign-out ends one browser's sign-in, not the user's others). ``reason`` is
    shown to the user (in words, by the page) and logged."""

    user: str
    reason: str
    session: str | None = None  # the sign-in session's ref (``sid``) for a sign-out
