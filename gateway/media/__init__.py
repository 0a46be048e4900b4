"""The media plane: voice/video calls terminated by aiortc, one peer connection per participant.

``service.MediaService`` is what ``gateway.app`` builds; ``docs/media.md`` describes the call
flow, the negotiation rules, the :class:`~gateway.media.forward.seam.Forwarder` seam and what
runs off the event loop.
"""

from .forward import Forwarder, RelayForwarder, SourceKey

__all__ = ["Forwarder", "RelayForwarder", "SourceKey"]
