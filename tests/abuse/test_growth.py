"""Finding 6 (issue 13): unbounded growth from one client, on both support backends.

* 300 large messages from one socket grew RSS by 65 MB and ``conversation.get`` returned
  17.6 MB (also pushed to the assigned agent): now a conversation holds at most
  ``conversation_max_messages`` / ``conversation_max_bytes`` from clients (``too_large``),
  and what a snapshot or an assignment carries is the latest ``conversation_history``;
* open conversations per viewer and conversations opened per viewer per hour are bounded
  (``rate_limited``);
* a host's promotion with a large extra field grew every new viewer's ``room.state`` to
  4 MB, and ``threshold: "abc"`` was accepted and broke the bot for everyone asking about
  discounts: promotion fields are typed and bounded, unknown ones refused, a room's
  knowledge is bounded (on ``room.promo.upsert`` and on load).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.support.backend import MemoryBackend, SupportBackend
from gateway.support.conversation import ConversationStore
from gateway.support.knowledge import Knowledge, KnowledgeError, demo_room_path
from gateway.support.limits import SupportLimits
from gateway.support.routing import Router
from signaling import ProtocolError
from tests.abuse.helpers import start_on
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.workspace.helpers import agent

pytestmark = pytest.mark.parity


def size(frame: dict) -> int:
    return len(json.dumps(frame, ensure_ascii=False).encode("utf-8"))


async def test_300_large_messages_are_capped_and_snapshots_stay_small(backend):
    gw = await start_on(backend)  # the defaults: 500 messages, 256 KiB of text, 200 shown
    try:
        v = await gw.client("viewer", "big", room=gw.room_id)
        cid = (await v.request("conversation.open", room=gw.room_id))["conversation"]
        big = "好" * 4000  # the longest text allowed: 12,000 bytes of UTF-8
        codes: list[str] = []
        for i in range(300):
            r = await v.request("message.send", conversation=cid, text=big,
                                client_msg_id=f"m{i}")
            codes.append(r["type"] if r["type"] != "error" else r["code"])
        stored = sum(1 for c in codes if c == "message")
        assert stored * 12000 <= 256 * 1024, stored
        assert set(codes[stored:]) == {"too_large"}, codes[stored:stored + 3]
        conv = gw.gw.support.store.get(cid)
        assert conv.text_bytes <= 256 * 1024 + 4096  # server lines (bot answers) on top
        got = await v.request("conversation.get", conversation=cid)
        assert got["type"] == "conversation"
        assert size(got) < 400_000, size(got)
        # the agent's push on assignment is bounded the same way
        a = await agent(gw, "a1")
        await v.request("conversation.escalate", conversation=cid)
        assigned = await a.event("conversation.assigned", conversation=cid)
        assert size(assigned) < 400_000, size(assigned)
        # the agent can still write (the cap refuses clients; it never silences anyone)
        r = await a.request("message.send", conversation=cid, text="您好", client_msg_id="a1")
        assert r["type"] in ("message", "error")
        if r["type"] == "error":
            assert r["code"] == "too_large"
    finally:
        await stop_gateway(gw)


async def test_message_count_cap_and_history_window(backend):
    gw = await start_on(backend, conversation_max_messages=30, conversation_history=10)
    try:
        a = await agent(gw, "a1")
        v = await gw.client("viewer", "chatty", room=gw.room_id)
        cid = (await v.request("conversation.open", room=gw.room_id))["conversation"]
        await v.request("conversation.escalate", conversation=cid)
        await a.event("conversation.assigned", conversation=cid)
        refused = []
        for i in range(40):
            r = await v.request("message.send", conversation=cid, text=f"m{i}",
                                client_msg_id=f"m{i}")
            if r["type"] == "error":
                refused.append(r)
        assert refused and {r["code"] for r in refused} == {"too_large"}
        assert "30 messages" in refused[0]["message"]
        conv = gw.gw.support.store.get(cid)
        assert len(conv.messages) == 30
        got = await v.request("conversation.get", conversation=cid)
        assert len(got["messages"]) == 10 and got["omitted"] == 20
        assert got["messages"][-1]["text"] == conv.messages[-1].text
        ctx = (await a.request("conversation.get", conversation=cid))["context"]
        assert len(ctx["messages"]) == 10 and ctx["omitted"] == 20
        # a repeated client_msg_id still answers with the original (not refused)
        again = await v.request("message.send", conversation=cid, text="m0", client_msg_id="m0")
        assert again["type"] == "message" and again["client_msg_id"] == "m0"
    finally:
        await stop_gateway(gw)


async def test_conversations_opened_per_viewer_per_hour(backend):
    gw = await start_on(backend, conversations_per_viewer_per_hour=3)
    try:
        v = await gw.client("viewer", "opener", room=gw.room_id)
        for _i in range(3):
            o = await v.request("conversation.open", room=gw.room_id)
            assert o["type"] == "conversation", o
            again = await v.request("conversation.open", room=gw.room_id)  # same one: free
            assert again["conversation"] == o["conversation"]
            await v.request("conversation.close", conversation=o["conversation"])
        e = await v.request("conversation.open", room=gw.room_id)
        assert e["type"] == "error" and e["code"] == "rate_limited", e
        assert "3 conversations in the last hour" in e["message"]
        # another viewer is not affected
        w = await gw.client("viewer", "someone-else", room=gw.room_id)
        assert (await w.request("conversation.open", room=gw.room_id))["type"] == "conversation"
    finally:
        await stop_gateway(gw)


async def _open_in_rooms(backend_obj, rooms: list[str], max_open: int) -> list:
    out = []
    for room in rooms:
        try:
            conv, _ = await backend_obj.open(room, "v1", "V", None, max_open=max_open)
            out.append(conv.id)
        except ProtocolError as e:
            out.append(e.code.value)
    return out


async def test_open_conversations_per_viewer_in_the_backend_itself(backend):
    """The limit holds in the backend's own step (the Lua script on Redis), not only in the
    gateway in front of it."""
    if backend.redis_url is None:
        b: SupportBackend = MemoryBackend(ConversationStore(), Router())
    else:
        import redis.asyncio as aioredis

        from gateway.support.redis_backend import RedisBackend
        b = RedisBackend(aioredis.Redis.from_url(backend.redis_url), ConversationStore(),
                         Router(), url=backend.redis_url)
    await b.start()
    try:
        got = await _open_in_rooms(b, ["r1", "r2", "r3", "r4"], max_open=3)
        assert got[3] == "rate_limited" and all(x.startswith("c_") for x in got[:3])
        await b.resolve(b.store.get(got[0]), by="viewer")
        assert (await _open_in_rooms(b, ["r4"], max_open=3))[0].startswith("c_")
        # the viewer's open conversation in a room is returned, never refused
        assert await _open_in_rooms(b, ["r2"], max_open=3) == [got[1]]
    finally:
        await b.close()


async def test_promotions_are_typed_bounded_and_never_break_the_bot(backend):
    # the real bot (not the stub): it formats threshold and amount as numbers
    gw = await start_gateway(backend.config(retain_s=600, rate_per_s=1000.0, rate_burst=1000))
    try:
        h = await gw.client("host", "h1", room=gw.room_id)
        room = gw.room_id
        bad = [
            ({"id": "X1", "kind": "coupon", "threshold": "abc", "amount": 10}, "bad_request"),
            ({"id": "X2", "kind": "coupon", "amount": -5}, "bad_request"),
            ({"id": "X3", "kind": "first_n_gift", "limit": 1.5}, "bad_request"),
            ({"id": "X4", "kind": "coupon", "text": "满" * 501}, "bad_request"),
            ({"id": "X5", "kind": "coupon", "blob": "x" * 100}, "bad_request"),  # unknown field
            ({"id": "X6", "kind": "coupon", "active": "yes"}, "bad_request"),
            ({"id": 7, "kind": "coupon"}, "bad_request"),
        ]
        for promo, code in bad:
            r = await h.request("room.promo.upsert", room=room, promotion=promo)
            assert r["type"] == "error" and r["code"] == code, (promo, r)
        # an existing promotion cannot be broken by a partial update either
        r = await h.request("room.promo.upsert", room=room,
                            promotion={"id": "PD3", "threshold": "abc"})
        assert r["type"] == "error" and r["code"] == "bad_request", r
        r = await h.request("room.promo.upsert", room=room,
                            promotion={"id": "OK1", "kind": "coupon", "threshold": 100,
                                       "amount": 10, "code": "SAVE10", "text": "满100减10"})
        assert r["type"] == "ack", r
        # too many promotions: too_large, nothing changed
        n = len(gw.gw.rooms.get(room).knowledge.promotions)
        v = await gw.client("viewer", "asker", room=room)
        st = await v.request("room.watch", room=room)
        assert size(st) < 64_000, size(st)
        cid = (await v.request("conversation.open", room=room))["conversation"]
        await v.request("message.send", conversation=cid, text="有什么优惠券吗", client_msg_id="q")
        ans = await v.wait_for(lambda f: f.get("type") == "message" and f.get("conversation") == cid
                               and f["from"]["role"] == "bot" and f.get("kind") is None)
        assert "暂时无法回答" not in ans["text"], ans
        assert n == len(gw.gw.rooms.get(room).knowledge.promotions)
    finally:
        await stop_gateway(gw)


async def test_promotion_count_and_size_limits(backend):
    gw = await start_on(backend, promotions_per_room=6, promotion_max_bytes=600)
    try:
        h = await gw.client("host", "h1", room=gw.room_id)
        room = gw.room_id
        have = len(gw.gw.rooms.get(room).knowledge.promotions)  # the demo room's five
        codes = []
        for i in range(3):
            r = await h.request("room.promo.upsert", room=room,
                                promotion={"id": f"N{i}", "kind": "coupon", "amount": 5})
            codes.append(r["type"] if r["type"] != "error" else r["code"])
        assert codes == ["ack"] * (6 - have) + ["too_large"] * (3 - (6 - have)), codes
        # a promotion over promotion_max_bytes (within every field's own limit)
        r = await h.request("room.promo.upsert", room=room,
                            promotion={"id": "N0", "text": "优" * 200, "gift": "礼" * 100})
        assert r["type"] == "error" and r["code"] == "too_large", r
        assert len(gw.gw.rooms.get(room).knowledge.promotions) == 6
    finally:
        await stop_gateway(gw)


def _kb(tmp_path: Path, mutate) -> Path:
    d = json.loads(demo_room_path().read_text(encoding="utf-8"))
    mutate(d)
    p = tmp_path / "room.json"
    p.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    return p


@pytest.mark.one_backend("shared", why="Knowledge.load alone; no gateway")
def test_knowledge_load_refuses_ill_typed_and_oversized_promotions(tmp_path):
    limits = SupportLimits()
    p = _kb(tmp_path, lambda d: d["promotions"][2].update(threshold="abc"))
    with pytest.raises(KnowledgeError, match="threshold"):
        Knowledge.load(p, limits)
    p = _kb(tmp_path, lambda d: d["promotions"][0].update(extra_blob="x" * 5000))
    with pytest.raises(KnowledgeError, match="bytes as JSON"):
        Knowledge.load(p, limits)
    p = _kb(tmp_path, lambda d: d["faq"].extend({"q": "q" * 1000, "a": "a" * 1000}
                                                for _ in range(400)))
    with pytest.raises(KnowledgeError, match="knowledge is"):
        Knowledge.load(p, limits)
    # the demo room and a small shop extension still load
    p = _kb(tmp_path, lambda d: d["promotions"][0].update(shop_tag="spring"))
    kb = Knowledge.load(p, limits)
    assert kb.promotions[0].extra == {"shop_tag": "spring"}


@pytest.mark.one_backend("shared", why="the room is refused while the app is built, before "
                         "any backend starts")
def test_gateway_refuses_to_start_with_an_ill_typed_room(tmp_path):
    from gateway.app import create_app

    p = _kb(tmp_path, lambda d: d["promotions"][2].update(amount="30元"))
    with pytest.raises(KnowledgeError, match="amount"):
        create_app(Config(dev=True, port=free_port(), rooms=[p]))
