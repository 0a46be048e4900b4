"""The history REST API on a real gateway with a real store (SQLite and PostgreSQL):
conversations made over the real protocol are found by a Chinese word, an order id and a
viewer id; who may read what; exports; typed 400s; erasure end to end."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

MAX_WAIT_S = 5.0


@pytest.fixture
async def gw(backends, tmp_path):
    if backends.kind == "sqlite":
        config = Config(dev=True, port=free_port(), data_dir=tmp_path / "data")
    else:
        config = Config(dev=True, port=free_port(), database_url=await backends.url("gw"))
    r = await start_gateway(config)
    try:
        yield r
    finally:
        await stop_gateway(r)


async def settle(gw) -> None:
    """Every change applied so far is committed (a no-op on one node, whose steps return
    once committed; kept for background writes such as the bot's replies)."""
    await gw.gw.durable.feed.drain()


async def get(gw, path: str, token: str | None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with gw.http.get(gw.url + path, params=params, headers=headers) as r:
        body = await (r.json() if r.content_type == "application/json" else r.text())
        return r.status, body, r.headers


async def chat(gw):
    """v1 talks to the bot, escalates, a1 answers; v2 chats with the bot only; v1 orders."""
    a = await gw.client("agent", "a1", name="Alice")
    await a.request("agent.status", status="available")
    v = await gw.client("viewer", "v1", room=gw.room_id, name="Ann")
    cid = (await v.request("conversation.open", room=gw.room_id))["conversation"]
    await v.request("message.send", conversation=cid, text="我买的蓝牙耳机没有声音",
                    client_msg_id="m1")
    await v.request("conversation.escalate", conversation=cid)
    await a.event("conversation.assigned", conversation=cid)
    await a.request("message.send", conversation=cid, text="您好，我帮您看看", client_msg_id="x1")
    v2 = await gw.client("viewer", "v2", room=gw.room_id, name="Bo")
    cid2 = (await v2.request("conversation.open", room=gw.room_id))["conversation"]
    await v2.request("message.send", conversation=cid2, text="what fabric is the hoodie?",
                     client_msg_id="m1")
    sku = gw.gw.rooms.get(gw.room_id).knowledge.products[0].sku
    async with gw.http.post(f"{gw.url}/api/rooms/{gw.room_id}/orders",
                            json={"order_id": "ORD-20261206-77", "user": "v1", "sku": sku,
                                  "qty": 1},
                            headers={"Authorization": "Bearer " + gw.token("service", "shop")}
                            ) as r:
        assert r.status == 200, await r.text()
    await settle(gw)
    return cid, cid2


async def test_search_finds_by_chinese_word_order_id_and_viewer(gw):
    cid, cid2 = await chat(gw)
    admin = gw.token("admin", "boss")
    for params, want in ((dict(q="耳机"), [cid]), (dict(order="ORD-20261206-77"), [cid]),
                         (dict(user="v1"), [cid]), (dict(user="v2"), [cid2]),
                         (dict(q="hoodie"), [cid2]), (dict(agent="a1"), [cid]),
                         (dict(room=gw.room_id), [cid2, cid]),
                         (dict(since="2000-01-01", until="2000-01-02"), [])):
        status, body, _ = await get(gw, "/api/conversations", admin, **params)
        assert status == 200, body
        assert [c["conversation"] for c in body["conversations"]] == want, params
    status, body, _ = await get(gw, "/api/conversations", admin, q="耳机")
    hit = body["conversations"][0]
    assert set(hit) >= {"conversation", "user", "room", "state", "opened_at", "resolved_at",
                        "snippet"}
    assert hit["user"] == "v1" and hit["state"] == "assigned" and "耳机" in hit["snippet"]


async def test_agents_see_their_own_viewers_and_hosts_are_refused(gw):
    cid, cid2 = await chat(gw)
    status, body, _ = await get(gw, "/api/conversations", gw.token("agent", "a1"))
    assert status == 200 and [c["conversation"] for c in body["conversations"]] == [cid]
    status, body, _ = await get(gw, "/api/conversations", gw.token("agent", "a2"))
    assert status == 200 and body["conversations"] == []
    status, body, _ = await get(gw, f"/api/conversations/{cid}", gw.token("agent", "a2"))
    assert status == 403 and body["error"] == "forbidden"
    status, body, _ = await get(gw, f"/api/conversations/{cid}", gw.token("agent", "a1"))
    assert status == 200 and body["conversation"] == cid
    for role in ("viewer", "host", "service"):
        status, body, _ = await get(gw, "/api/conversations",
                                    gw.token(role, "x", room=gw.room_id))
        assert status == 403 and body["error"] == "forbidden", role
    status, body, _ = await get(gw, "/api/conversations", None)
    assert status == 401 and body["error"] == "unauthenticated"


async def test_transcript_and_exports(gw):
    cid, _ = await chat(gw)
    admin = gw.token("admin", "boss")
    status, t, _ = await get(gw, f"/api/conversations/{cid}", admin)
    assert status == 200
    texts = [m["text"] for m in t["messages"]]
    assert "我买的蓝牙耳机没有声音" in texts and "您好，我帮您看看" in texts
    assert texts[0]  # the bot's greeting comes first
    assert [m["n"] for m in t["messages"]] == list(range(1, len(texts) + 1))
    assert t["agents"] == ["a1"] and t["agent"] == "a1" and t["user"] == "v1"
    assert [o["order_id"] for o in t["orders"]] == ["ORD-20261206-77"]
    status, body, h = await get(gw, f"/api/conversations/{cid}/export", admin, format="json")
    assert status == 200 and body["messages"] == t["messages"]
    assert "attachment" in h["Content-Disposition"]
    status, text, h = await get(gw, f"/api/conversations/{cid}/export", admin, format="csv")
    assert status == 200 and h["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["conversation", "n", "ts", "role", "user", "name", "kind", "text"]
    assert [r[7] for r in rows[1:]] == texts
    status, text, _ = await get(gw, "/api/conversations", admin, q="耳机", format="csv")
    assert status == 200 and cid in text
    status, body, _ = await get(gw, f"/api/conversations/{cid}/export", admin, format="xml")
    assert status == 400 and body["error"] == "bad_request"
    status, body, _ = await get(gw, "/api/conversations/nope", admin)
    assert status == 404 and body["error"] == "not_found"


async def test_a_csv_export_does_not_hand_formulas_to_a_spreadsheet(gw):
    v = await gw.client("viewer", "v9", room=gw.room_id)
    cid = (await v.request("conversation.open", room=gw.room_id))["conversation"]
    await v.request("message.send", conversation=cid, text='=HYPERLINK("http://x","y")',
                    client_msg_id="m1")
    await settle(gw)
    status, text, _ = await get(gw, f"/api/conversations/{cid}/export",
                                gw.token("admin", "boss"), format="csv")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert "'=HYPERLINK(\"http://x\",\"y\")" in [r[7] for r in rows]


@pytest.mark.parametrize("params,field", [
    (dict(limit="0"), "limit"), (dict(limit="201"), "limit"), (dict(limit="ten"), "limit"),
    (dict(since="yesterday"), "since"), (dict(until="2026-13-01"), "until"),
    (dict(since="2026-12-02", until="2026-12-01"), "since"), (dict(q="x" * 201), "q"),
    (dict(q="!!! ???"), "q"), (dict(user="u" * 129), "user"), (dict(colour="red"), "colour"),
])
async def test_bad_parameters_are_a_typed_400(gw, params, field):
    status, body, _ = await get(gw, "/api/conversations", gw.token("admin", "boss"), **params)
    assert status == 400, body
    assert body["error"] == "bad_request" and body["field"] == field and body["message"]


async def test_erase_end_to_end_leaves_nothing_of_the_viewer(gw):
    cid, cid2 = await chat(gw)
    admin = gw.token("admin", "boss")
    async with gw.http.delete(f"{gw.url}/api/users/v1",
                              headers={"Authorization": "Bearer " + gw.token("agent", "a1")}) as r:
        assert r.status == 403
    async with gw.http.delete(f"{gw.url}/api/users/v1",
                              headers={"Authorization": f"Bearer {admin}"}) as r:
        assert r.status == 200
        rep = await r.json()
    assert rep["erased"] is True and rep["conversations"] == 1 and rep["orders"] == 1
    assert rep["messages"] >= 3 and rep["tombstone"].startswith("tb_")
    for params in (dict(q="耳机"), dict(user="v1"), dict(order="ORD-20261206-77"),
                   dict(agent="a1")):
        status, body, _ = await get(gw, "/api/conversations", admin, **params)
        assert status == 200 and body["conversations"] == [], params
    for path in (f"/api/conversations/{cid}", f"/api/conversations/{cid}/export"):
        status, body, _ = await get(gw, path, admin)
        assert status == 404
    status, body, _ = await get(gw, "/api/conversations", admin)
    assert [c["conversation"] for c in body["conversations"]] == [cid2]
    from tests.store.test_erase import all_text

    await asyncio.sleep(0)
    assert [t for t, v in await all_text(gw.gw.durable.store)
            if "v1" == v or "耳机" in v or "ord-20261206-77" in v] == []


async def test_without_a_store_the_history_is_unavailable_not_broken():
    r = await start_gateway(Config(dev=True, port=free_port()))
    try:
        status, body, _ = await get(r, "/api/conversations", r.token("admin", "boss"))
        assert status == 503 and body["error"] == "unavailable" and "data-dir" in body["message"]
    finally:
        await stop_gateway(r)
