"""Viewer and agent on different gateway processes sharing one Redis; a node dies mid-chat."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.cluster.nodes import Node, token, write_room
from tests.wsclient import WSClient

pytestmark = pytest.mark.redis


@pytest.fixture
async def cluster(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    nodes = [Node(redis_server.url, n, rooms=[room]) for n in ("A", "B", "C")]
    for n in nodes:
        n.start()
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    yield nodes, http
    await http.close()
    for n in nodes:
        n.stop()


async def connect(http, node, role, user, room=None, name=None) -> WSClient:
    c = await WSClient(node.url, http).connect()
    w = await c.hello(token(role, user, room=room, name=name))
    assert w["type"] == "welcome", w
    return c


async def assigned_pair(http, viewer_node, agent_node, viewer="v1", agent="agent-1",
                        room="flash", agent_name="Alice"):
    """An available agent on one node and a viewer on another whose conversation the agent
    has been assigned: (viewer client, agent client, conversation id)."""
    a = await connect(http, agent_node, "agent", agent, name=agent_name)
    await a.request("agent.status", status="available")
    v = await connect(http, viewer_node, "viewer", viewer, room=room)
    cid = (await v.request("conversation.open", room=room))["conversation"]
    await v.request("conversation.escalate", conversation=cid)
    await a.event("conversation.assigned", conversation=cid, timeout=5)
    return v, a, cid


def chat(frames, cid):
    return [f for f in frames if f.get("type") == "message" and f.get("conversation") == cid]


async def test_viewer_on_a_agent_on_b_chat_in_one_order(cluster):
    (a, b, c), http = cluster
    agent = await connect(http, b, "agent", "agent-1", name="Alice")
    await agent.request("agent.status", status="available")
    viewer = await connect(http, a, "viewer", "v1", room="flash", name="Ann")
    conv = await viewer.request("conversation.open", room="flash")
    cid = conv["conversation"]
    await viewer.request("message.send", conversation=cid, text="hello", client_msg_id="m0")
    await viewer.wait_for(lambda f: f.get("type") == "message" and f["from"]["role"] == "bot")
    await viewer.request("conversation.escalate", conversation=cid)
    got = await agent.event("conversation.assigned", conversation=cid, timeout=5)
    assert got["context"]["viewer"]["user"] == "v1"
    assert any(m["text"] == "hello" for m in got["context"]["messages"])
    await viewer.event("conversation.state", state="assigned", timeout=5)
    # both sides write at once; everyone sees one order: the log's
    await asyncio.gather(
        *[viewer.request("message.send", conversation=cid, text=f"v{i}", client_msg_id=f"v{i}")
          for i in range(10)],
        *[agent.request("message.send", conversation=cid, text=f"a{i}", client_msg_id=f"a{i}")
          for i in range(10)])
    await asyncio.sleep(0.5)
    tail_v = [m["message_id"] for m in chat(viewer.frames, cid)][-20:]
    tail_a = [m["message_id"] for m in chat(agent.frames, cid)][-20:]
    assert tail_v == tail_a
    assert len(set(tail_v)) == 20
    ns = [int(x.split(":")[1]) for x in tail_v]
    assert ns == sorted(ns)
    # a third node sees the same log
    other = await connect(http, c, "agent", "agent-1", name="Alice")
    snap = await other.request("conversation.get", conversation=cid)
    assert [m["message_id"] for m in snap["messages"]][-20:] == tail_v


async def test_kill_9_mid_conversation_loses_nothing(cluster):
    (a, b, c), http = cluster
    agent = await connect(http, b, "agent", "agent-1", name="Alice")
    await agent.request("agent.status", status="available")
    viewer = await connect(http, a, "viewer", "v1", room="flash")
    cid = (await viewer.request("conversation.open", room="flash"))["conversation"]
    await viewer.request("conversation.escalate", conversation=cid)
    await agent.event("conversation.assigned", conversation=cid, timeout=5)
    for i in range(5):
        await agent.request("message.send", conversation=cid, text=f"before {i}", client_msg_id=f"b{i}")
    await viewer.wait_for(lambda f: f.get("text") == "before 4")
    sid, last = viewer.session, viewer.last_seq
    a.kill9()
    await viewer.drop()
    # the agent keeps writing while the viewer's node is gone
    for i in range(5):
        await agent.request("message.send", conversation=cid, text=f"during {i}", client_msg_id=f"d{i}")
    v2 = await WSClient(c.url, http).connect()
    await v2.hello(token("viewer", "v1", room="flash"))
    r = await v2.request("resume", session=sid, last_seq=last)
    assert r["type"] == "resumed", r
    await v2.wait_for(lambda f: f.get("text") == "during 4", timeout=5)
    for i in range(5, 8):
        await agent.request("message.send", conversation=cid, text=f"after {i}", client_msg_id=f"x{i}")
    await v2.wait_for(lambda f: f.get("text") == "after 7", timeout=5)
    await v2.request("message.send", conversation=cid, text="still here", client_msg_id="s")
    await agent.wait_for(lambda f: f.get("text") == "still here", timeout=5)
    before = [m["text"] for m in chat(viewer.frames, cid)]
    after = [m["text"] for m in chat(v2.frames, cid)]
    texts = before + after
    want = [f"before {i}" for i in range(5)] + [f"during {i}" for i in range(5)] + \
           [f"after {i}" for i in range(5, 8)] + ["still here"]
    theirs = [t for t in texts if t in want]
    assert theirs == want  # nothing lost, nothing twice, order kept
    seqs = [f["seq"] for f in viewer.frames + v2.frames if "seq" in f and f["type"] != "welcome"]
    assert len(seqs) == len(set(seqs))


async def test_acceptance_walk_with_viewer_and_agent_on_different_nodes(cluster):
    """The same independent protocol client as on one node; the viewer resumes on a third."""
    from tests.integration.test_acceptance import walk
    (a, b, c), http = cluster

    def tok(role, user, room, name):
        return token(role, user, room=room, name=name)
    await walk(http, a.url, b.url, tok, "flash", resume_url=c.url)
