"""The edge: authentication, sequencing and every kind of bad input, against a real server.

Each bad input must produce a typed error naming the problem, leave the socket usable
(except oversize → 1009 and bad tokens → 4401), and leave other sessions untouched.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway


async def assert_usable(c):
    pong = await c.request("ping")
    assert pong["type"] == "pong"


async def test_hello_welcome_is_seq_1(gateway):
    c = await gateway.client()
    w = await c.hello(gateway.token("viewer", "v1", room=gateway.room_id, name="Ann"))
    assert w["type"] == "welcome" and w["seq"] == 1
    assert w["user"] == "v1" and w["role"] == "viewer" and w["protocol"] == 1
    assert isinstance(w["session"], str) and isinstance(w["ice_servers"], list)
    pong = await c.request("ping")
    assert pong["seq"] == 2


async def test_message_before_hello_is_unauthenticated_without_seq(gateway):
    c = await gateway.client()
    e = await c.request("conversation.open", room=gateway.room_id)
    assert e["type"] == "error" and e["code"] == "unauthenticated" and "seq" not in e
    w = await c.hello(gateway.token("viewer", "v1", room=gateway.room_id))
    assert w["type"] == "welcome"


@pytest.mark.parametrize("kind", ["garbage", "expired", "wrong_secret"])
async def test_bad_token_errors_then_closes_4401(gateway, kind):
    from signaling import TokenAuthority
    token = {"garbage": "not-a-jwt",
             "expired": gateway.token("viewer", "v1", ttl=-60),
             "wrong_secret": TokenAuthority("other-secret").issue("v1", "viewer")}[kind]
    c = await gateway.client()
    e = await c.request("hello", token=token, protocol=1)
    assert e["type"] == "error" and e["code"] == "unauthenticated"
    if kind == "expired":
        assert "expired" in e["message"]
    assert await c.wait_closed() == 4401


async def test_ten_kinds_of_bad_input_keep_the_socket_usable(gateway):
    viewer = await gateway.client("viewer", "v1", room=gateway.room_id)
    agent = await gateway.client("agent", "a1")
    other = await gateway.client("viewer", "v2", room=gateway.room_id)
    conv = await other.request("conversation.open", room=gateway.room_id)

    async def raw(c, text):
        n = len(c.frames)
        await c.send_raw(text)
        return await c.wait_for(lambda f: f["type"] == "error", start=n)

    cases = [
        (await raw(viewer, "{not json"), "bad_json", "JSON"),
        (await raw(viewer, "[1, 2]"), "bad_request", "object"),
        (await raw(viewer, json.dumps({"type": "no.such.thing"})), "unknown_type", "no.such.thing"),
        (await viewer.request("message.send", conversation="x", text="hi"), "bad_request", "client_msg_id"),
        (await viewer.request("message.send", conversation=1, text="hi", client_msg_id="c"),
         "bad_request", "conversation"),
        (await viewer.request("agent.status", status="available"), "forbidden", "agent.status"),
        (await viewer.request("message.send", conversation=conv["conversation"], text="hi",
                              client_msg_id="c1"), "not_member", conv["conversation"]),
        (await viewer.request("conversation.open", room="no-such-room"), "not_found", "no-such-room"),
        (await viewer.request("message.send", conversation="c_missing", text="hi",
                              client_msg_id="c2"), "not_found", "c_missing"),
        (await agent.request("agent.status", status="sleeping"), "bad_request", "status"),
        (await viewer.request("hello", token="x", protocol=1), "bad_state", "already"),
    ]
    for err, code, needle in cases:
        assert err["type"] == "error" and err["code"] == code, (code, err)
        assert needle in err["message"], (needle, err)
        assert "seq" in err  # errors after hello are part of the sequence
    await assert_usable(viewer)
    await assert_usable(agent)
    # the other session saw none of this and still works, its conversation intact
    assert not [f for f in other.frames if f["type"] == "error"]
    again = await other.request("conversation.open", room=gateway.room_id)
    assert again["conversation"] == conv["conversation"]


async def test_errors_carry_the_request_id(gateway):
    c = await gateway.client("viewer", "v1", room=gateway.room_id)
    await c.send_raw(json.dumps({"type": "conversation.open", "id": "abc", "room": 5}))
    e = await c.wait_for(lambda f: f.get("id") == "abc")
    assert e["type"] == "error" and e["code"] == "bad_request"


async def test_oversized_frame_is_too_large_and_closes_1009(gateway):
    c = await gateway.client("viewer", "v1", room=gateway.room_id)
    bystander = await gateway.client("viewer", "v2", room=gateway.room_id)
    await c.send_raw(json.dumps({"type": "ping", "pad": "x" * (64 * 1024)}))
    e = await c.wait_for(lambda f: f["type"] == "error")
    assert e["code"] == "too_large" and "65536" in e["message"]
    assert await c.wait_closed() == 1009
    await assert_usable(bystander)


async def test_frame_just_under_the_limit_is_accepted(gateway):
    c = await gateway.client("viewer", "v1", room=gateway.room_id)
    conv = await c.request("conversation.open", room=gateway.room_id)
    text = "x" * 3000
    frame = {"type": "message.send", "id": 1, "conversation": conv["conversation"],
             "text": text, "client_msg_id": "big", "pad": "y" * (60 * 1024)}
    await c.send_raw(json.dumps(frame))
    m = await c.wait_for(lambda f: f.get("id") == 1)
    assert m["type"] == "message" and m["text"] == text


async def test_rate_limit_answers_rate_limited_and_recovers(gateway):
    c = await gateway.client("viewer", "v1", room=gateway.room_id)
    for _i in range(60):
        await c.send("ping")
    err = await c.wait_for(lambda f: f["type"] == "error")
    assert err["code"] == "rate_limited"
    pongs = sum(1 for f in c.frames if f["type"] == "pong")
    assert pongs <= 45  # burst 40 (+ refill while sending)
    await asyncio.sleep(0.3)
    await assert_usable(c)


async def test_seq_is_per_session(gateway):
    v = await gateway.client("viewer", "v1", room=gateway.room_id)
    a = await gateway.client("agent", "a1")
    await a.request("agent.status", status="available")
    conv = await v.request("conversation.open", room=gateway.room_id)
    cid = conv["conversation"]
    await v.request("conversation.escalate", conversation=cid)
    await a.event("conversation.assigned", conversation=cid)
    await a.request("ping")
    # move the viewer's sequence on alone until it is clearly ahead of the agent's
    for _ in range(max(0, a.last_seq - v.last_seq) + 3):
        await v.request("ping")
    v_before, a_before = v.last_seq, a.last_seq
    assert v_before != a_before
    mv = await v.request("message.send", conversation=cid, text="hello agent", client_msg_id="k1")
    ma = await a.event("message", client_msg_id="k1")
    assert mv["message_id"] == ma["message_id"]
    # the same message: each recipient's next seq, so different numbers
    assert mv["seq"] == v_before + 1 and ma["seq"] == a_before + 1
    for c in (v, a):
        seqs = [f["seq"] for f in c.frames if "seq" in f]
        assert seqs == list(range(1, len(seqs) + 1))


async def test_serve_refuses_without_secret_and_dev_on_public_host():
    from gateway.config import ConfigError
    with pytest.raises(ConfigError, match="LIVEDESK_SECRET"):
        Config(dev=False, secret="").validate()
    with pytest.raises(ConfigError, match="loopback"):
        Config(dev=True, host="0.0.0.0").validate()
    assert Config(dev=True, host="127.0.0.1").validate().secret


async def test_health_ready_metrics_and_dev_token(gateway):
    h = gateway.http
    async with h.get(gateway.url + "/healthz") as r:
        assert r.status == 200
    async with h.get(gateway.url + "/readyz") as r:
        assert r.status == 200 and (await r.json())["ready"] is True
    async with h.get(gateway.url + "/metrics") as r:
        body = await r.text()
        assert r.status == 200 and "livedesk_queue_length" in body
    async with h.get(gateway.url + "/api/dev/token?role=agent&user=zed") as r:
        tok = await r.json()
    c = await gateway.client()
    w = await c.hello(tok["token"])
    assert w["user"] == "zed" and w["role"] == "agent"


async def test_dev_token_endpoint_absent_without_dev():
    secret = "94a12c63a68b1872e8967fd56f94e9bd6a3d5f88386ae4b936a555644a566cb1"  # ≥ 32 bytes
    r = await start_gateway(Config(dev=False, secret=secret, port=free_port()))
    try:
        async with r.http.get(r.url + "/api/dev/token?role=admin") as resp:
            assert resp.status == 404
    finally:
        await stop_gateway(r)
