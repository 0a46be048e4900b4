"""RTP-level forwarding around aiortc's sender: the gateway writes the packets, aiortc keeps
the RTCP.

A passthrough destination's ``RTCRtpSender`` never packetizes anything: the
:class:`~gateway.media.rtp_sink.RtpSink` writes the source's packets to the sender's
transport itself (:func:`rtp_writer`: SRTP protect and ``sendto`` synchronously; aiortc's
path is four awaits per packet). The sender still runs its RTCP loop, so these hooks hand
the sink what aiortc would have given its packetizer and encoder: the negotiated
parameters when it starts (:func:`on_send_parameters`), the NACKed sequence numbers
(:func:`on_retransmit`), PLI/FIR (:func:`on_keyframe_request`) and the far end's REMB
(:func:`on_remb_received`); :func:`record_sent` keeps its sender-report counters true. Up
the other way, :func:`on_remb` lowers the REMB the source's receiver sends to what the
destinations report.

:func:`forwarding_hooks_missing` lists what an aiortc/aioice upgrade changed; the writer
then falls back to aiortc's own ``_send_rtp``. Applied per sender and receiver, by the
passthrough forwarder.
"""

from __future__ import annotations

import asyncio
import functools

from aioice import ice
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import State
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

from signaling.coro import retrieve

from .hooks import source_of
from .srtp import srtp_calls

HOOK_SEND_KEYFRAME = "aiortc.RTCRtpSender._send_keyframe (called on PLI/FIR)"
HOOK_SEND_PARAMS = "aiortc.RTCRtpSender.send(parameters) (codecs, muxId, headerExtensions)"
HOOK_SEND_RETRANSMIT = "aiortc.RTCRtpSender._retransmit (called per NACKed sequence number)"
HOOK_SEND_SR = ("aiortc.RTCRtpSender.__ntp_timestamp/__rtp_timestamp/__octet_count/"
                "__packet_count (read by _run_rtcp for sender reports)")
HOOK_DTLS_SEND = "aiortc.RTCDtlsTransport._send_rtp (_tx_srtp.protect → transport._send)"
HOOK_ICE_SEND = "aioice.Connection._nominated / StunProtocol.send_data (transport.sendto)"
HOOK_RECV_REMB = "aiortc.RTCRtpReceiver._send_rtcp (REMB from its bitrate estimator)"

_S = "_RTCRtpSender__"


def forwarding_hooks_missing() -> list[str]:
    """Names of the RTP-forwarding hooks this aiortc/aioice no longer has (``[]`` = fine)."""
    return list(_forwarding_hooks_missing())


@functools.cache
def _forwarding_hooks_missing() -> tuple[str, ...]:
    missing = []
    send = source_of(RTCRtpSender.send)
    if "parameters.codecs[0]" not in send or "parameters.muxId" not in send:
        missing.append(HOOK_SEND_PARAMS)
    if "await self._retransmit(seq)" not in source_of(RTCRtpSender._handle_rtcp_packet):
        missing.append(HOOK_SEND_RETRANSMIT)
    rtcp = source_of(RTCRtpSender._run_rtcp)
    if not all(f"self.__{n}" in rtcp for n in ("ntp_timestamp", "rtp_timestamp",
                                                "octet_count", "packet_count")):
        missing.append(HOOK_SEND_SR)
    dtls = source_of(RTCDtlsTransport._send_rtp)
    if "self._tx_srtp.protect(data)" not in dtls or "self.transport._send(data)" not in dtls:
        missing.append(HOOK_DTLS_SEND)
    if ("self._nominated.get(component)" not in source_of(ice.Connection.sendto)
            or "self.transport.sendto(data, addr)" not in source_of(ice.StunProtocol.send_data)):
        missing.append(HOOK_ICE_SEND)
    if "await self._send_rtcp(rtcp_packet)" not in source_of(RTCRtpReceiver._handle_rtp_packet):
        missing.append(HOOK_RECV_REMB)
    return tuple(missing)


def on_keyframe_request(sender, callback) -> None:
    """A PLI/FIR that ``sender`` receives calls ``callback()`` instead of flagging its encoder."""
    sender._send_keyframe = callback


