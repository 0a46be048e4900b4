"""The issue's acceptance walk, by a client that knows only docs/protocol.md (tests/wsclient.py):
hello → open → message (bot answers within 1 s) → escalate → assigned (agent gets context) →
agent reply → drop and resume with nothing missed → resolve, plus ten kinds of bad input that
each get a typed error while the socket stays usable; every frame received matches the generated
protocol schema (docs/spec/protocol.schema.json).

``walk`` takes the viewer's and the agent's gateway URLs, so the cluster suite runs the very
same walk with the two on different nodes.
"""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from tests.spec_frames import check_frames
from tests.wsclient import WSClient

pytestmark = pytest.mark.parity


async def walk(http: aiohttp.ClientSession, viewer_url: str, agent_url: str, token, room: str,
               resume_url: str | None = None) -> None:
    agent = await WSClient(agent_url, http).connect()
    assert (await agent.hello(token("agent", "acc-agent", None, "Alice")))["type"] == "welcome"
    assert (await agent.request("agent.status", status="available"))["type"] == "ack"

    viewer = await WSClient(viewer_url, http).connect()
    w = await viewer.hello(token("viewer", "acc-viewer", room, "Ann"))
    assert w["type"] == "welcome" and w["seq"] == 1 and w["protocol"] == 1

    conv = await viewer.request("conversation.open", room=room)
    assert conv["type"] == "conversation" and conv["state"] == "bot"
    cid = conv["conversation"]

    t0 = time.perf_counter()
    mine = await viewer.request("message.send", conversation=cid, text="这个多少钱",
                                client_msg_id="acc-1")
    assert mine["type"] == "message" and mine["client_msg_id"] == "acc-1"
    bot = await viewer.wait_for(lambda f: f.get("type") == "message" and f["from"]["role"] == "bot"
                                and f["seq"] > mine["seq"], timeout=1.0)
    assert bot["text"] and time.perf_counter() - t0 < 1.0

    assert (await viewer.request("conversation.escalate", conversation=cid))["type"] == "ack"
    await viewer.event("conversation.state", conversation=cid, state="queued")
    await viewer.event("queue", conversation=cid)
    assigned = await agent.event("conversation.assigned", conversation=cid)
    ctx = assigned["context"]
    assert ctx["viewer"]["user"] == "acc-viewer"
    assert any(m["text"] == "这个多少钱" for m in ctx["messages"])
    await viewer.event("conversation.state", conversation=cid, state="assigned")

    r = await agent.request("message.send", conversation=cid, text="您好，我来帮您", client_msg_id="a-1")
    await viewer.event("message", message_id=r["message_id"])

    # drop the viewer's socket; the agent writes meanwhile; resume loses nothing
    sid, last = viewer.session, viewer.last_seq
    await viewer.drop()
    sent = []
    for i in range(3):
        m = await agent.request("message.send", conversation=cid, text=f"还在吗 {i}",
                                client_msg_id=f"a-away-{i}")
        sent.append(m["message_id"])
    back = await WSClient(resume_url or viewer_url, http).connect()
    await back.hello(token("viewer", "acc-viewer", room, "Ann"))
    res = await back.request("resume", session=sid, last_seq=last)
    assert res["type"] == "resumed", res
    await back.wait_for(lambda f: f.get("message_id") == sent[-1], timeout=5)
    got = [f["message_id"] for f in back.frames if f.get("type") == "message"]
    assert [x for x in got if x in sent] == sent

    # ten kinds of bad input, each a typed error; the socket stays usable
    async def raw(text):
        n = len(back.frames)
        await back.send_raw(text)
        return await back.wait_for(lambda f: f.get("type") == "error", start=n)
    errors = [
        (await raw("{broken"), "bad_json"),
        (await raw("42"), "bad_request"),
        (await raw(json.dumps({"type": "teleport"})), "unknown_type"),
        (await back.request("message.send", conversation=cid, text="x"), "bad_request"),
        (await back.request("message.send", conversation=cid, text=7, client_msg_id="z"), "bad_request"),
        (await back.request("agent.status", status="available"), "forbidden"),
        (await back.request("conversation.open", room="nowhere"), "not_found"),
        (await back.request("message.send", conversation="c_nope", text="x", client_msg_id="z"), "not_found"),
        (await back.request("conversation.resolve", conversation=cid), "forbidden"),
        (await back.request("hello", token="x", protocol=1), "bad_state"),
    ]
    for err, code in errors:
        assert err["type"] == "error" and err["code"] == code, (code, err)
        assert err["message"]
    assert (await back.request("ping"))["type"] == "pong"

    assert (await agent.request("conversation.resolve", conversation=cid))["type"] == "ack"
    await back.event("conversation.state", conversation=cid, state="resolved")
    # every frame of the walk, errors included, is one the generated schema describes
    assert check_frames(viewer.frames + agent.frames + back.frames) > 30
    for c in (agent, back):
        await c.close()


async def test_acceptance_walk_on_one_node(gateway):
    def token(role, user, room, name):
        return gateway.token(role, user, room=room, name=name)
    await walk(gateway.http, gateway.url, gateway.url, token, gateway.room_id)
