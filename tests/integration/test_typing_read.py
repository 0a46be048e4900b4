"""Issue 18: typing indicators and delivered/read marks over the real protocol, on both
backends (docs/protocol.md "Typing and read marks")."""

from __future__ import annotations

import pytest

from gateway.support.chat_signals import TYPING_INTERVAL_S, TYPING_TTL_S
from tests.conftest import start_gateway, stop_gateway

from .test_conversations import escalated_pair

pytestmark = pytest.mark.parity


async def test_typing_reaches_the_other_side_only_and_is_throttled(gateway):
    v, a, cid = await escalated_pair(gateway)
    r = await v.request("conversation.typing", conversation=cid, typing=True)
    assert r["type"] == "ack" and r["relayed"] is True, r
    ev = await a.event("typing", conversation=cid)
    assert ev["by"]["user"] == "v1" and ev["by"]["role"] == "viewer" and ev["typing"] is True
    assert ev["expires_in"] == TYPING_TTL_S
    assert not [f for f in v.frames if f.get("type") == "typing"]  # never to the sender

    # a second start within the interval: refused, typed, nothing relayed
    n = len(a.frames)
    again = await v.request("conversation.typing", conversation=cid, typing=True)
    assert again["type"] == "error" and again["code"] == "rate_limited", again
    assert str(int(TYPING_INTERVAL_S)) in again["message"]
    # a stop is relayed; a second stop (nothing shown) is not
    stop = await v.request("conversation.typing", conversation=cid, typing=False)
    assert stop["relayed"] is True
    assert (await a.event("typing", conversation=cid, typing=False, after=n))["by"]["user"] == "v1"
    assert (await v.request("conversation.typing", conversation=cid, typing=False))["relayed"] is False

    # the agent types too: the viewer sees it
    await a.request("conversation.typing", conversation=cid)
    assert (await v.event("typing", conversation=cid))["by"]["role"] == "agent"


async def test_read_marks_advance_and_reach_the_writer(gateway):
    v, a, cid = await escalated_pair(gateway)
    m1 = await a.request("message.send", conversation=cid, text="您好", client_msg_id="r1")
    m2 = await a.request("message.send", conversation=cid, text="在吗", client_msg_id="r2")
    d = await v.request("conversation.read", conversation=cid, message_id=m2["message_id"],
                        state="delivered")
    assert d["relayed"] is True
    ev = await a.event("read", conversation=cid, state="delivered")
    assert ev["message_id"] == m2["message_id"] and ev["by"] == {"role": "viewer", "user": "v1"}
    r = await v.request("conversation.read", conversation=cid, message_id=m2["message_id"])
    assert r["relayed"] is True
    assert (await a.event("read", conversation=cid, state="read"))["message_id"] == m2["message_id"]
    # an earlier or repeated mark does not move it back, nor is it relayed
    assert (await v.request("conversation.read", conversation=cid, message_id=m1["message_id"]))["relayed"] is False
    assert (await v.request("conversation.read", conversation=cid, message_id=m2["message_id"]))["relayed"] is False


