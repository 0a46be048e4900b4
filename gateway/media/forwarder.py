"""The forwarder names as ``gateway.media.forwarder`` has always exported them."""

from .forward.seam import Forwarder, RelayForwarder, SourceKey, make_forwarder

__all__ = ["Forwarder", "RelayForwarder", "SourceKey", "make_forwarder"]
