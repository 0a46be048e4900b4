"""Forwarding: how one participant's received track reaches the others.

``seam.py`` holds the contract (:class:`Forwarder`, :class:`SourceKey`); ``relay.py`` the
decoded relay (``media_mode=transcode``), ``passthrough.py`` the encoded RTP-level
forwarder (``media_mode=passthrough``). :func:`make_forwarder` is the one place that
chooses between them.
"""

from __future__ import annotations

from .passthrough import PassthroughForwarder
from .relay import RelayForwarder
from .seam import Forwarder, SourceKey

__all__ = ["Forwarder", "PassthroughForwarder", "RelayForwarder", "SourceKey",
           "make_forwarder"]


def make_forwarder(mode: str, playout_delay: bool = True, fec: bool = True) -> Forwarder:
    """The forwarder for ``Config.media_mode`` (``passthrough`` | ``transcode``);
    ``playout_delay``: ``Config.playout_delay`` is ``auto``; ``fec``: ``Config.fec`` is
    ``on`` (both passthrough only)."""
    if mode == "passthrough":
        return PassthroughForwarder(playout_delay=playout_delay, fec=fec)
    if mode == "transcode":
        return RelayForwarder()
    raise ValueError(f"unknown media mode {mode!r}")
