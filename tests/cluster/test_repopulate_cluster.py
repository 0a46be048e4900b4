"""Two real nodes + Redis + PostgreSQL (issue 16, second "Must show"): a viewer on one node
escalated to an agent on the other, chatting while a shop posts orders; Redis is killed and
restarted **empty** mid-conversation. One node repopulates Redis from PostgreSQL: the open
conversation with its messages, the assignment and the room's counters come back, and the
viewer and the agent carry on in the *same* conversation on their open sockets (a message
after the restart reaches the other side). Printed: acknowledged messages lost (Redis after
the repopulation against what was acknowledged; target 0 with the archiver caught up), the
lag metric during the chat and at the kill, and how long the repopulation took."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.cluster.nodes import Node, write_room
from tests.cluster.test_archiver_redis_restart import metric, pg_url, scrape
from tests.cluster.test_cross_node import assigned_pair
from tests.cluster.test_redis_restart import order, wait_ready

pytestmark = pytest.mark.redis
__all__ = ["pg_url"]  # fixture


async def retry(step, within: float, what: str):
    """``step()`` (idempotent: the same ``client_msg_id``) until it answers something other
    than an error (the nodes resync first); a reply slower than the step's timeout is
    retried too."""
    deadline = time.monotonic() + within
    r: dict = {}
    while time.monotonic() < deadline:
        try:
            r = await step()
        except TimeoutError:
            r = {"type": "error", "message": "no reply in time"}
            continue
        if r.get("type") != "error":
            return r
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: still {r}")


async def test_redis_restarted_empty_is_repopulated_and_the_chat_carries_on(
        redis_server, pg_url, tmp_path):
    room = write_room(tmp_path / "flash.json")
    env = {"LIVEDESK_DATABASE_URL": pg_url, "LIVEDESK_ARCHIVER_LEASE_TTL_S": "2"}
    a = Node(redis_server.url, "A", rooms=[room], extra_env=env).start()
    b = Node(redis_server.url, "B", rooms=[room], extra_env=env).start()
    http = aiohttp.ClientSession()
    red = aioredis.Redis.from_url(redis_server.url)
    try:
        viewer, agent, cid = await assigned_pair(http, a, b)
        acked: list[int] = []
        lag_max = 0.0
        last_order: dict = {}
        for i in range(20):
            r = await viewer.request("message.send", conversation=cid, text=f"问题 {i}",
                                     client_msg_id=f"v{i}")
            assert r["type"] == "message", r
            acked.append(int(r["message_id"].rsplit(":", 1)[1]))
            if i % 2 == 0:
                r = await agent.request("message.send", conversation=cid, text=f"回答 {i}",
                                        client_msg_id=f"a{i}")
                assert r["type"] == "message", r
                acked.append(int(r["message_id"].rsplit(":", 1)[1]))
            if i % 5 == 0:
                st, last_order = await order(http, a if i % 10 else b, f"o{i}")
                assert st == 200, last_order
            for n in (a, b):
                lag_max = max(lag_max, metric(await scrape(http, n),
                                              "livedesk_archiver_lag_seconds"))
            await asyncio.sleep(0.03)
        stock_before = int(await red.hget("ld:{r:flash}:stock", "S1"))
        claimed_before = int(await red.hget("ld:{r:flash}:gift:G1", "claimed"))
        assert stock_before == last_order["stock_left"]
        await asyncio.sleep(1.0)  # the archiver's 1 s target: what it has is what comes back
        lag_at_kill = max([metric(await scrape(http, n), "livedesk_archiver_lag_seconds")
                           for n in (a, b)])

        # Redis dies mid-conversation and comes back empty
        assert redis_server.proc is not None
        redis_server.proc.kill()
        redis_server.proc.wait(5)
        shutil.rmtree(redis_server.dir, ignore_errors=True)
        redis_server.dir.mkdir(parents=True)
        restarted = time.monotonic()
        redis_server.start()
        await wait_ready(http, a, within=20)
        await wait_ready(http, b, within=20)

        async def populated() -> bool:
            try:
                return bool(await red.exists("ld:{ld}:populated"))
            except (aioredis.ConnectionError, OSError):
                return False
        while not await populated():
            assert time.monotonic() - restarted < 20, "Redis was not repopulated"
            await asyncio.sleep(0.05)
        took = time.monotonic() - restarted

        # what came back: the conversation, its messages, the assignment, the room counters
        conv = {k.decode(): v.decode() for k, v in
                (await red.hgetall(f"ld:{{ld}}:conv:{cid}")).items()}
        assert conv["state"] == "assigned" and conv["agent"] == "agent-1", conv
        logged = {json.loads(f[b"j"])["n"] for _, f in await red.xrange(f"ld:{{ld}}:log:{cid}")}
        lost = [n for n in acked if n not in logged]
        assert int(await red.hget("ld:{r:flash}:stock", "S1")) == stock_before
        assert int(await red.hget("ld:{r:flash}:gift:G1", "claimed")) == claimed_before
        assert await red.hexists("ld:{r:flash}:orders", "o10")  # a replay is a repeat
        repops = sum([metric(await scrape(http, n), "livedesk_redis_repopulations_total")
                      for n in (a, b)])
        print(f"acknowledged {len(acked)} messages; lost after Redis restarted empty: "
              f"{len(lost)}; archiver lag max during the chat {lag_max:.3f} s, at the kill "
              f"{lag_at_kill:.3f} s; Redis repopulated {took:.2f} s after it restarted "
              f"(repopulations counted: {repops:g})")
        assert lost == [], lost  # the archiver was caught up (lag < 1 s, 1 s before)
        assert lag_max < 2.0

        # the same conversation carries on, both ways, on the sockets they had
        sent = time.monotonic()
        mark = len(agent.frames)
        r = await retry(lambda: viewer.request("message.send", conversation=cid,
                                               text="重启之后还在吗", client_msg_id="after-1"),
                        15, "the viewer's message after the restart")
        assert r["conversation"] == cid
        got = await agent.wait_for(lambda f: f.get("type") == "message"
                                   and f.get("text") == "重启之后还在吗", 10, start=mark)
        assert got["conversation"] == cid
        print(f"the viewer's first message after the repopulation reached the agent in "
              f"{time.monotonic() - sent:.2f} s")
        mark = len(viewer.frames)
        r = await retry(lambda: agent.request("message.send", conversation=cid,
                                              text="在的", client_msg_id="after-2"),
                        15, "the agent's reply after the restart")
        assert r["conversation"] == cid
        await viewer.wait_for(lambda f: f.get("type") == "message" and f.get("text") == "在的",
                              10, start=mark)
        st, _ = await order(http, a, "o10")  # replayed after the restart: a repeat
        assert st == 200
        assert int(await red.hget("ld:{r:flash}:stock", "S1")) == stock_before  # not placed
    finally:
        await red.aclose()
        await http.close()
        a.stop()
        b.stop()
