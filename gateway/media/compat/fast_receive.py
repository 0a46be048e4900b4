"""The fast receive path: SRTP datagrams of a tapped connection handled in the socket callback.

aiortc hands every datagram through aioice's queue to the DTLS transport's receive task (a
STUN parse attempt that raises, a queue put and get, a task wake-up and four awaits per
packet) before ``RTCDtlsTransport._handle_rtp_data`` runs. :func:`install_fast_receive`
unprotects an SRTP/SRTCP datagram in the socket's ``datagram_received`` and handles it at
once, in the same order, by the same aiortc methods; a packet for a tapped receiver (one
carrying :data:`TAP_ATTR`, see :mod:`.receiver_tap`) is parsed by the lean
:func:`parse_rtp` and handed to its tap's ``receive``. Everything else takes aioice's path
as before.

What it mirrors of aiortc 1.16 is checked in aiortc's source
(:func:`fast_receive_hooks_missing`); if an upgrade changed any of it, the fast path stays
off and aiortc's own path is used. Applied per connection, by the first packet a tapped
receiver gets.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

from aiortc import RTCDtlsTransport, RTCRtpReceiver
from aiortc.rtcdtlstransport import State
from aiortc.rtp import RtpPacket, is_rtcp

from signaling.coro import drive

from ..clock import ntp_ms
from .hooks import source_of
from .srtp import srtp_calls

TAP_ATTR = "_livedesk_tap"  # on a receiver: its tap, whose receive(packet, ms) gets its packets

HOOK_FAST_RECV = ("aiortc.RTCDtlsTransport._rx_srtp/_handle_rtp_data/_handle_rtcp_data, "
                  "aioice.StunProtocol.datagram_received/Connection._protocols")


def fast_receive_hooks_missing() -> list[str]:
    """What the fast receive path mirrors of aiortc 1.16, checked in its source: if an
    upgrade changes any of it, the fast path stays off (aiortc's own path still works)."""
    return list(_fast_receive_hooks_missing())


@functools.cache
def _fast_receive_hooks_missing() -> tuple[str, ...]:
    handle = source_of(RTCRtpReceiver._handle_rtp_packet)
    data = source_of(RTCDtlsTransport._handle_rtp_data)
    recv = source_of(RTCDtlsTransport._recv_next)
    wanted = [
        (handle, "self.__remote_bitrate_estimator.add("), (handle, "self.__rtcp_ssrc"),
        (handle, "self.__active_ssrc[packet.ssrc] = clock.current_datetime()"),
        (handle, "self.__codecs.get(packet.payload_type)"),
        (handle, "self.__remote_streams[packet.ssrc].add(packet)"),
        (handle, "packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)"),
        (handle, "self.__nack_generator.add(packet)"), (handle, "self.__jitter_buffer.add"),
        (handle, "await self._send_rtcp_pli(packet.ssrc)"),
        (data, "RtpPacket.parse(data, self._rtp_header_extensions_map)"),
        (data, "self._rtp_router.route_rtp(packet)"),
        (recv, "self._rx_srtp.unprotect(data)"), (recv, "self._rx_srtp.unprotect_rtcp(data)"),
        (recv, "first_byte > 127 and first_byte < 192"),
    ]
    return tuple(HOOK_FAST_RECV + f": {needle}" for text, needle in wanted if needle not in text)


class LeanExtensions:
    """The header extensions a tapped receiver reads (``RtpPacket.extensions`` subset)."""

    __slots__ = ("abs_send_time", "audio_level", "mid")

    def __init__(self, abs_send_time=None, audio_level=None):
        self.abs_send_time = abs_send_time
        self.audio_level = audio_level
        self.mid = None


_header = struct.Struct("!BBHII").unpack_from
_new_packet = RtpPacket.__new__


def parse_rtp(data: bytes, ast_id, level_id):
    """``RtpPacket.parse`` for the fast path: the same checks (``None`` where aiortc raises
    ``ValueError``) and the same fields, but only the extensions a tapped receiver reads
    (abs-send-time, audio level) and no ``HeaderExtensions`` dataclasses built per packet.
    The result is an aiortc ``RtpPacket`` (its helpers, e.g. ``unwrap_rtx``, take it), with
    the datagram itself as ``_raw``."""
    n = len(data)
    if n < 12:
        return None
    b0, m_pt, seq, ts, ssrc = _header(data, 0)
    if b0 >> 6 != 2:
        return None
    cc = b0 & 0x0F
    pos = 12 + 4 * cc
    if n < pos:
        return None
    ast = level = None
    if b0 & 0x10:
        if n < pos + 4:
            return None
        profile = (data[pos] << 8) | data[pos + 1]
        end = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3]) * 4
        pos += 4
        if n < end:
            return None
        one = profile == 0xBEDE  # one-byte header elements (RFC 8285); else two-byte
        if one or (profile >> 4) == 0x100:
            while pos < end:
                x = data[pos]
                if x == 0:  # padding between elements
                    pos += 1
                    continue
                if one:
                    xid, ln = x >> 4, (x & 0x0F) + 1
                    if xid == 15:
                        break
                    pos += 1
                else:
                    if pos + 1 >= end:
                        break
                    xid, ln = x, data[pos + 1]
                    pos += 2
                if pos + ln > end:
                    return None
                if xid == ast_id and ln == 3:
                    ast = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
                elif xid == level_id and ln == 1:
                    v = data[pos]
                    level = (v & 0x80 == 0x80, v & 0x7F)
                pos += ln
        pos = end
    padding = 0
    if b0 & 0x20:
        padding = data[-1]
        if not padding or padding > n - pos:
            return None
    p = _new_packet(RtpPacket)
    p.version = 2
    p.marker = m_pt >> 7
    p.payload_type = m_pt & 0x7F
    p.sequence_number = seq
    p.timestamp = ts
    p.ssrc = ssrc
    p.csrc = [int.from_bytes(data[i:i + 4], "big") for i in range(12, 12 + 4 * cc, 4)] if cc else []
    # a stand-in for aiortc's HeaderExtensions with the fields a tapped receiver reads
    extensions: Any = LeanExtensions(ast, level)
    p.extensions = extensions
    p.payload = data[pos:n - padding] if padding else data[pos:]
    p.padding_size = padding
    p._raw = data  # type: ignore[attr-defined]  # as received: what ULPFEC protects
    return p


