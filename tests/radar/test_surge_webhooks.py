"""Issue 20 must-shows over the real protocol: surge transitions and signed webhooks.

Surge: a promotion with ``starts_at`` → agents warned → surge on at the start → a viewer's
call request gets a callback slot instead of a ring → surge off when the rate stays low;
each transition reaches the agents' and the dashboard's sockets and a webhook receiver that
verifies every signature with ``gateway.webhooks.verify``.

Webhooks: forged, altered and replayed (old ``iat``) deliveries fail the helper; a receiver
that is down gets the delivery later (retries with backoff), and the admins' delivery log
shows both.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import pytest

from gateway.support.anomaly import AnomalyRule
from gateway.support.events import SurgeChanged, SurgeWarned
from gateway.support.knowledge import Knowledge, Promotion, demo_room_path
from gateway.support.room import RoomRegistry
from gateway.support.surge import Surge, SurgeRule
from gateway.webhooks import WebhookError, body_hash, sign, verify
from tests.backends import MEMORY, Backend, free_port
from tests.conftest import start_gateway, stop_gateway
from tests.radar.receiver import Receiver

SECRET = secrets.token_hex(32)


async def _gateway(url: str, backend: Backend = MEMORY, **kw):
    cfg = backend.config(retain_s=600, rate_per_s=1000.0, rate_burst=1000, radar_tick_s=0.2,
                        webhook_urls=[url], webhook_secret=SECRET, webhook_retry_base_s=0.2,
                        webhook_retry_max_s=0.5, **kw)
    return await start_gateway(cfg)


@pytest.mark.parity
async def test_surge_from_warning_to_callback_to_calm(backend: Backend):
    rx = await Receiver(SECRET, free_port()).start()
    gw = await _gateway(rx.url, backend, surge_calm_s=6.0)  # room for the steps while on
    try:
        room = gw.room_id
        agent = await gw.client("agent", "ag-surge", name="Alice")
        assert (await agent.request("agent.status", status="available"))["type"] == "ack"
        admin = await gw.client("admin", "ad-surge")
        assert (await admin.request("dashboard.watch"))["type"] == "dashboard"
        host = await gw.client("host", "host-surge", room=room)
        assert (await host.request("room.watch", room=room))["type"] == "room.state"
        viewer = await gw.client("viewer", "v-surge", room=room)
        conv = (await viewer.request("conversation.open", room=room))["conversation"]

        starts_at = time.time() + 2.0
        r = await host.request("room.promo.upsert", room=room, promotion={
            "id": "FLASH", "kind": "discount", "text": "冲锋衣限时秒杀", "sku": "D001",
            "starts_at": starts_at})
        assert r["type"] == "ack", r

        # warned (the sale is less than 5 minutes away), on the agents' socket and as a webhook
        w = await agent.event("surge.warning", room=room, promotion="FLASH")
        assert w["starts_at"] == pytest.approx(starts_at) and 0 < w["in_s"] <= 300
        await rx.wait_for("surge.warning", promotion="FLASH")

        # on at the start: agents and the dashboard see it, the shop gets the webhook
        on = await agent.event("surge.state", room=room, on=True, timeout=10)
        assert on["reason"] == "promotion:FLASH" and on["since"] >= starts_at
        assert agent.frames.index(w) < agent.frames.index(on)  # warned first
        await admin.event("surge.state", room=room, on=True)
        hook = await rx.wait_for("surge.on", room=room)
        assert hook["reason"] == "promotion:FLASH"
        # the notice is pinned at the top of the viewer's open conversation
        notice = await viewer.wait_for(lambda f: f.get("type") == "message"
                                       and f.get("kind") == "announcement", timeout=5)
        assert "咨询量较大" in notice["text"]
        status_body = await _radar(gw, gw.token("host", "host-surge", room=room))
        assert status_body["surge"]["on"] is True

        # a call request during surge: a callback slot, no ring
        mark = len(agent.frames)
        cb = await viewer.request("call.request", conversation=conv, video=False)
        assert cb["type"] == "call.callback", cb
        assert cb["conversation"] == conv and cb["at"] >= time.time() + 600 - 5
        assert cb["position"] == 1 and "回电" in cb["text"]
        again = await viewer.request("call.request", conversation=conv, video=False)
        assert (again["type"], again["at"]) == ("call.callback", cb["at"])  # the same slot
        await asyncio.sleep(0.3)
        assert not any(f.get("type") == "call.incoming" for f in agent.frames[mark:])
        # the slot is written into the conversation for the agent who will call back
        got = await viewer.request("conversation.get", conversation=conv)
        slot_msg = [m for m in got["messages"] if m.get("kind") == "system" and "回电" in m["text"]]
        assert len(slot_msg) == 1, got["messages"]
        # keyed, so an English page words it in English (docs/protocol.md "Server texts")
        assert slot_msg[0]["text_key"] == "surge.callback"
        assert slot_msg[0]["params"]["n"] == 1 and ":" in slot_msg[0]["params"]["hhmm"]

        # nothing much happens: surge ends by itself after surge_calm_s
        off = await agent.event("surge.state", room=room, on=False, timeout=15)
        assert off["reason"] == "calm"
        await admin.event("surge.state", room=room, on=False)
        await rx.wait_for("surge.off", room=room)
        # calls go back to the ordinary rule (this conversation has no agent: refused)
        r = await viewer.request("call.request", conversation=conv, video=False)
        assert r["code"] == "bad_state", r

        # every delivery passed the receiver's verification
        assert rx.refused == []
        assert [e["event"] for e in rx.got if e["event"].startswith("surge")] == \
            ["surge.warning", "surge.on", "surge.off"]
        for e in rx.got:
            assert {"event", "id", "created_at"} <= set(e) and "iat" in e["_claims"]
    finally:
        await stop_gateway(gw)
        await rx.stop()


async def _radar(gw, token: str) -> dict:
    async with gw.http.get(f"{gw.url}/api/rooms/{gw.room_id}/radar",
                           headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200
        return await resp.json()


async def _deliveries(gw) -> list[dict]:
    async with gw.http.get(f"{gw.url}/api/webhooks/deliveries", headers={
            "Authorization": f"Bearer {gw.token('admin', 'ad-log')}"}) as resp:
        assert resp.status == 200
        return (await resp.json())["deliveries"]


async def test_a_receiver_that_is_down_gets_the_delivery_later():
    port = free_port()  # nothing listens here yet
    url = f"http://127.0.0.1:{port}/hook"
    gw = await _gateway(url, webhook_max_attempts=1000)  # keeps retrying while the test waits
    rx = Receiver(SECRET, port)
    try:
        room = gw.room_id
        agent = await gw.client("agent", "ag-wh", name="Bob")
        assert (await agent.request("agent.status", status="available"))["type"] == "ack"
        viewer = await gw.client("viewer", "v-wh", room=room)
        conv = (await viewer.request("conversation.open", room=room))["conversation"]
        assert (await viewer.request("conversation.escalate", conversation=conv,
                                     reason="help"))["type"] == "ack"
        await agent.event("conversation.assigned", conversation=conv)
        assert (await agent.request("conversation.resolve", conversation=conv))["type"] == "ack"

        # the receiver is down: the delivery is pending, with its failed attempts logged
        for _ in range(50):
            log = [d for d in await _deliveries(gw) if d["event"] == "conversation.resolved"]
            if log and log[0]["attempts"] >= 2:
                break
            await asyncio.sleep(0.1)
        d = log[0]
        assert d["state"] == "pending" and d["error"] and d["url"] == url, d
        # it comes back: the same delivery arrives, signed afresh, and verifies
        await rx.start()
        got = await rx.wait_for("conversation.resolved", conversation=conv)
        assert got["room"] == room and got["agent"] == "ag-wh" and got["outcome"] == "agent"
        assert got["id"] == d["id"]
        assert rx.refused == []
        for _ in range(20):
            d = next(x for x in await _deliveries(gw) if x["id"] == got["id"])
            if d["state"] == "delivered":
                break
            await asyncio.sleep(0.05)
        assert d["state"] == "delivered" and d["attempts"] >= 3 and d["status"] == 200, d
        # only an admin reads the log
        async with gw.http.get(f"{gw.url}/api/webhooks/deliveries", headers={
                "Authorization": f"Bearer {gw.token('agent', 'ag-wh')}"}) as resp:
            assert resp.status == 403
    finally:
        await stop_gateway(gw)
        await rx.stop()


def test_forged_altered_and_replayed_deliveries_fail_verification():
    body = json.dumps({"event": "surge.on", "id": "wh_1", "created_at": time.time()}).encode()
    good = sign(body, SECRET)
    claims = verify(body, good, SECRET)
    assert claims["sha256"] == body_hash(body) and abs(claims["iat"] - time.time()) < 5
    assert verify(body, "Bearer " + good, SECRET)["iat"] == claims["iat"]
    with pytest.raises(WebhookError, match="signature"):  # forged: another secret
        verify(body, sign(body, secrets.token_hex(32)), SECRET)
    with pytest.raises(WebhookError, match="body"):  # the body was altered in transit
        verify(body.replace(b"surge.on", b"surge.off"), good, SECRET)
    with pytest.raises(WebhookError, match="replay"):  # replayed: signed 6 minutes ago
        verify(body, sign(body, SECRET, now=time.time() - 360), SECRET)
    with pytest.raises(WebhookError):  # not a JWT at all
        verify(body, "nonsense", SECRET)
    with pytest.raises(WebhookError):  # alg none
        import jwt
        verify(body, jwt.encode({"iat": int(time.time()), "sha256": body_hash(body)}, None,
                                algorithm="none"), SECRET)


# --- the surge state machine on a simulated clock --------------------------------------------

def _surge(rule: SurgeRule) -> tuple[Surge, RoomRegistry]:
    rooms = RoomRegistry()
    rooms.add(Knowledge.load(demo_room_path()))
    return Surge(rooms, lambda room: 0, rule), rooms


def test_agents_are_warned_five_minutes_before_and_surge_starts_at_the_sale():
    s, rooms = _surge(SurgeRule(calm_s=120))
    t0 = 1_800_000_000.0
    room = rooms.get("demo")
    assert room is not None
    room.knowledge.promotions.append(Promotion.from_dict(
        {"id": "P9", "kind": "discount", "starts_at": t0 + 1000}))
    assert s.tick(t0 + 699) == []
    assert s.tick(t0 + 700) == [SurgeWarned("demo", "P9", t0 + 1000)]  # 300 s before
    assert s.tick(t0 + 999) == []
    [on] = s.tick(t0 + 1000)
    assert isinstance(on, SurgeChanged) and (on.on, on.reason) == (True, "promotion:P9")
    # busy: a message a second is 60/min, not below the exit threshold of 60: stays on
    for i in range(300):
        s.observe_message("demo", t0 + 1000 + i)
        assert s.tick(t0 + 1000 + i + 0.5) == [], i
    # quiet from t0+1300: off once calm for 120 s (the window empties by t0+1360)
    changes = [c for t in range(1300, 1600) for c in s.tick(t0 + t)]
    assert [(c.on, c.reason) for c in changes] == [(False, "calm")]
    assert 1300 + 120 <= changes[0].at - t0 <= 1360 + 120 + 1


def test_a_message_rate_over_the_threshold_starts_surge_and_books_callbacks():
    s, _ = _surge(SurgeRule(enter_messages_per_min=100, callbacks_per_slot=2,
                            callback_slot_s=300, callback_delay_s=600))
    t0 = 1_800_000_000.0
    assert s.book_callback("demo", "c0", t0) is None  # not in surge: ring as usual
    for i in range(100):
        s.observe_message("demo", t0 + i * 0.5)
    [on] = s.tick(t0 + 50)
    assert (on.on, on.reason) == (True, "message_rate")
    offers = [s.book_callback("demo", f"c{i}", t0 + 50) for i in range(5)]
    assert all(o is not None and o[1] for o in offers)
    ats = [o[0].at for o in offers if o]
    assert ats[0] >= t0 + 650 and ats[0] % 300 == 0
    assert ats == [ats[0], ats[0], ats[0] + 300, ats[0] + 300, ats[0] + 600]  # 2 per slot
    again = s.book_callback("demo", "c1", t0 + 60)
    assert again is not None and again[0] == offers[1][0] and again[1] is False  # type: ignore[index]


def test_anomaly_rule_defaults_are_the_documented_ones():
    """docs/configuration.md and the rule agree (a changed default must change the doc)."""
    from gateway.config import Config

    c, r = Config(), AnomalyRule()
    assert (c.anomaly_window_s, c.anomaly_min_count, c.anomaly_p_raise, c.anomaly_p_clear) \
        == (r.window_s, r.min_count, r.p_raise, r.p_clear)


async def test_complaints_raise_a_flag_everywhere_it_shows_and_it_clears_by_itself():
    """Real complaints through the bot: the flag is in the radar (REST and the host's push),
    the metric and an ``anomaly.raised`` webhook; it clears by itself once the (short, for
    the test) window has passed, with an ``anomaly.cleared`` webhook."""
    rx = await Receiver(SECRET, free_port()).start()
    gw = await _gateway(rx.url, anomaly_window_s=4.0)
    try:
        room = gw.room_id
        host = await gw.client("host", "host-flag", room=room)
        assert (await host.request("room.watch", room=room))["type"] == "room.state"

        async def complain(i: int) -> None:
            v = await gw.client("viewer", f"v-flag-{i}", room=room)
            cid = (await v.request("conversation.open", room=room))["conversation"]
            r = await v.request("message.send", conversation=cid,
                                text="轻量防滑登山鞋质量太差了，我要投诉", client_msg_id=f"f{i}")
            assert r["type"] == "message", r

        await asyncio.gather(*(complain(i) for i in range(6)))
        hook = await rx.wait_for("anomaly.raised", sku="D003", kind="complaint")
        assert hook["observed"] == 6 and hook["expected"] < 1 and hook["room"] == room
        push = await host.wait_for(lambda f: f.get("type") == "room.radar" and f["flags"],
                                   timeout=5)
        [flag] = push["flags"]
        assert (flag["sku"], flag["kind"], flag["observed"]) == ("D003", "complaint", 6)
        assert set(flag) >= {"sku", "kind", "observed", "expected", "since"}
        async with gw.http.get(f"{gw.url}/metrics") as resp:
            text = await resp.text()
        assert 'livedesk_anomaly_flag{kind="complaint",room="demo",sku="D003"} 1.0' in text

        cleared = await rx.wait_for("anomaly.cleared", sku="D003", timeout=15)
        assert cleared["since"] == hook["since"] and cleared["observed"] < 6
        await host.wait_for(lambda f: f.get("type") == "room.radar" and not f["flags"]
                            and f is not push, start=host.frames.index(push) + 1, timeout=5)
        assert rx.refused == []
    finally:
        await stop_gateway(gw)
        await rx.stop()


@pytest.mark.parity
@pytest.mark.one_backend("redis", why="two nodes share a promotion's start through Redis")
async def test_two_nodes_announce_a_promotions_surge_once(backend: Backend):
    """Both nodes see the promotion start (the room is shared) and both enter surge; only
    the first to claim it warns, pins the notice and sends each webhook."""
    rx = await Receiver(SECRET, free_port()).start()
    a = await _gateway(rx.url, backend, node_id="node-a", surge_calm_s=2.0)
    b = await _gateway(rx.url, backend, node_id="node-b", surge_calm_s=2.0)
    try:
        room = a.room_id
        host = await a.client("host", "host-2n", room=room)
        r = await host.request("room.promo.upsert", room=room, promotion={
            "id": "TWO", "kind": "discount", "text": "两节点秒杀", "starts_at": time.time() + 1.5})
        assert r["type"] == "ack", r
        await rx.wait_for("surge.off", room=room, timeout=20)
        await asyncio.sleep(1.0)  # the other node's transitions, had they been sent
        for node in (a, b):  # each node went through the episode itself
            assert node.gw.surge.surge.state(room)["on"] is False
            assert node.gw.surge.surge._room(room).episode.startswith("TWO@")
        events = [e["event"] for e in rx.got]
        assert events.count("surge.warning") == 1, events
        assert events.count("surge.on") == 1, events
        assert events.count("surge.off") == 1, events
        assert rx.refused == []
    finally:
        await stop_gateway(b)
        await stop_gateway(a)
        await rx.stop()
