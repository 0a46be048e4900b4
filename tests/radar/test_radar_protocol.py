"""Issue 20, the radar's server side over the real protocol (the host panel's UI is a later
helper's; the Chromium must-show will drive the same messages):

twenty viewers ask whether the jacket is in stock in M, each in their own words → the radar
(``GET /api/rooms/{room}/radar`` and the ``room.radar`` push to the room's host) shows ONE
group with 20 viewers → the host pins an answer with ``room.pin`` → the next viewer who asks
gets the pinned answer first from the bot, and the widget's room watchers see it announced.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.backends import Backend
from tests.conftest import start_gateway, stop_gateway

pytestmark = pytest.mark.parity  # each test on memory and on Redis

ASKS = [
    "冲锋衣M码还有吗", "冲锋衣 M 有货吗", "冲锋衣M号还有货吗", "is the jacket in M in stock",
    "冲锋衣M码有没有", "M码的冲锋衣还有吗", "冲锋衣还有M码吗", "冲锋衣M码还有库存吗",
    "冲锋衣M码卖完了吗", "冲锋衣M的还有没有", "请问冲锋衣M码有货不", "冲锋衣M码现在能拍吗",
    "冲锋衣M码断货了吗", "主播，冲锋衣M码还有吗", "冲锋衣M号有现货吗", "冲锋衣要M码，还有吗",
    "do you still have the jacket in size M", "jacket M still available?", "冲锋衣M码没货了吗",
    "冲锋衣M码还能买到吗",
]
GROUP = "stock|D001|M"
PIN = "冲锋衣M码今晚8点补货200件，现在可以先拍，按付款顺序发货。"


@pytest.fixture
async def gw(backend: Backend):
    r = await start_gateway(backend.config(retain_s=600, rate_per_s=1000.0, rate_burst=1000))
    try:
        yield r
    finally:
        await stop_gateway(r)


async def ask(gw, user: str, text: str) -> dict:
    """A viewer opens a conversation, asks ``text`` and waits for the bot's answer."""
    room = gw.room_id
    v = await gw.client("viewer", user, room=room, name=user)
    conv = await v.request("conversation.open", room=room)
    assert conv["type"] == "conversation", conv
    mark = len(v.frames)
    r = await v.request("message.send", conversation=conv["conversation"], text=text,
                        client_msg_id=f"{user}-1")
    assert r.get("type") == "message", r
    return await v.wait_for(lambda f: f.get("type") == "message"
                            and f.get("from", {}).get("role") == "bot"
                            and f.get("conversation") == conv["conversation"]
                            and f.get("text") != "" and f is not r, start=mark, timeout=10)


