"""Issue 13, finding 10 (ICE part): remote candidates in denied ranges never reach the
gateway's ICE agent, whether trickled (``rtc.candidate``) or inside the SDP of ``rtc.offer``
and ``rtc.answer``.

Observed by reading, never by sending: every remote candidate aiortc hands to an ICE agent
goes through ``RTCIceTransport.addRemoteCandidate`` (SDP candidates from
``setRemoteDescription`` and trickled ones from ``addIceCandidate`` alike). The test wraps it:
for the gateway's transports it records the candidate and passes on **only loopback ones**
(and end-of-candidates), so even if the gateway let a denied candidate through — as it did
before the fix — no STUN check would be sent to a non-loopback address, nor an mDNS query.
The test's own clients get the gateway's candidates unchanged (127.0.0.1: its ``media_address``).
"""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcicetransport import RTCIceTransport

from gateway.config import DEFAULT_ICE_DENIED_RANGES
from gateway.media.candidates import CandidatePolicy
from tests.conftest import start_gateway, stop_gateway
from tests.loopback_ice import is_loopback
from tests.media.conftest import EscalatingStub, escalated, media_config, ring
from tests.media.rtc_client import GREEN, RED, RtcClient

POLICY = CandidatePolicy.from_ranges(DEFAULT_ICE_DENIED_RANGES)

DENIED_IN_SDP = ["10.0.0.5", "169.254.169.254", "172.17.0.1", "192.168.1.1", "127.0.0.2",
                 "::ffff:10.9.8.7", "fd00::beef", "abc-123.local", "metadata.google.internal"]
DENIED_TRICKLED = ["10.1.2.3", "169.254.169.254", "100.64.0.9", "127.0.0.1", "::1",
                   "fe80::1", "def-456.local"]
ALLOWED_IN_SDP = "203.0.113.9"  # TEST-NET-3: allowed, recorded, never handed on
ALLOWED_TRICKLED = "203.0.113.10"


def line(i: int, ip: str, port: int = 40000) -> str:
    return f"candidate:{9000 + i} 1 udp 2122260223 {ip} {port} typ host"


def inject(sdp: str, ips: list[str]) -> str:
    """``sdp`` with an ``a=candidate`` line per ip added to every m-section (aiortc reads a
    bundled transport's candidates from one of them)."""
    out: list[str] = []
    for x in sdp.split("\r\n"):
        out.append(x)
        if x.startswith("m="):
            out += [f"a={line(n, ip)}" for n, ip in enumerate(ips)]
    return "\r\n".join(out)


class Recorder:
    """What the gateway's ICE agents were given; only loopback ones are passed on.

    A transport is the test client's if it belongs to a connection the test registered or
    to an :class:`RtcClient`'s; any other transport counts as the gateway's (unknown ones
    too: the safe side)."""

    def __init__(self) -> None:
        self.client_pcs: list[RTCPeerConnection] = []
        self.rtc_clients: list[RtcClient] = []
        self.gateway: list[str | None] = []  # candidate ips; None = end-of-candidates

    def client(self, pc: RTCPeerConnection) -> RTCPeerConnection:
        self.client_pcs.append(pc)
        return pc

    def is_client(self, transport: RTCIceTransport) -> bool:
        pcs = self.client_pcs + [c.pc for c in self.rtc_clients if c.pc is not None]
        return any(transport is t.receiver.transport.transport
                   for pc in pcs for t in pc.getTransceivers())


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    original = RTCIceTransport.addRemoteCandidate

    async def recording(self, candidate):
        if rec.is_client(self):
            return await original(self, candidate)
        rec.gateway.append(None if candidate is None else candidate.ip)
        if candidate is None or is_loopback(candidate.ip):
            return await original(self, candidate)
        return None  # the safety net: never a non-loopback address to a live agent

    monkeypatch.setattr(RTCIceTransport, "addRemoteCandidate", recording)
    return rec


async def _gateway(**kw):
    """The production candidate policy (the default denied ranges, not the tests'
    loopback-only one): what these tests are about. Its host candidates stay on 127.0.0.1,
    and the recorder (and ``tests/loopback_ice.py``) keeps every other address from a live
    agent."""
    kw = {"ice_denied_ranges": list(DEFAULT_ICE_DENIED_RANGES), "ice_allow_loopback": False,
          **kw}
    return await start_gateway(media_config(**kw), responder=EscalatingStub())


