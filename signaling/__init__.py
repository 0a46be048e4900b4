"""Signaling: typed messages between authenticated sessions, with resume and a Bus.

This package knows nothing about shopping. Domain packages register message types and
handlers on a :class:`~signaling.hub.Hub`; the hub validates frames at the edge, keeps
per-session sequence numbers for resume, and delivers events to users through a
:class:`~signaling.bus.Bus` (in-memory for one process, Redis for many nodes).
"""

from .auth import Claims, TokenAuthority
from .bus import Bus, MemoryBus
from .errors import ErrorCode, ProtocolError
from .hub import Hub, Request
from .protocol import Event, Message, decode_frame, message
from .session import Session

__all__ = [
    "ErrorCode", "ProtocolError", "Event", "Message", "message", "decode_frame",
    "Claims", "TokenAuthority", "Bus", "MemoryBus", "Session", "Hub", "Request",
]
