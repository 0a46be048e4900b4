"""Two real nodes + Redis + PostgreSQL (issue 16, second "Must show", the archiver's part):
while a viewer on one node and an agent on the other chat and a shop posts orders, exactly
one node archives, the lag metric stays low, and when Redis is killed and restarted
**empty** mid-conversation, every acknowledged message older than the 1 s lag target is
already in PostgreSQL (the figure printed is how many acknowledged messages the archive was
missing at the kill: what a repopulated Redis would lose). After the restart the archive goes
on with Redis's new log; when the leader's process is then killed, the other node takes over
within the lease TTL. (Redis repopulated from PostgreSQL and the chat carrying on in the same
conversation: ``test_repopulate_cluster.py``.)"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import time

import aiohttp
import pytest

from tests.cluster.nodes import Node, write_room
from tests.cluster.test_cross_node import assigned_pair, connect
from tests.cluster.test_redis_restart import order, wait_ready
from tests.store.conftest import PG_SERVER, _admin, _in_thread

# slow (make test-all): cluster/test_repopulate_cluster.py runs the same two real nodes with
# the archiver through an empty Redis restart and counts the acknowledged messages
pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def pg_url():
    name = f"livedesk_test_arch_{secrets.token_hex(5)}"
    _in_thread(_admin, f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        _in_thread(_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


async def scrape(http, node) -> str:
    async with http.get(node.url + "/metrics") as r:
        return await r.text()


async def pg_fetch(url: str, sql: str, *args):
    import asyncpg

    c = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await c.fetch(sql, *args)]
    finally:
        await c.close()


async def test_archive_holds_the_acknowledged_chat_when_redis_restarts_empty(
        redis_server, pg_url, tmp_path):
    room = write_room(tmp_path / "flash.json")
    env = {"LIVEDESK_DATABASE_URL": pg_url, "LIVEDESK_ARCHIVER_LEASE_TTL_S": "2"}
    a = Node(redis_server.url, "A", rooms=[room], extra_env=env).start()
    b = Node(redis_server.url, "B", rooms=[room], extra_env=env).start()
    http = aiohttp.ClientSession()
    try:
        viewer, agent, cid = await assigned_pair(http, a, b)
        acked: list[tuple[int, float]] = []  # (message number, when acknowledged)
        lag_max = 0.0
        leaders: set[float] = set()
        for i in range(30):
            r = await viewer.request("message.send", conversation=cid, text=f"问题 {i}",
                                     client_msg_id=f"v{i}")
            assert r["type"] == "message", r
            acked.append((int(r["message_id"].rsplit(":", 1)[1]), time.monotonic()))
            if i % 3 == 0:
                r = await agent.request("message.send", conversation=cid, text=f"回答 {i}",
                                        client_msg_id=f"a{i}")
                assert r["type"] == "message", r
                acked.append((int(r["message_id"].rsplit(":", 1)[1]), time.monotonic()))
            if i % 10 == 0:
                st, _ = await order(http, a if i % 20 else b, f"o{i}")
                assert st == 200
            ta, tb = await scrape(http, a), await scrape(http, b)
            lag_max = max(lag_max, metric(ta, "livedesk_archiver_lag_seconds"),
                          metric(tb, "livedesk_archiver_lag_seconds"))
            leaders.add(metric(ta, "livedesk_archiver_leader")
                        + metric(tb, "livedesk_archiver_leader"))
            await asyncio.sleep(0.05)
        assert leaders == {1.0}, leaders  # exactly one node archived throughout

        # Redis dies mid-conversation, right after the last acknowledgement
        fence_before = (await pg_fetch(pg_url, "SELECT fence FROM archive_fence"))[0][0]
        killed = time.monotonic()
        assert redis_server.proc is not None
        redis_server.proc.kill()
        redis_server.proc.wait(5)
        archived = {r[0] for r in await pg_fetch(
            pg_url, "SELECT n FROM messages WHERE conversation = $1", cid)}
        missing = [n for n, _ in acked if n not in archived]
        print(f"acknowledged {len(acked)} messages; missing from PostgreSQL when Redis was "
              f"killed: {len(missing)}; lag metric max during the chat: {lag_max:.3f} s")
        # the archive is at most ~1 s behind: nothing acknowledged 2 s before the kill is
        # missing (the bound is generous; the figure above is the measurement)
        assert not [n for n, t in acked if n in missing and killed - t > 2.0], missing
        assert lag_max < 2.0, lag_max
        assert len(await pg_fetch(pg_url, "SELECT order_id FROM orders")) == 3

        # ... and comes back empty
        shutil.rmtree(redis_server.dir, ignore_errors=True)
        redis_server.dir.mkdir(parents=True)
        redis_server.start()
        await wait_ready(http, a, within=20)
        await wait_ready(http, b, within=20)
        # (the repopulation's writes are archived at once: the fence is read before the kill)
        v2 = await connect(http, a, "viewer", "v2", room="flash")
        cid2 = None
        for _ in range(50):  # the nodes resync with the empty Redis first
            r = await v2.request("conversation.open", room="flash")
            if r.get("type") != "error":
                cid2 = r["conversation"]
                break
            await asyncio.sleep(0.2)
        assert cid2 is not None
        r = await v2.request("message.send", conversation=cid2, text="重启之后", client_msg_id="n1")
        assert r["type"] == "message", r
        deadline = time.monotonic() + 10
        texts: list = []
        while time.monotonic() < deadline:
            texts = [t[0] for t in await pg_fetch(
                pg_url, "SELECT text FROM messages WHERE conversation = $1", cid2)]
            if "重启之后" in texts:
                break
            await asyncio.sleep(0.1)
        assert "重启之后" in texts
        fence_after = (await pg_fetch(pg_url, "SELECT fence FROM archive_fence"))[0][0]
        assert fence_after > fence_before  # a new lease, numbered above the archive's fence
        # one leader again: the old leader's lease vanished with the empty Redis, and it
        # learns so at its next renewal (every TTL/3; until then its gauge still says 1, but
        # the fence already refuses its writes), so the gauges settle within the TTL (2 s)
        settle = time.monotonic() + 2 + 2.0
        while True:
            ta, tb = await scrape(http, a), await scrape(http, b)
            leading = metric(ta, "livedesk_archiver_leader") + metric(tb, "livedesk_archiver_leader")
            if leading == 1.0 or time.monotonic() > settle:
                break
            await asyncio.sleep(0.1)
        assert leading == 1.0, f"{leading} nodes say they lead after the restart"

        # the leader's process is killed (-9, its lease is not released): the other node
        # leads within the lease TTL (2 s; candidates try every 0.4 s) and archives on
        leader, survivor = (a, b) if metric(ta, "livedesk_archiver_leader") == 1.0 else (b, a)
        leader.kill9()
        died = time.monotonic()
        while metric(await scrape(http, survivor), "livedesk_archiver_leader") != 1.0:
            assert time.monotonic() - died < 2 + 0.4 + 2.0, "no takeover"
            await asyncio.sleep(0.05)
        print(f"takeover after kill -9: {time.monotonic() - died:.2f} s (lease TTL 2 s)")
        v3 = await connect(http, survivor, "viewer", "v3", room="flash")
        cid3 = (await v3.request("conversation.open", room="flash"))["conversation"]
        r = await v3.request("message.send", conversation=cid3, text="接管之后",
                             client_msg_id="k1")
        assert r["type"] == "message", r
        deadline = time.monotonic() + 5
        while not await pg_fetch(pg_url, "SELECT 1 FROM messages WHERE conversation = $1 "
                                         "AND text = '接管之后'", cid3):
            assert time.monotonic() < deadline, "not archived after the takeover"
            await asyncio.sleep(0.1)
    finally:
        await http.close()
        a.stop()
        b.stop()
