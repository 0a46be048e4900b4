"""The forwarder names as ``gateway.media.forwarder`` has always exported them.

The forwarders live in :mod:`gateway.media.forward` (the seam, the relay, passthrough);
this module only re-exports what callers outside the package import from here, so they
need not change when the package is reorganised.
"""

from __future__ import annotations

from .forward import Forwarder, RelayForwarder, SourceKey, make_forwarder

__all__ = ["Forwarder", "RelayForwarder", "SourceKey", "make_forwarder"]
