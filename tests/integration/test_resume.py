"""Resume: a dropped socket loses nothing; resume is refused when it cannot be exact."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import start_gateway, stop_gateway
from tests.integration.test_conversations import escalated_pair
from tests.wsclient import WSClient

pytestmark = pytest.mark.parity


async def test_drop_and_resume_replays_missed_frames_with_original_seqs(gateway):
    v, a, cid = await escalated_pair(gateway)
    await v.request("ping")
    old_session, last_seq = v.session, v.last_seq
    before = list(v.frames)
    await v.drop()
    await asyncio.sleep(0.05)
    sent = []
    for i in range(5):
        m = await a.request("message.send", conversation=cid, text=f"while away {i}",
                            client_msg_id=f"w{i}")
        sent.append(m["message_id"])

    v2 = await WSClient(gateway.url, gateway.http).connect()
    gateway.clients.append(v2)
    w = await v2.hello(gateway.token("viewer", "v1", room=gateway.room_id))
    assert w["type"] == "welcome"
    await v2.send("resume", session=old_session, last_seq=last_seq)
    resumed = await v2.event("resumed")
    assert resumed["session"] == old_session and resumed["last_seq"] == last_seq
    replay = [f for f in v2.frames if f["type"] != "welcome" and f["type"] != "resumed"]
    assert [f["message_id"] for f in replay if f["type"] == "message"] == sent
    seqs = [f["seq"] for f in replay] + [resumed["seq"]]
    assert seqs == list(range(last_seq + 1, last_seq + 1 + len(seqs)))
    assert max(f["seq"] for f in before) == last_seq
    # live again on the old session: new messages continue the sequence
    m = await a.request("message.send", conversation=cid, text="back?", client_msg_id="b")
    got = await v2.event("message", message_id=m["message_id"])
    assert got["seq"] == resumed["seq"] + 1
    # and the viewer can talk as before
    mine = await v2.request("message.send", conversation=cid, text="yes", client_msg_id="y")
    assert mine["type"] == "message"


async def test_resume_while_old_socket_still_open_takes_it_over(gateway):
    v, a, cid = await escalated_pair(gateway)
    v2 = await WSClient(gateway.url, gateway.http).connect()
    gateway.clients.append(v2)
    await v2.hello(gateway.token("viewer", "v1", room=gateway.room_id))
    await v2.send("resume", session=v.session, last_seq=v.last_seq)
    await v2.event("resumed")
    assert await v.wait_closed() == 4000
    m = await a.request("message.send", conversation=cid, text="to the new socket",
                        client_msg_id="n")
    await v2.event("message", message_id=m["message_id"])


async def test_resume_failures(gateway):
    v, a, cid = await escalated_pair(gateway)
    mallory = await gateway.client("viewer", "mallory", room=gateway.room_id)
    e = await mallory.request("resume", session=v.session, last_seq=0)
    assert e["code"] == "resume_failed" and "another user" in e["message"]
    ghost = await gateway.client("viewer", "v1", room=gateway.room_id)
    e = await ghost.request("resume", session="s_nope", last_seq=0)
    assert e["code"] == "resume_failed"
    ahead = await gateway.client("viewer", "v1", room=gateway.room_id)
    e = await ahead.request("resume", session=v.session, last_seq=10_000)
    assert e["code"] == "resume_failed"
    # a failed resume leaves a usable fresh session
    conv = await ahead.request("conversation.open", room=gateway.room_id)
    assert conv["conversation"] == cid
    # resume is only allowed right after hello
    e = await ahead.request("resume", session=v.session, last_seq=1)
    assert e["code"] == "bad_state"


async def test_resume_refused_when_frames_were_trimmed(backend):
    r = await start_gateway(backend.config(retain_frames=5, retain_s=0.0, rate_per_s=1000,
                                           rate_burst=1000))
    try:
        v, a, cid = await escalated_pair(r)
        await v.drop()
        for i in range(20):
            await a.request("message.send", conversation=cid, text=f"m{i}", client_msg_id=f"m{i}")
        c = await r.client("viewer", "v1", room=r.room_id)
        e = await c.request("resume", session=v.session, last_seq=2)
        assert e["code"] == "resume_failed" and "retained" in e["message"]
    finally:
        await stop_gateway(r)


async def test_fresh_session_gets_nothing_before_its_first_request(gateway):
    """The session a hello creates stays silent until the client decides (resume or not)."""
    v, a, cid = await escalated_pair(gateway)
    c = await gateway.client("viewer", "v1", room=gateway.room_id)
    await a.request("message.send", conversation=cid, text="hello?", client_msg_id="h")
    await asyncio.sleep(0.1)
    assert [f["type"] for f in c.frames] == ["welcome"]
