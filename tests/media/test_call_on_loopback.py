"""Network safety (docs/testing.md#network-safety): an in-process aiortc call uses loopback
only.

After a real viewer ↔ gateway ↔ agent call (``one_to_one``: the agent decodes the viewer's
colour), every ICE agent of the call — each client's (``RtcClient``) and each of the
gateway's peers' — has gathered, bound, been given, learnt (peer-reflexive) and paired
127/8 or ::1 addresses only, on both ends of every pair. And the test configuration did it
alone: ``tests/loopback_ice.py`` had nothing to drop or refuse during the call.

What would make it fail: a client without ``tests/loopback_ice.py`` gathers on eth0's address
(aioice skips loopback), and the gateway learns that address as peer-reflexive from the
client's checks; a media test gateway without ``LOOPBACK_MEDIA`` announces no address the
client keeps, or (with the guard removed) one the client checks.
"""

from __future__ import annotations

from tests import loopback_ice
from tests.e2e.ice_addresses import AgentAddresses, gateway_agents, is_loopback
from tests.media.conftest import one_to_one
from tests.media.rtc_client import RtcClient


def client_agents(client: RtcClient) -> list[AgentAddresses]:
    """The aioice agents of a test client's connection (one with BUNDLE), as
    ``gateway_agents`` reads the gateway's."""
    assert client.pc is not None
    seen: dict[int, AgentAddresses] = {}
    for t in client.pc.getTransceivers():
        conn = t.receiver.transport.transport._connection
        seen.setdefault(id(conn), AgentAddresses(
            owner=client.user,
            local=[(c.host, c.port, c.type) for c in conn.local_candidates],
            remote=[(c.host, c.port, c.type) for c in conn.remote_candidates],
            pairs=[(p.local_addr, p.remote_addr, p.state.name) for p in conn._check_list]))
    return list(seen.values())


def bound_addresses(pcs) -> list[tuple[str, int]]:
    """Where every socket of these connections' agents is bound."""
    out = []
    for pc in pcs:
        for t in pc.getTransceivers():
            for p in t.receiver.transport.transport._connection._protocols:
                out.append(p.transport.get_extra_info("sockname")[:2])
    return out


async def test_an_in_process_call_uses_loopback_only(gw):
    dropped, refused = len(loopback_ice.DROPPED), len(loopback_ice.REFUSED)
    async with one_to_one(gw) as call:
        await call.vc.wait_colour("a1", call.ac.colour)  # media both ways
        clients = client_agents(call.vc) + client_agents(call.ac)
        gateway = gateway_agents(gw)
        peers = [p.pc for p in gw.gw.media.peers()]
        bound = bound_addresses([call.vc.pc, call.ac.pc, *peers])

    assert len(clients) == 2 and len(gateway) == 2, (clients, gateway)
    for agent in clients + gateway:
        assert agent.local and agent.remote and agent.succeeded, agent
        assert not agent.non_loopback(), (agent.owner, agent.non_loopback())
    assert bound and all(is_loopback(host) for host, _ in bound), bound
    # the client side's hosts are 127.0.0.1 itself (not ::1, not another 127/8 address)
    assert {c[0] for a in clients for c in a.local} == {"127.0.0.1"}, clients
    assert loopback_ice.DROPPED[dropped:] == [] and loopback_ice.REFUSED[refused:] == [], (
        loopback_ice.DROPPED[dropped:], loopback_ice.REFUSED[refused:])
