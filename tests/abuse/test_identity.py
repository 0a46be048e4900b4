"""Finding 11, viewer name part (issue 13): the viewer-chosen ``name`` of
``conversation.open`` overrode the token's name (and 60,000 characters were accepted).
Now the display name is the token's; what the viewer chose is a bounded ``nickname``, shown
as one (``viewer.nickname``; the agent console shows "nickname: …": see
``tests/e2e/test_nickname.py``). Both backends."""

from __future__ import annotations

import pytest

from tests.abuse.helpers import start_on
from tests.conftest import stop_gateway
from tests.workspace.helpers import agent

pytestmark = pytest.mark.parity


async def test_nickname_never_replaces_the_token_name(backend):
    gw = await start_on(backend)
    try:
        a = await agent(gw, "a1")
        admin = await gw.client("admin", "boss")
        v = await gw.client("viewer", "v-123", room=gw.room_id, name="小王")
        snap = await v.request("conversation.open", room=gw.room_id, name="Agent a1 (客服)")
        assert snap["viewer"] == {"user": "v-123", "name": "小王", "nickname": "Agent a1 (客服)"}
        cid = snap["conversation"]
        await v.request("conversation.escalate", conversation=cid)
        got = await a.event("conversation.assigned", conversation=cid)
        assert got["context"]["viewer"]["name"] == "小王"
        assert got["context"]["viewer"]["nickname"] == "Agent a1 (客服)"
        listed = await admin.request("conversation.list")
        [row] = [c for c in listed["conversations"] if c["conversation"] == cid]
        assert row["viewer"]["name"] == "小王"
        conv = gw.gw.support.store.get(cid)
        assert conv.viewer_name == "小王" and conv.viewer_nickname == "Agent a1 (客服)"
        # messages carry the token's name too
        m = await v.request("message.send", conversation=cid, text="hi", client_msg_id="1")
        assert m["from"]["name"] == "小王"
    finally:
        await stop_gateway(gw)


@pytest.mark.parametrize("name,code", [("x" * 60000, "too_large"), ("a" * 25, "bad_request"),
                                       ("\ud800", "bad_request"), ("ok\u0007", "bad_request")])
async def test_nickname_is_bounded_and_clean(backend, name, code):
    gw = await start_on(backend)
    try:
        v = await gw.client("viewer", "v1", room=gw.room_id, name="V")
        r = await v.request("conversation.open", room=gw.room_id, name=name)
        assert r["type"] == "error" and r["code"] == code, r
        assert not gw.gw.support.store.for_viewer("v1")  # nothing stored
        ok = await v.request("conversation.open", room=gw.room_id, name="a" * 24)
        assert ok["viewer"]["nickname"] == "a" * 24 and ok["viewer"]["name"] == "V"
    finally:
        await stop_gateway(gw)
