"""Retention: resolved conversations are forgotten after ``resolved_retention_s`` (memory on
every node, TTL on their Redis keys); open ones are kept however old they are."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.support.conversation import ConversationStore
from gateway.support.redis_backend import P
from tests.conftest import start_gateway, stop_gateway
from tests.integration.test_conversations import escalated_pair

pytestmark = pytest.mark.parity


@pytest.mark.one_backend("shared", why="ConversationStore alone, the local store under both "
                         "backends; no gateway")
def test_store_prunes_only_resolved_conversations_older_than_the_cutoff():
    st = ConversationStore()
    old_open = st.create("c1", "r", "v1", "V1", created_at=100.0)
    old_done = st.create("c2", "r", "v2", "V2", created_at=100.0)
    old_done.state, old_done.resolved_at = "resolved", 200.0
    new_done = st.create("c3", "r", "v3", "V3", created_at=100.0)
    new_done.state, new_done.resolved_at = "resolved", 900.0
    gone = st.prune(before=500.0)
    assert [c.id for c in gone] == ["c2"]
    assert st.get("c2") is None and st.get("c1") is old_open and st.get("c3") is new_done
    assert st.open_for("r", "v1") is old_open
    assert [c.id for c in st.for_viewer("v2")] == []


async def test_resolved_conversation_is_forgotten_after_the_retention(backend):
    r = await start_gateway(backend.config(resolved_retention_s=0.4))
    try:
        v, a, cid = await escalated_pair(r)
        keep = await r.client("viewer", "v2", room=r.room_id)
        open_cid = (await keep.request("conversation.open", room=r.room_id))["conversation"]
        await a.request("conversation.resolve", conversation=cid)
        assert r.gw.support.store.get(cid) is not None  # not at once
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while r.gw.support.store.get(cid) is not None:
            assert loop.time() - t0 < 5, "resolved conversation never forgotten"
            await asyncio.sleep(0.05)
        e = await v.request("conversation.get", conversation=cid)
        assert e["type"] == "error" and e["code"] == "not_found", e
        # an open conversation older than the retention stays
        await asyncio.sleep(0.5)
        got = await keep.request("conversation.get", conversation=open_cid)
        assert got.get("conversation") == open_cid, got
        # and the viewer starts afresh
        fresh = await v.request("conversation.open", room=r.room_id)
        assert fresh["conversation"] != cid and fresh["state"] == "bot"
    finally:
        await stop_gateway(r)


@pytest.mark.one_backend("redis", why="reads the TTLs of the conversation's Redis keys")
@pytest.mark.parametrize("retention,expect_ttl", [(120.0, True), (0.0, False)])
async def test_resolved_conversation_keys_expire_in_redis(backend, retention, expect_ttl):
    r = await start_gateway(backend.config(resolved_retention_s=retention))
    red = aioredis.Redis.from_url(backend.redis_url)
    try:
        v, a, cid = await escalated_pair(r)
        await v.request("message.send", conversation=cid, text="hi", client_msg_id="m1")
        # (``cmid:`` keys, written before repeats were recognised from the replica, are
        # only given the TTL: nothing writes them any more)
        assert not await red.exists(P + "cmid:" + cid)
        for key in ("conv:", "log:"):
            assert await red.ttl(P + key + cid) == -1  # open: kept
        await a.request("conversation.resolve", conversation=cid)
        for key in ("conv:", "log:"):
            ttl = await red.ttl(P + key + cid)
            if expect_ttl:
                assert 0 < ttl <= retention, (key, ttl)
            else:
                assert ttl == -1, (key, ttl)
    finally:
        await red.aclose()
        await stop_gateway(r)