def on_send_parameters(sender, callback) -> None:
    """``callback(parameters)`` when aiortc starts ``sender`` with the negotiated
    :class:`~aiortc.RTCRtpSendParameters` (payload types, RTX, mid, extension ids): what a
    forwarding sender needs to write its own packets."""
    original = sender.send

    async def send(parameters):
        callback(parameters)
        await original(parameters)

    sender.send = send


def on_retransmit(sender, callback) -> None:
    """A NACKed sequence number on ``sender`` calls ``callback(seq)`` (aiortc's own
    ``_retransmit`` looks in a history that only its packetizer fills)."""
    async def retransmit(seq: int) -> None:
        callback(seq)

    sender._retransmit = retransmit


_SR_NTP, _SR_RTP = _S + "ntp_timestamp", _S + "rtp_timestamp"
_SR_OCTETS, _SR_PACKETS = _S + "octet_count", _S + "packet_count"


def record_sent(sender_state: dict, ntp: int, rtp_timestamp: int, octets: int) -> None:
    """Account one RTP packet written around aiortc: its sender reports (SR) stay true.
    ``sender_state`` is the sender's ``__dict__`` (where its private counters live)."""
    sender_state[_SR_NTP] = ntp
    sender_state[_SR_RTP] = rtp_timestamp
    sender_state[_SR_OCTETS] += octets
    sender_state[_SR_PACKETS] += 1


def rtp_writer(sender):
    """``write(rtp: bytes) -> bool``: protect and send one plain RTP packet on ``sender``'s
    transport, synchronously (no task, no coroutine chain per packet: aiortc's path is four
    awaits deep, and the per-packet cost is what passthrough forwarding is made of).

    A plain UDP candidate pair is written to directly; anything else (a TURN relay, whose
    send may await) goes through aiortc's own ``_send_rtp`` in a task. ``False``: the
    transport is not (or no longer) connected; the packet is dropped, as aiortc would."""
    connected = State.CONNECTED
    plain_send = ice.StunProtocol.send_data
    dtls = sender.transport
    conn = None
    tx_session: list = [None, None]

    def slow(data: bytes) -> bool:
        if dtls._state != connected:
            return False
        fut = asyncio.ensure_future(dtls._send_rtp(data))
        fut.add_done_callback(retrieve)
        return True

    if forwarding_hooks_missing():
        return slow

    def write(data: bytes) -> bool:
        nonlocal conn
        if dtls._state != connected:
            return False
        if conn is None:
            conn = dtls.transport._connection
        pair = conn._nominated.get(1)
        if pair is None:
            return False
        proto = pair.protocol
        if type(proto).send_data is not plain_send:
            return slow(data)
        tx = dtls._tx_srtp
        if tx is not tx_session[0]:  # (set when DTLS completes; looked up once)
            tx_session[:] = [tx, srtp_calls(tx)[0]]
        proto.transport.sendto(tx_session[1](data), pair.remote_addr)
        return True

    return write


def _remb_of(packet):
    """``(bitrate, ssrcs)`` of an RTCP REMB packet; ``None`` for anything else."""
    if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
        try:
            return unpack_remb_fci(packet.fci)
        except ValueError:
            return None
    return None


def on_remb(receiver, adjust) -> None:
    """Every REMB ``receiver`` sends upstream (from aiortc's bitrate estimator) goes out as
    ``adjust(bitrate, ssrcs) -> bitrate`` (``None``: not at all): the forwarder lowers it to
    what the downstream receivers report, so a sender never sends more than the slowest of
    them takes, and throttles it."""
    original = receiver._send_rtcp

    async def send_rtcp(packet) -> None:
        remb = _remb_of(packet)
        if remb is not None:
            bitrate = adjust(*remb)
            if bitrate is None:
                return  # held back (throttled)
            packet.fci = pack_remb_fci(int(bitrate), remb[1])
        await original(packet)

    receiver._send_rtcp = send_rtcp


def on_remb_received(sender, callback) -> None:
    """A REMB that ``sender``'s far end reports calls ``callback(bitrate)`` (aiortc only
    hands it to an encoder, and a forwarding sender has none)."""
    original = sender._handle_rtcp_packet

    async def handle(packet) -> None:
        remb = _remb_of(packet)
        if remb is None:
            await original(packet)
        elif sender._ssrc in remb[1]:
            callback(remb[0])

    sender._handle_rtcp_packet = handle

