"""A node whose replica cannot follow the shared change log any more rebuilds it from Redis,
instead of carrying on with state that silently differs: the entries it had not read were
trimmed (it lagged past ``MAXLEN``), or Redis came back with less than the node had applied.
Real Redis, two gateways in this process."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio as aioredis

from gateway.config import Config
from gateway.support.redis_backend import P
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.workspace.helpers import viewer

pytestmark = pytest.mark.redis


async def node(url: str, name: str):
    return await start_gateway(Config(dev=True, port=free_port(), redis_url=url, node_id=name,
                                      secret="ops-log-test-secret-of-32-bytes-or-more", retain_s=600))


async def until(pred, timeout=8.0, what="condition"):
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not pred():
        assert loop.time() - t0 < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_node_that_lagged_past_the_trimmed_log_resyncs_and_delivers_what_it_missed(
        redis_server, caplog):
    a = await node(redis_server.url, "A")
    b = await node(redis_server.url, "B")
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        room = a.room_id
        v1_a, c1 = await viewer(a, "v1")
        v3, c3 = await viewer(a, "v3")
        agent = await b.client("agent", "ag", name="Agent")
        await agent.request("agent.status", status="available")
        await v3.request("conversation.escalate", conversation=c3)
        await agent.event("conversation.assigned", conversation=c3)
        ba = a.gw.support.backend
        await until(lambda: a.gw.support.store.get(c3).state == "assigned", what="A in step")
        ack = await v1_a.request("browse.event", room=room, kind="product_view", sku="D001")
        assert ack["type"] == "ack", ack
        await until(lambda: b.gw.support.backend.get("browse", "v1") is not None,
                    what="the browse record on B")

        # A stops reading the log (as when its tail lost Redis) ...
        ba._tail.cancel()
        await asyncio.gather(ba._tail, return_exceptions=True)
        # ... while B changes things: a message in c1, a new conversation c2, c3 resolved
        v1_b = await b.client("viewer", "v1", room=room)
        sent = await v1_b.request("message.send", conversation=c1, text="sent while A lagged",
                                  client_msg_id="lag-1")
        assert sent["type"] == "message"
        v2, c2 = await viewer(b, "v2")
        await v2.request("message.send", conversation=c2, text="hello from c2", client_msg_id="x")
        await agent.request("conversation.resolve", conversation=c3)
        # (and v1's browsing record expires: B's sweep, as if its retention had passed)
        assert await b.gw.support.backend.expire_records(time.time() + 10 ** 9) >= 1
        # ... and the log is trimmed past what A read
        await r.xtrim(P + "ops", maxlen=0, approximate=False)
        assert a.gw.support.store.get(c2) is None  # A really missed it
        n_before = len(v1_a.frames)

        with caplog.at_level(logging.WARNING, logger="gateway.support.redis_backend"):
            ba._tail = asyncio.get_running_loop().create_task(ba._tail_loop())
            await until(lambda: ba.resyncs == 1, what="A's resync")
        assert any("trimmed" in rec.getMessage() for rec in caplog.records)
        metrics = (await (await a.http.get(a.url + "/metrics")).read()).decode()
        assert 'livedesk_replica_resyncs_total{reason="trimmed"} 1.0' in metrics

        store = a.gw.support.store
        # everything B stored meanwhile (the bot's replies included), in log order
        bs = b.gw.support.store
        for cid in (c1, c2):  # (the bot may still be answering on B: its reply comes by log)
            await until(lambda cid=cid: [m.message_id for m in store.get(cid).messages] ==
                        [m.message_id for m in bs.get(cid).messages], what=f"{cid} alike")
        assert "sent while A lagged" in [m.text for m in store.get(c1).messages]
        assert store.get(c3).state == "resolved"
        assert c3 not in a.gw.support.router.agents["ag"].conversations
        # the record that expired in the part of the log A never read is gone on A too
        assert ba.get("browse", "v1") is None
        assert a.gw.workspace.browsing.store.timeline("v1") == []
        # v1's socket on A got the message A had missed, as the log would have brought it
        got = await v1_a.event("message", after=n_before, conversation=c1)
        assert got["text"] == "sent while A lagged"

        # and A follows the log again from there, without another resync
        await v2.request("message.send", conversation=c2, text="after", client_msg_id="y")
        await until(lambda: "after" in [m.text for m in store.get(c2).messages],
                    what="A applying")
        assert ba.resyncs == 1
    finally:
        await r.aclose()
        await stop_gateway(a)
        await stop_gateway(b)


async def test_a_node_ahead_of_a_redis_that_lost_its_data_resyncs_and_keeps_routing(
        redis_server, caplog):
    a = await node(redis_server.url, "A")
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        room = a.room_id
        agent = await a.client("agent", "ag", name="Agent")
        await agent.request("agent.status", status="available")
        v, old = await viewer(a, "v1")
        await v.request("message.send", conversation=old, text="before", client_msg_id="b")
        ack = await v.request("browse.event", room=room, kind="product_view", sku="D001")
        assert ack["type"] == "ack" and ack["stored"] == 1, ack
        browsing = a.gw.workspace.browsing.store
        assert [e.get("sku") for e in browsing.timeline("v1")] == ["D001"]

        with caplog.at_level(logging.WARNING, logger="gateway.support.redis_backend"):
            await r.flushall()  # Redis restarted without its data
            await until(lambda: a.gw.support.backend.resyncs == 1, what="A's resync")
        assert any("lost data" in rec.getMessage() for rec in caplog.records)
        metrics = (await (await a.http.get(a.url + "/metrics")).read()).decode()
        assert 'livedesk_replica_resyncs_total{reason="redis_lost_data"} 1.0' in metrics
        # the conversation Redis lost is closed here (its messages stay readable) ...
        lost = a.gw.support.store.get(old)
        assert lost.state == "resolved" and "before" in [m.text for m in lost.messages]
        # records Redis lost are withdrawn from what the workspace built of them
        assert a.gw.support.backend.get("browse", "v1") is None
        assert browsing.timeline("v1") == []
        st = await v.event("conversation.state", conversation=old, state="resolved")
        assert st["conversation"] == old
        # ... this node's agent is known to Redis again, with the status it had ...
        for _ in range(100):
            if await r.hexists(P + "agents", "ag"):
                break
            await asyncio.sleep(0.05)
        assert await r.hexists(P + "agents", "ag")
        # ... so a new conversation opens and escalates to that agent
        fresh = await v.request("conversation.open", room=room)
        assert fresh.get("conversation") not in (None, old), fresh
        n = len(agent.frames)
        await v.request("conversation.escalate", conversation=fresh["conversation"])
        got = await agent.event("conversation.assigned", after=n,
                                conversation=fresh["conversation"])
        assert got["conversation"] == fresh["conversation"]
    finally:
        await r.aclose()
        await stop_gateway(a)


async def test_a_node_ahead_by_a_few_messages_drops_what_redis_lost_and_goes_on(redis_server):
    """Redis came back with the last message of a conversation missing (an fsync window):
    the node drops it too, so the next message (which takes that number again) is stored
    and delivered rather than skipped as already known."""
    a = await node(redis_server.url, "A")
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        v, cid = await viewer(a, "v1")
        backend = a.gw.support.backend
        sent = await v.request("message.send", conversation=cid, text="kept", client_msg_id="k")
        assert sent["type"] == "message"
        store = a.gw.support.store
        await until(lambda: len(store.get(cid).messages) == 3, what="greeting, kept, bot reply")
        # Redis loses the last change (the bot's reply): log entry, counter, change number
        last_id, _ = (await r.xrevrange(P + f"log:{cid}", count=1))[0]
        await r.xdel(P + f"log:{cid}", last_id)
        await r.hincrby(P + f"conv:{cid}", "n", -1)
        ops_id, _ = (await r.xrevrange(P + "ops", count=1))[0]
        await r.xdel(P + "ops", ops_id)
        await r.decr(P + "opseq")
        await until(lambda: backend.resyncs == 1, what="A's resync")
        assert [m.text for m in store.get(cid).messages][-1] == "kept"
        assert store.get(cid).state == "bot"  # still open: not lost as a whole
        n = len(v.frames)
        again = await v.request("message.send", conversation=cid, text="next one",
                                client_msg_id="n1")
        assert again["type"] == "message" and again["text"] == "next one", again
        await until(lambda: "next one" in [m.text for m in store.get(cid).messages],
                    what="the next message stored on A")
        assert [m.n for m in store.get(cid).messages] == list(
            range(1, len(store.get(cid).messages) + 1))
        assert any(f.get("type") == "message" and f.get("text") == "next one"
                   for f in v.frames[n:])
        assert backend.resyncs == 1
    finally:
        await r.aclose()
        await stop_gateway(a)


async def test_a_resync_resets_what_redis_lost_of_a_conversation(redis_server):
    """Redis came back without the last change, an escalation: after the resync the node's
    copy is not escalated either (state, reason and time as Redis has them), rather than
    keeping the fields Redis no longer holds."""
    a = await node(redis_server.url, "A")
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        v, cid = await viewer(a, "v1")
        backend, store = a.gw.support.backend, a.gw.support.store
        await until(lambda: len(store.get(cid).messages) >= 1, what="the greeting")
        esc = await v.request("conversation.escalate", conversation=cid)
        assert esc["type"] == "ack", esc
        conv = store.get(cid)
        await until(lambda: conv.state == "queued", what="the escalation applied")
        assert conv.escalated_at is not None and conv.escalation_reason
        # Redis loses the escalation: its hash fields, its queue entry, its change
        await r.hset(P + f"conv:{cid}", "state", "bot")
        await r.hdel(P + f"conv:{cid}", "escalated_at", "escalation_reason", "queued_at")
        await r.lrem(P + "queue", 0, cid)
        ops_id, _ = (await r.xrevrange(P + "ops", count=1))[0]
        await r.xdel(P + "ops", ops_id)
        await r.decr(P + "opseq")
        await until(lambda: backend.resyncs == 1, what="A's resync")
        assert conv.state == "bot"
        assert conv.escalated_at is None and conv.escalation_reason is None
        assert all(e.conversation != cid for e in a.gw.support.router.queue)
    finally:
        await r.aclose()
        await stop_gateway(a)
