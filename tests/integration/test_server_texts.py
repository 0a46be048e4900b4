"""Issue 18: server-worded chat messages carry ``text_key`` + ``params`` next to ``text``
(docs/protocol.md "Server texts"), live and in the history, on both backends."""

from __future__ import annotations

import pytest

from .test_conversations import escalated_pair

pytestmark = pytest.mark.parity


async def test_compensation_lines_are_keys_with_params_and_keep_their_text(gateway):
    v, a, cid = await escalated_pair(gateway)
    r = await a.request("action.compensate", conversation=cid, kind="coupon", amount=20,
                        reason="物流延误")
    assert r["type"] != "error", r
    line = await v.wait_for(lambda f: f.get("type") == "message" and f.get("kind") == "system")
    assert line["text_key"] == "comp.done", line
    assert line["params"] == {"kind": "coupon", "amount": 20}
    assert "¥20" in line["text"]  # old clients still get the Chinese wording
    # the history (a reload) carries the same key
    snap = await v.request("conversation.get", conversation=cid)
    keyed = [m for m in snap["messages"] if m.get("text_key")]
    assert [(m["text_key"], m["params"]) for m in keyed] == [("comp.done", {"kind": "coupon", "amount": 20})]
    # what people write never carries a key
    mine = await v.request("message.send", conversation=cid, text="谢谢", client_msg_id="t1")
    assert "text_key" not in mine and "params" not in mine
