"""Issue 18: typing indicators and delivered/read marks over the real protocol, on both
backends (docs/protocol.md "Typing and read marks")."""

from __future__ import annotations

import pytest

from gateway.support.chat_signals import TYPING_INTERVAL_S, TYPING_TTL_S

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
