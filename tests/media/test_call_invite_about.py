"""Issue 18: a host's invitation says whom the call is about and why, and every call.state
names its participants (display names for the tiles), without any media flowing."""

from __future__ import annotations

from tests.media.conftest import escalated, ring


async def test_invitation_names_the_viewer_and_the_reason(gw):
    v, a, cid = await escalated(gw)
    h = await gw.client("host", "h1", room=gw.room_id, name="山月")
    await h.request("ping")  # live: gets events
    call = await ring(v, a, cid)
    await a.request("call.invite", call=call, user="h1")
    inc = await h.event("call.incoming", call=call)
    conv = gw.gw.support.store.get(cid)
    assert inc["about"] == {"viewer": {"user": "v1", "name": "Viewer v1"},
                            "reason": conv.escalation_reason}, inc
    assert conv.escalation_reason  # the stub escalated for a reason: it is told
    joined = await h.request("call.join", call=call)
    names = {p["user"]: p.get("name") for p in joined["participants"]}
    assert names == {"v1": "Viewer v1", "a1": "Agent a1", "h1": "山月"}, joined


async def test_the_viewer_ringing_gets_no_about(gw):
    v, a, cid = await escalated(gw)
    st = await v.request("call.request", conversation=cid, video=False)
    inc = await a.event("call.incoming", call=st["call"])
    assert "about" not in inc
    assert st["participants"][0]["name"] == "Viewer v1"
