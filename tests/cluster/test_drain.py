"""SIGTERM drains a node: unready at once, no new calls, sockets told to reconnect elsewhere,
and their sessions resume on another node with nothing lost."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from tests.cluster.nodes import Node, token, write_room
from tests.cluster.test_cross_node import assigned_pair, chat
from tests.wsclient import WSClient

pytestmark = pytest.mark.redis


async def test_sigterm_drains_and_clients_resume_elsewhere(redis_server, tmp_path):
    room = write_room(tmp_path / "flash.json")
    a = Node(redis_server.url, "A", rooms=[room], extra_env={"LIVEDESK_DRAIN_S": "2"}).start()
    b = Node(redis_server.url, "B", rooms=[room]).start()
    http = aiohttp.ClientSession()
    try:
        viewer, agent, cid = await assigned_pair(http, a, b)
        await agent.request("message.send", conversation=cid, text="one", client_msg_id="1")
        await viewer.wait_for(lambda f: f.get("text") == "one")
        a.proc.send_signal(signal.SIGTERM)
        rc = await viewer.event("reconnect", timeout=10)
        assert rc["reason"] == "draining" and "seq" in rc
        assert await viewer.wait_closed(10) == 1012
        await asyncio.get_running_loop().run_in_executor(None, a.proc.wait, 15)
        assert a.proc.returncode == 0
        await agent.request("message.send", conversation=cid, text="two", client_msg_id="2")
        v2 = await WSClient(b.url, http).connect()
        await v2.hello(token("viewer", "v1", room="flash"))
        r = await v2.request("resume", session=viewer.session, last_seq=viewer.last_seq)
        assert r["type"] == "resumed"
        await v2.wait_for(lambda f: f.get("text") == "two", timeout=5)
        texts = [m["text"] for m in chat(viewer.frames + v2.frames, cid)]
        assert texts.count("one") == 1 and texts.count("two") == 1
    finally:
        await http.close()
        a.stop()
        b.stop()


async def test_no_new_calls_or_sockets_while_draining(gateway):
    a = await gateway.client("agent", "a1")
    await a.request("agent.status", status="available")
    v = await gateway.client("viewer", "v1", room=gateway.room_id)
    cid = (await v.request("conversation.open", room=gateway.room_id))["conversation"]
    gateway.gw.draining = True
    late = await gateway.client()
    e = await late.request("hello", token=gateway.token("viewer", "v9"), protocol=1)
    assert e["code"] == "unavailable" and "draining" in e["message"]
    assert await late.wait_closed() == 1013
    e = await v.request("call.request", conversation=cid, video=True)
    assert e["type"] == "error" and e["code"] == "unavailable" and "shutting down" in e["message"]
    async with gateway.http.get(gateway.url + "/readyz") as r:
        assert r.status == 503 and (await r.json())["draining"] is True