async def get_radar(gw, token: str, window: int | str = 300):
    async with gw.http.get(f"{gw.url}/api/rooms/{gw.room_id}/radar?window={window}",
                           headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def test_twenty_viewers_one_group_then_a_pin_answers_the_next(gw):
    room = gw.room_id
    host = await gw.client("host", "host-radar", room=room, name="山月")
    assert (await host.request("room.watch", room=room))["type"] == "room.state"  # the panel
    watcher = await gw.client("viewer", "v-watch", room=room)  # a widget watching the room
    assert (await watcher.request("room.watch", room=room))["type"] == "room.state"
    t0 = time.monotonic()
    replies = await asyncio.gather(*(ask(gw, f"v{i}", t) for i, t in enumerate(ASKS)))
    assert len({r["conversation"] for r in replies}) == 20

    # REST: one group, twenty distinct viewers, two example texts
    status, body = await get_radar(gw, gw.token("host", "host-radar", room=room))
    assert status == 200, body
    assert set(body) >= {"groups", "flags", "surge"}
    assert body["surge"] == {"on": False, "since": None, "reason": None}
    jackets = [g for g in body["groups"] if g["sku"] == "D001"]
    assert [g["group"] for g in jackets] == [GROUP], jackets
    g = jackets[0]
    assert (g["intent"], g["slot"], g["viewers"], g["messages"]) == ("stock", "M", 20, 20)
    assert len(g["examples"]) == 2 and set(g["examples"]) <= set(ASKS)
    assert g["label"] == "stock · 三合一防水冲锋衣 · M" and g["pinned"] is None
    # the 1-minute window holds them too; a window outside the contract is refused
    assert (await get_radar(gw, gw.token("admin", "a1"), 60))[1]["groups"][0]["viewers"] == 20
    status, err = await get_radar(gw, gw.token("admin", "a1"), 120)
    assert status == 400 and err["error"] == "bad_request"

    # the same object was pushed to the room's host, without asking
    push = await host.wait_for(lambda f: f.get("type") == "room.radar" and any(
        x["group"] == GROUP and x["viewers"] == 20 for x in f["groups"]), timeout=5)
    assert push["room"] == room and push["window"] == 300 and "flags" in push
    # coalesced: at most one push a second, however many questions arrived
    pushes = sum(1 for f in host.frames if f.get("type") == "room.radar")
    assert 1 <= pushes <= time.monotonic() - t0 + 1, pushes

    # the daily report (CSV) counts them per product
    async with gw.http.get(f"{gw.url}/api/rooms/{room}/radar/report", headers={
            "Authorization": f"Bearer {gw.token('supervisor', 'sup1')}"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
        rows = [line.split(",") for line in (await resp.text()).splitlines()]
    assert rows[0] == ["day", "room", "sku", "questions", "complaint", "return_refund", "safety"]
    assert [r[2:] for r in rows[1:]] == [["D001", "20", "0", "0", "0"]], rows
    # one day of it (UTC), the dashboard's link; another day is empty, a bad one refused
    today = time.strftime("%Y-%m-%d", time.gmtime())
    for day, want in ((today, 1), ("2001-01-01", 0), ("20010101", None), ("x", None)):
        async with gw.http.get(f"{gw.url}/api/rooms/{room}/radar/report?day={day}", headers={
                "Authorization": f"Bearer {gw.token('supervisor', 'sup1')}"}) as resp:
            if want is None:
                assert resp.status == 400 and (await resp.json())["error"] == "bad_request"
                continue
            assert resp.status == 200 and day in resp.headers["Content-Disposition"]
            assert len((await resp.text()).splitlines()) == 1 + want, day

    # the host pins an answer to the group
    r = await host.request("room.pin", room=room, group=GROUP, text=PIN)
    assert r["type"] == "ack", r
    await watcher.event("room.announcement", text=PIN)  # the widget shows it
    await host.wait_for(lambda f: f.get("type") == "room.radar" and any(
        x["group"] == GROUP and x["pinned"] == PIN for x in f["groups"]), timeout=5)

    # the next viewer asking (in yet other words) gets the pinned answer first
    reply = await ask(gw, "v-next", "冲锋衣M码还有货吗？")
    assert reply["text"].startswith(PIN), reply["text"]
    # the group says how many asked since the pin (the host sees whether the pin works)
    _, body = await get_radar(gw, gw.token("host", "host-radar", room=room))
    g = next(x for x in body["groups"] if x["group"] == GROUP)
    assert (g["viewers"], g["viewers_since_pin"], g["pinned"]) == (21, 1, PIN), g
    assert g["pinned_at"] <= time.time()
    # a different question is not answered with the pin
    other = await ask(gw, "v-other", "冲锋衣L码还有吗")
    assert PIN not in other["text"]


async def test_pin_is_for_the_rooms_host_and_checked(gw):
    room = gw.room_id
    host = await gw.client("host", "host-x", room=room)
    r = await host.request("room.pin", room=room, group="stock|D999|M", text="x")
    assert r["code"] == "not_found", r
    r = await host.request("room.pin", room=room, group="nonsense", text="x")
    assert r["code"] == "bad_request", r
    r = await host.request("room.pin", room="elsewhere", group=GROUP, text="x")
    assert r["code"] == "not_found", r
    viewer = await gw.client("viewer", "v-pin", room=room)
    r = await viewer.request("room.pin", room=room, group=GROUP, text="x")
    assert r["code"] == "forbidden", r
    # another room's host may not read this room's radar
    status, _ = await get_radar(gw, gw.token("host", "h2", room="other-room"))
    assert status == 403
    # an empty text unpins
    assert (await host.request("room.pin", room=room, group=GROUP, text=PIN))["type"] == "ack"
    assert gw.gw.radar.radar.pinned_answer(room, "stock", "D001", "M") == PIN
    assert (await host.request("room.pin", room=room, group=GROUP, text=""))["type"] == "ack"
    assert gw.gw.radar.radar.pinned_answer(room, "stock", "D001", "M") is None