async def _settle(recorder: Recorder, want: str, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while want not in recorder.gateway:
        assert loop.time() < deadline, f"{want} never reached the ICE agent: {recorder.gateway}"
        await asyncio.sleep(0.02)


async def test_denied_candidates_in_the_offer_and_trickled_never_reach_the_ice_agent(recorder):
    gw = await _gateway()
    pc = recorder.client(RTCPeerConnection(RTCConfiguration(iceServers=[])))
    try:
        v, a, cid = await escalated(gw)
        call = await ring(v, a, cid, video=False)
        pc.addTransceiver("audio", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = inject(pc.localDescription.sdp, DENIED_IN_SDP + [ALLOWED_IN_SDP])
        assert "a=end-of-candidates" in sdp
        reply = await v.request("rtc.offer", call=call, sdp=sdp, timeout=10)
        assert reply["type"] == "rtc.answer", reply
        for n, ip in enumerate(DENIED_TRICKLED + [ALLOWED_TRICKLED]):
            r = await v.request("rtc.candidate", call=call, candidate=line(100 + n, ip),
                                sdpMid="0", sdpMLineIndex=0)
            assert r["type"] != "error", r  # ignored silently: the browser did nothing wrong
        r = await v.request("rtc.candidate", call=call, candidate="", sdpMid="0",
                            sdpMLineIndex=0)
        assert r["type"] != "error", r
        await _settle(recorder, ALLOWED_TRICKLED)

        got = recorder.gateway
        assert ALLOWED_IN_SDP in got and ALLOWED_TRICKLED in got  # the path works
        leaked = [ip for ip in got if ip is not None and not POLICY.allows(ip)]
        assert not leaked, f"denied candidates reached the ICE agent: {leaked}"
        for ip in DENIED_IN_SDP + DENIED_TRICKLED:
            assert ip not in got, ip
        # denied candidates were dropped, so end-of-candidates is held back (aioice would
        # otherwise give up before learning a peer-reflexive pair)
        assert None not in got
        peer = gw.gw.media.peers()[0]
        assert peer.ignored_candidates >= len(DENIED_IN_SDP) + len(DENIED_TRICKLED)
    finally:
        await pc.close()
        await stop_gateway(gw)


async def test_denied_candidates_in_an_answer_never_reach_the_ice_agent(recorder):
    """The other SDP path: the viewer's rtc.answer to a gateway offer."""
    gw = await _gateway()
    try:
        v, a, cid = await escalated(gw)
        call = await ring(v, a, cid, video=False)
        vc = RtcClient(v, "v1", RED, auto_answer=False)
        ac = RtcClient(a, "a1", GREEN)
        recorder.rtc_clients += [vc, ac]
        try:
            await vc.start(call, video=False)
            # the agent also sends video, for which the audio-only viewer needs an m-line
            # of a gateway offer (its audio goes out in the answer's own m-line)
            await ac.start(call, video=True)
            offer = await v.event("rtc.offer", call=call, timeout=10)  # the agent's video
            await vc.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            await vc.pc.setLocalDescription(await vc.pc.createAnswer())
            sdp = inject(vc.pc.localDescription.sdp, DENIED_IN_SDP + [ALLOWED_IN_SDP])
            n_before = len(recorder.gateway)
            r = await v.request("rtc.answer", call=call, sdp=sdp, timeout=10)
            assert r["type"] != "error", r
            await _settle(recorder, ALLOWED_IN_SDP)
            got = recorder.gateway[n_before:]
            leaked = [ip for ip in got if ip is not None and not POLICY.allows(ip)]
            assert not leaked, f"denied candidates in rtc.answer reached the agent: {leaked}"
        finally:
            await vc.close()
            await ac.close()
    finally:
        await stop_gateway(gw)


async def test_control_loopback_candidates_reach_the_agent_when_allowed(recorder):
    """With ``ice_allow_loopback`` a 127.0.0.1 candidate is handed on (and is harmless to
    hand on): the filter is what kept the others out, not the recorder."""
    gw = await _gateway(ice_allow_loopback=True)
    pc = recorder.client(RTCPeerConnection(RTCConfiguration(iceServers=[])))
    try:
        v, a, cid = await escalated(gw)
        call = await ring(v, a, cid, video=False)
        pc.addTransceiver("audio", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = inject(pc.localDescription.sdp, ["127.0.0.1", "10.0.0.5"])
        assert (await v.request("rtc.offer", call=call, sdp=sdp, timeout=10))["type"] == \
            "rtc.answer"
        await v.request("rtc.candidate", call=call, candidate=line(1, "::1", 40001),
                        sdpMid="0", sdpMLineIndex=0)
        await _settle(recorder, "::1")
        assert "127.0.0.1" in recorder.gateway and "10.0.0.5" not in recorder.gateway
    finally:
        await pc.close()
        await stop_gateway(gw)
