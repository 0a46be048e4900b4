"""Which addresses a call's ICE used, as each side saw them: every candidate pair of every
``RTCPeerConnection`` of a page (``getStats``), and every candidate and pair of the gateway's
aioice agents. ``tests/e2e/test_call_loopback.py`` asserts they are all loopback
(docs/testing.md#network-safety).

Why both sides: Chromium's stats show the pairs it checked (a socket bound to a non-loopback
address shows there as a pair's local end); the gateway's agent shows the addresses it was
given or learnt from incoming checks (peer-reflexive) and would answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.loopback_ice import is_loopback

# every RTCPeerConnection a page makes, kept in window.__pcs (an init script)
TRACK_PCS_JS = r"""
(() => {
  const Orig = window.RTCPeerConnection;
  if (!Orig || Orig.__ldTracked) return;
  window.__pcs = window.__pcs || [];
  function Tracked(...args) { const pc = new Orig(...args); window.__pcs.push(pc); return pc; }
  Tracked.prototype = Orig.prototype;
  Tracked.__ldTracked = true;
  Object.setPrototypeOf(Tracked, Orig);
  window.RTCPeerConnection = Tracked;
})();
"""

PAIRS_JS = """async () => {
  const out = [];
  for (const pc of (window.__pcs || [])) {
    if (pc.connectionState === 'closed') continue;
    const stats = await pc.getStats();
    const by = new Map();
    stats.forEach((r) => by.set(r.id, r));
    const end = (c) => c ? [c.address || c.ip || null, c.port || 0, c.candidateType || null]
                         : [null, 0, null];
    const pairs = [];
    stats.forEach((r) => {
      if (r.type !== 'candidate-pair') return;
      pairs.push({state: r.state, nominated: !!r.nominated,
                  bytesReceived: r.bytesReceived || 0, bytesSent: r.bytesSent || 0,
                  local: end(by.get(r.localCandidateId)),
                  remote: end(by.get(r.remoteCandidateId))});
    });
    out.push({connectionState: pc.connectionState, pairs});
  }
  return out;
}"""


async def browser_pairs(page) -> list[dict]:
    """One entry per open RTCPeerConnection of ``page``: its state and candidate pairs."""
    return await page.evaluate(PAIRS_JS)


def non_loopback_browser_pairs(conns: list[dict]) -> list[dict]:
    return [p for c in conns for p in c["pairs"]
            if not (is_loopback(p["local"][0]) and is_loopback(p["remote"][0]))]


@dataclass
class AgentAddresses:
    """One aioice agent of the gateway: what it gathered, was given or learnt, and paired."""

    owner: str
    local: list[tuple[str, int, str]] = field(default_factory=list)
    remote: list[tuple[str, int, str]] = field(default_factory=list)
    pairs: list[tuple[tuple[str, int], tuple[str, int], str]] = field(default_factory=list)

    def non_loopback(self) -> list[object]:
        bad: list[object] = [c for c in self.local + self.remote if not is_loopback(c[0])]
        bad += [p for p in self.pairs if not (is_loopback(p[0][0]) and is_loopback(p[1][0]))]
        return bad

    @property
    def succeeded(self) -> bool:
        return any(state == "SUCCEEDED" for _, _, state in self.pairs)


def gateway_agents(running) -> list[AgentAddresses]:
    """Every ICE agent of every peer of the gateway's calls (``running``: tests.conftest's
    ``Running``). aiortc keeps the aioice ``Connection`` private; reaching in is the price of
    seeing what the agent would answer."""
    seen: dict[int, AgentAddresses] = {}
    for peer in running.gw.media.peers():
        for t in peer.pc.getTransceivers():
            conn = t.receiver.transport.transport._connection
            if id(conn) in seen:
                continue
            seen[id(conn)] = AgentAddresses(
                owner=peer.owner,
                local=[(c.host, c.port, c.type) for c in conn.local_candidates],
                remote=[(c.host, c.port, c.type) for c in conn.remote_candidates],
                pairs=[(p.local_addr, p.remote_addr, p.state.name) for p in conn._check_list])
    return list(seen.values())
