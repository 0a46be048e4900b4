"""Findings 1 (the edge half), 9 (WS side), 10 (``id`` of NaN) and the field lengths of 6.

Issue 13, finding 1: a lone UTF-16 surrogate (JSON ``"\\ud800"``) in chat text, a
conversation ``name`` or an escalation reason was stored and then silenced the viewer, the
assigned agent and admins for good (memory backend), or answered ``internal`` (Redis).
Now it is refused at the edge with a typed ``bad_request`` naming the field, nothing is
stored, and everyone else carries on. Finding 9: 20,000 nested arrays or a 4,300-digit
integer closed the socket with 1000 and logged a traceback; now ``bad_request``, socket
open, nothing logged. Finding 10: ``"id": NaN`` was echoed as bare ``NaN`` (not JSON).
"""

from __future__ import annotations

import json
import logging
import math

import pytest

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

from .scene import build_scene

LONE = "\ud800"  # json.dumps writes it as the escape "\ud800", exactly what a hostile client sends


async def raw_reply(c, text: str, timeout: float = 5.0) -> dict:
    """Send a raw text frame and return the first error or reply frame that follows."""
    n = len(c.frames)
    await c.send_raw(text)
    return await c.wait_for(lambda f: "seq" not in f or f.get("type") in ("error", "pong"),
                            timeout=timeout, start=n)


@pytest.fixture(params=["memory", "redis"])
async def gw(request):
    if request.param == "redis":
        srv = request.getfixturevalue("redis_server")
        r = await start_gateway(Config(dev=True, port=free_port(), redis_url=srv.url))
    else:
        r = await start_gateway()
    try:
        yield r
    finally:
        await stop_gateway(r)


@pytest.mark.parametrize("where", ["text", "name", "reason", "client_msg_id"])
async def test_lone_surrogate_is_refused_at_the_edge_and_nobody_goes_silent(gw, where, caplog):
    scene = await build_scene(gw)
    v = scene.viewer
    if where == "name":
        e = await v.request("conversation.open", room=scene.room, name=f"Ann{LONE}")
    elif where == "reason":
        e = await v.request("conversation.escalate", conversation=scene.conversation,
                            reason=f"angry {LONE}")
    else:
        fields = {"text": "hi", "client_msg_id": "k-1"}
        fields[where] = f"x{LONE}y"
        e = await v.request("message.send", conversation=scene.conversation, **fields)
    assert e["type"] == "error" and e["code"] == "bad_request", e
    assert repr(where) in e["message"] and "surrogate" in e["message"], e
    # nothing was stored: the conversation's history and the agent's view hold no such text
    got = await scene.agent.request("conversation.get", conversation=scene.conversation)
    assert got["type"] == "conversation", got
    assert "\ud800" not in json.dumps(got, ensure_ascii=False)
    await scene.assert_alive()
    # a normal message still flows viewer → agent
    r = await v.request("message.send", conversation=scene.conversation, text="still here",
                        client_msg_id="k-2")
    assert r["type"] == "message", r
    await scene.agent.wait_for(lambda f: f.get("type") == "message" and f.get("text") == "still here")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize("bad, what", [
    ("\u0007", "control character"), ("\x00", "control character"), ("\x85", "control"),
])
async def test_control_characters_are_refused(gw, bad, what):
    scene = await build_scene(gw)
    e = await scene.viewer.request("message.send", conversation=scene.conversation,
                                   text=f"a{bad}b", client_msg_id="k-c")
    assert e["type"] == "error" and e["code"] == "bad_request" and what in e["message"], e
    ok = await scene.viewer.request("message.send", conversation=scene.conversation,
                                    text="tab\tand\nnewline are fine", client_msg_id="k-d")
    assert ok["type"] == "message" and ok["text"] == "tab\tand\nnewline are fine", ok


async def test_deep_nesting_and_huge_numbers_are_bad_request_without_traceback(gw, caplog):
    """Finding 9 (WS side): no close, no traceback, a typed error, the socket usable."""
    scene = await build_scene(gw)
    v = scene.viewer
    cases = [
        '{"type":"ping","x":' + "[" * 20000 + "]" * 20000 + "}",
        '{"type":"room.stock","room":"demo","sku":"D001","stock":' + "9" * 4301 + "}",
        '{"type":"ping","id":' + "1" * 5000 + "}",
        '{"type":"ping","x":1e999}',
    ]
    for text in cases:
        e = await raw_reply(v, text)
        assert e["type"] == "error" and e["code"] == "bad_request", (text[:40], e)
        assert v.closed_code is None
        pong = await v.request("ping")
        assert pong["type"] == "pong"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text
    await scene.assert_alive(fresh_viewer=False)


@pytest.mark.parametrize("rid", ["NaN", "Infinity", "-Infinity", "true", "[1]", '{"a":1}',
                                 '"' + "x" * 65 + '"', '"bad\\ud800"'])
async def test_an_id_that_is_not_a_bounded_string_or_finite_number_is_refused(gw, rid):
    """Finding 10: ``"id": NaN`` was echoed as bare ``NaN``; every reply must be JSON."""
    c = await gw.client("viewer", "v-id", room=gw.room_id)
    n = len(c.frames)
    await c.send_raw('{"type":"ping","id":' + rid + "}")
    e = await c.wait_for(lambda f: True, start=n)
    assert e["type"] == "error" and e["code"] == "bad_request", e
    # the parser refuses NaN/Infinity anywhere (naming them); other ids are refused by name
    assert "'id'" in e["message"] or rid.lstrip("-") in e["message"], e
    assert "id" not in e  # never echoed
    for f in c.frames:  # every frame the server sent parsed as strict JSON numbers
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in f.values()), f
    ok = await c.request("ping")  # a good id is echoed as sent
    assert ok["type"] == "pong"
    for good in ("abc", 12, 1.5, -3):
        n = len(c.frames)
        await c.send_raw(json.dumps({"type": "ping", "id": good}))
        pong = await c.wait_for(lambda f: f.get("type") == "pong", start=n)
        assert pong["id"] == good


@pytest.mark.parametrize("field, size, limit", [
    ("name", 60_000, 64), ("client_msg_id", 55_000, 128), ("text", 4_001, 4000),
    ("reason", 501, 500),
])
async def test_every_string_field_is_bounded(gw, field, size, limit):
    """Finding 6's field lengths: a 60,000-character display name and a 55 KB
    ``client_msg_id`` were accepted and stored; now ``too_large`` naming field and limit."""
    scene = await build_scene(gw)
    v = scene.viewer
    big = "x" * size  # under the 64 KiB frame limit, as in the review
    if field == "name":
        e = await v.request("conversation.open", room=scene.room, name=big)
    elif field == "reason":
        e = await v.request("conversation.escalate", conversation=scene.conversation, reason=big)
    else:
        fields = {"text": "hi", "client_msg_id": "k-big"}
        fields[field] = big
        e = await v.request("message.send", conversation=scene.conversation, **fields)
    assert e["type"] == "error" and e["code"] == "too_large", e
    assert repr(field) in e["message"] and str(limit) in e["message"], e
    snap = await scene.admin.request("conversation.get", conversation=scene.conversation)
    assert big not in json.dumps(snap, ensure_ascii=False)
