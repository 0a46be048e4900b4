"""Erasure reaches the live state (one node, memory backend + store): ``DELETE
/api/users/{viewer}`` and ``livedesk erase`` run against the store of a running gateway
each leave nothing of the viewer in the store, the node's replica (conversations, queue,
agents' load, records), the history API or the viewer's sockets."""

from __future__ import annotations

import asyncio
import time

from tests.store.test_cli import livedesk
from tests.store.test_erase import all_text
from tests.store.test_history_http import chat, get, gw  # noqa: F401  (gw: the fixture)


async def nothing_live_of(gw, viewer: str, cids: list[str]) -> list[str]:  # noqa: F811
    """What the node's live state still holds of ``viewer`` (empty when erased)."""
    b = gw.gw.support.backend
    left = [f"conversation {c.id}" for c in b.store.all() if c.viewer == viewer]
    left += [f"conversation {cid}" for cid in cids if b.store.get(cid) is not None]
    left += [f"queued {e.conversation}" for e in b.router.queue if e.viewer == viewer]
    left += [f"load of {a.user}: {cid}" for a in b.router.agents.values()
             for cid in cids if cid in a.conversations]
    left += [f"record {ns}/{k}" for ns, held in b.replica.records.items() for k, v in held.items()
             if k == viewer or k in cids or (isinstance(v, dict) and viewer in v.values())]
    return left


async def nothing_stored_of(gw, viewer: str) -> list[str]:  # noqa: F811
    admin = gw.token("admin", "boss")
    left = []
    for params in (dict(q="耳机"), dict(user=viewer), dict(order="ORD-20261206-77")):
        status, body, _ = await get(gw, "/api/conversations", admin, **params)
        assert status == 200
        left += [f"search {params}: {c['conversation']}" for c in body["conversations"]]
    left += [f"{t}: {v[:40]}" for t, v in await all_text(gw.gw.durable.store)
             if v == viewer or "耳机" in v or "ord-20261206-77" in v or "还在吗" in v]
    return left


async def viewer_with_records(gw) -> tuple[object, str, str]:  # noqa: F811
    cid, cid2 = await chat(gw)
    v = gw.clients[1]  # chat() connects the agent a1, then v1, then v2
    await gw.gw.support.backend.put("browse", "v1", {"events": [{"sku": "s1"}]})
    assert await nothing_live_of(gw, "v1", [cid]) != []  # the checks can see it
    return v, cid, cid2


async def test_the_admin_api_erases_the_viewer_everywhere(gw):  # noqa: F811
    v, cid, cid2 = await viewer_with_records(gw)
    async with gw.http.delete(f"{gw.url}/api/users/v1",
                              headers={"Authorization": "Bearer " + gw.token("admin", "boss")}
                              ) as r:
        assert r.status == 200, await r.text()
        rep = await r.json()
    assert rep["conversations"] == 1 and rep["tombstone"].startswith("tb_")
    await v.wait_closed()
    assert await nothing_live_of(gw, "v1", [cid]) == []
    assert await nothing_stored_of(gw, "v1") == []
    # the agent's console no longer lists it; the other viewer's conversation is untouched
    a = await gw.client("agent", "a1")
    listed = (await a.request("conversation.list"))["conversations"]
    assert cid not in [c["conversation"] for c in listed]
    assert gw.gw.support.backend.store.get(cid2) is not None
    assert gw.gw.metrics.erased_viewers._value.get() == 1


async def test_livedesk_erase_reaches_the_running_gateway(gw, backends):  # noqa: F811
    v, cid, _ = await viewer_with_records(gw)
    if backends.kind == "sqlite":
        where, env = ["--data-dir", str(gw.gw.config.data_dir)], {}
    else:
        where, env = [], {"LIVEDESK_DATABASE_URL": gw.gw.config.database_url}
    # the gateway's poll paused, so the viewer surely writes after the store was erased
    # and before the gateway heard of it: that late write must be erased too
    await gw.gw.eraser.close()
    code, out, err = await livedesk("erase", "--user", "v1", *where, env=env)
    assert code == 0, err
    assert '"live": "requested"' in out
    late = await v.request("message.send", conversation=cid, text="还在吗",
                           client_msg_id="late")
    assert late["type"] == "message", late
    assert [m.text for m in await gw.gw.durable.store.messages(cid)][-1] == "还在吗"
    await gw.gw.eraser.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (await gw.gw.durable.store.erase_requests()
                                           or await nothing_live_of(gw, "v1", [cid])):
        await asyncio.sleep(0.1)
    assert await nothing_live_of(gw, "v1", [cid]) == []
    assert await gw.gw.durable.store.erase_requests() == []
    await v.wait_closed()
    await gw.gw.durable.feed.drain()
    assert await nothing_stored_of(gw, "v1") == []
    assert len(await gw.gw.durable.store.tombstones()) == 1  # one erasure, one tombstone