async def test_the_latest_read_mark_of_each_member_is_in_the_snapshot(gateway, backend):
    """The writer who reloads gets the reader's mark back from the gateway: each member's
    latest ``read`` mark is in the conversation's state (one field per member, last writer
    wins on the log position), on a fresh socket and — Redis — on another node."""
    v, a, cid = await escalated_pair(gateway)
    m1 = await a.request("message.send", conversation=cid, text="您好", client_msg_id="s1")
    m2 = await a.request("message.send", conversation=cid, text="在吗", client_msg_id="s2")
    snap = await a.request("conversation.get", conversation=cid)
    assert "read_marks" not in snap, snap  # nobody has read anything yet
    # delivered is a moment, not kept; read is
    d = await v.request("conversation.read", conversation=cid, message_id=m2["message_id"],
                        state="delivered")
    assert d["relayed"] is True and d["stored"] is False, d
    assert "read_marks" not in await a.request("conversation.get", conversation=cid)
    r = await v.request("conversation.read", conversation=cid, message_id=m2["message_id"])
    assert r["relayed"] is True and r["stored"] is True, r
    # an earlier mark, sent later (another tab of the viewer), does not move it back
    old = await v.request("conversation.read", conversation=cid, message_id=m1["message_id"])
    assert old["stored"] is False and old["relayed"] is False, old
    # the agent reads the viewer's reply: both marks, each member's own field
    m3 = await v.request("message.send", conversation=cid, text="在的", client_msg_id="s3")
    assert (await a.request("conversation.read", conversation=cid,
                            message_id=m3["message_id"]))["stored"] is True

    want = [{"by": {"role": "viewer", "user": "v1"}, "message_id": m2["message_id"],
             "state": "read"},
            {"by": {"role": "agent", "user": "a1"}, "message_id": m3["message_id"],
             "state": "read"}]

    def marks(snap):
        got = snap.get("read_marks") or []
        assert all(isinstance(m.pop("ts"), float) for m in got), got
        return got

    # the writer reloads: a new socket's conversation.get has the reader's mark
    a2 = await gateway.client("agent", "a1", name="Agent a1")
    assert marks(await a2.request("conversation.get", conversation=cid)) == want
    v2 = await gateway.client("viewer", "v1", room=gateway.room_id, name="Viewer v1")
    assert marks(await v2.request("conversation.get", conversation=cid)) == want
    # the resume snapshot (conversation.open of the open conversation) carries it too
    again = await v2.request("conversation.open", room=gateway.room_id)
    assert again["conversation"] == cid and marks(again) == want, again
    if backend.name == "redis":
        # a node that starts now reads them from Redis's conversation hash
        other = await start_gateway(backend.config(retain_s=600))
        try:
            a3 = await other.client("agent", "a1", name="Agent a1")
            assert marks(await a3.request("conversation.get", conversation=cid)) == want
        finally:
            await stop_gateway(other)


async def test_bad_typing_and_read_frames_get_typed_errors(gateway):
    v, a, cid = await escalated_pair(gateway)
    unknown = await v.request("conversation.read", conversation=cid, message_id="nope")
    assert unknown["type"] == "error" and unknown["code"] == "not_found"
    bad_state = await v.request("conversation.read", conversation=cid, message_id="x", state="seen")
    assert bad_state["type"] == "error" and bad_state["code"] == "bad_request"
    bad_flag = await v.request("conversation.typing", conversation=cid, typing="yes")
    assert bad_flag["type"] == "error" and bad_flag["code"] == "bad_request"
    other = await gateway.client("viewer", "v9", room=gateway.room_id)
    e = await other.request("conversation.typing", conversation=cid)
    assert e["type"] == "error" and e["code"] in ("not_member", "not_found"), e


@pytest.mark.one_backend("redis", why="the Redis commit script's HMAXN write, on its own")
def test_the_redis_write_of_a_read_mark_never_moves_it_back(redis_server):
    """COMMIT's ``HMAXN``: a mark decided on a node that had not yet applied a later one
    (two tabs of one reader on two nodes) does not replace it in the conversation hash."""
    import json

    import redis

    from gateway.support.redis_commit import COMMIT

    r = redis.Redis.from_url(redis_server.url)
    try:
        commit = r.register_script(COMMIT)

        def write(n: int) -> None:
            mark = json.dumps({"n": n, "message_id": f"m{n}", "role": "viewer", "ts": 1.0})
            res = commit(args=["t:", "[]", json.dumps([["HMAXN", "t:conv", "read:v1", str(n),
                                                        mark]]), "", ""])
            assert res[0] == b"ok", res

        write(5)
        write(3)  # late and lower: kept out
        assert json.loads(r.hget("t:conv", "read:v1"))["n"] == 5
        write(7)
        assert json.loads(r.hget("t:conv", "read:v1"))["n"] == 7
        r.hset("t:conv", "read:v1", "not json")  # a damaged field is replaced, not an error
        write(1)
        assert json.loads(r.hget("t:conv", "read:v1"))["n"] == 1
    finally:
        r.close()
