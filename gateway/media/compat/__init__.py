"""What the gateway does *around* aiortc 1.16's own behaviour: one module per patch.

Each patch is tied to named aiortc (or aioice, pylibsrtp) internals, and each module checks
its own, so an aiortc upgrade that moves or fixes one fails loudly with the hook's name
(the guard tests are ``tests/media/test_compat_*.py``). aiortc is pinned to the tested range.

==========================  ==========================================================
``parse_guard``             a malformed RTP header extension drops the packet, not the
                            transport (class patch: installed here, on import)
``playout_delay``           the playout-delay header extension is negotiated on video
                            (aiortc's extension table: installed here, on import)
``offer_numbering``         gateway offers keep the client's payload types and extmap ids,
                            and ``createOffer``'s side effect is undone (per offer, ``Peer``)
``answer_codecs``           the preferred codec first in an answer (per answer, ``Peer``)
``red_fec``                 a client's RED/RTX/ULPFEC accepted in answers and kept in
                            gateway re-offers (per answer / offer, ``Peer``)
``receiver_tap``            encoded passthrough: a receiver that hands out packets and
                            never decodes (per receiver, the passthrough forwarder)
``fast_receive``            SRTP handled in the socket callback for tapped connections
                            (per connection, on a tap's first packet)
``rtp_forwarding``          the sink writes packets around aiortc's sender, which keeps its
                            RTCP (per sender, the passthrough forwarder)
``lean_rate``, ``srtp``,    helpers of the above: the bitrate estimator's hot loops, libsrtp
``hooks``                   calls without pylibsrtp's wrapper, reading aiortc's source
==========================  ==========================================================

Only the parse guard and the playout-delay extension change aiortc for the whole process,
so only they are applied here; every other patch changes the one object it is given, at the
moment its caller names.
"""

from __future__ import annotations

from .parse_guard import install_parse_guard
from .playout_delay import install_playout_delay_extension

install_parse_guard()
install_playout_delay_extension()