def install_fast_receive(dtls) -> bool:
    """Handle SRTP/SRTCP datagrams of ``dtls``'s connection in the socket's callback.

    aiortc hands every datagram through aioice's queue to the DTLS transport's receive task
    (a STUN parse attempt that raises, a queue put and get, a task wake-up and four awaits
    per packet) before ``_handle_rtp_data`` runs. Here an SRTP/SRTCP datagram (first byte
    128–191; STUN has 0–3, DTLS 20–63) is unprotected and handled at once, in the same
    order, by the same aiortc methods; everything else takes aioice's path as before.
    Returns False (and changes nothing) when a hook is missing."""
    if fast_receive_hooks_missing():
        return False
    try:
        conn = dtls.transport._connection
        protocols = list(conn._protocols)
    except AttributeError:
        return False
    if getattr(conn, "_livedesk_fast", False):
        return True
    if not all(hasattr(dtls, n) for n in ("_rx_srtp", "_handle_rtp_data",
                                           "_handle_rtcp_data", "_state")):
        return False
    connected = State.CONNECTED
    current_ms = ntp_ms

    parse = RtpPacket.parse
    ids = dtls._rtp_header_extensions_map.__dict__.get("_HeaderExtensionsMap__ids")
    if ids is None:
        return False

    rx_session: list = [None, None]

    def handle(data: bytes) -> None:
        srtp = dtls._rx_srtp
        try:
            if is_rtcp(data):
                drive(dtls._handle_rtcp_data(srtp.unprotect_rtcp(data)))
                return
            if srtp is not rx_session[0]:
                rx_session[:] = [srtp, srtp_calls(srtp)[1]]
            data = rx_session[1](data)
        except Exception:  # pylibsrtp.Error: a replay or a bad auth tag, dropped as aiortc does
            return
        arrival = current_ms()
        # RTCDtlsTransport._handle_rtp_data, with the tapped receivers' lean handler
        packet = parse_rtp(data, ids.abs_send_time, ids.audio_level)
        if packet is None:
            return
        receiver = dtls._rtp_router.route_rtp(packet)
        if receiver is None:
            return
        tap = receiver.__dict__.get(TAP_ATTR)
        if tap is not None:
            tap.receive(packet, arrival)
            return
        try:  # not ours (never, in passthrough): aiortc's full parse and handler
            packet = parse(data, dtls._rtp_header_extensions_map)
        except ValueError:
            return
        drive(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival))

    for proto in protocols:
        original = proto.datagram_received

        def datagram_received(data, addr, original=original):
            if data and 127 < data[0] < 192 and dtls._state == connected and dtls._rx_srtp:
                handle(data)
            else:
                original(data, addr)

        proto.datagram_received = datagram_received
    conn._livedesk_fast = True
    return True

