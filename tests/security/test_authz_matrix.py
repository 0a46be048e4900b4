"""The review's authorization matrix, kept as a test: every role × every message type, and
every REST endpoint × every role.

The message types come from :func:`signaling.protocol.registered_types` of a running
gateway (every domain registers its own), and each frame is built from the class's typed
fields, so a new message type is in the matrix the day it is added. For each pair the
rule is the class's ``ROLES``: a role outside it gets exactly one ``forbidden`` naming the
role; a role inside it gets exactly one answer that is *handled* (a reply, or a typed
refusal about the request itself: not found, not a member, bad state…), never ``internal``
and never the role refusal.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import types
import typing
from typing import Any, get_args, get_origin

import pytest

from gateway.config import Config
from signaling.protocol import ROLES, registered_types
from tests.conftest import free_port, start_gateway, stop_gateway

_ids = itertools.count(10_000)

# REST: (method, path) → roles allowed (None: public, no token needed). The test fails when
# the app has an /api route missing here, so a new endpoint must declare who may call it.
REST = {
    ("GET", "/api/rooms"): None,
    ("GET", "/api/dev/token"): None,  # only with --dev (tests run with it)
    ("POST", "/api/rooms/{room}/orders"): {"service"},
    ("POST", "/api/rooms/{room}/notices"): {"service"},
    ("GET", "/api/dashboard"): {"admin"},
    # history (the durable store): agents search and read their own conversations
    ("GET", "/api/conversations"): {"agent", "supervisor", "admin"},
    ("GET", "/api/conversations/{cid}"): {"agent", "supervisor", "admin"},
    ("GET", "/api/conversations/{cid}/export"): {"agent", "supervisor", "admin"},
    ("DELETE", "/api/users/{viewer}"): {"admin"},
    # attachments (docs/protocol.md#attachments): members of the conversation and staff;
    # who exactly is the service's rule (tests/security/test_attachments.py)
    ("POST", "/api/conversations/{cid}/attachments"): {"viewer", "agent", "host",
                                                       "supervisor", "admin"},
    ("GET", "/api/attachments/{id}"): {"viewer", "agent", "host", "supervisor", "admin"},
    ("GET", "/api/admin/users"): {"admin"},  # accounts with their lockout state
    ("POST", "/api/admin/users"): {"admin"},  # the admin page adds an account
    ("PATCH", "/api/admin/users/{user}"): {"admin"},  # disable/enable, roles, password
    # the question radar (issue 20): the room's host, supervisors, admins; the delivery log
    ("GET", "/api/rooms/{room}/radar"): {"host", "supervisor", "admin"},
    ("GET", "/api/rooms/{room}/radar/report"): {"host", "supervisor", "admin"},
    ("GET", "/api/webhooks/deliveries"): {"admin"},
    # the generated specs (docs/spec/): public, like the docs they are (issue 22)
    ("GET", "/api/openapi.json"): None,
    ("GET", "/api/protocol.schema.json"): None,
}
# Cookie endpoints (sign-in): no bearer token at all; tests/auth/ covers them.
COOKIE = {("POST", "/api/auth/login"), ("POST", "/api/auth/token"),
          ("POST", "/api/auth/logout")}
# the embed's: no bearer token (a shop page's visitor has none); checked by origin, the shop's
# anonymous flag and per-address limits instead (tests/auth/test_anonymous.py)
EMBED = {("GET", "/api/embed/config"), ("POST", "/api/embed/anonymous")}


@pytest.fixture
async def gw(tmp_path):
    config = Config(dev=True, port=free_port(), data_dir=tmp_path)  # with a store: history
    config.rate_per_s, config.rate_burst = 10_000.0, 10_000
    r = await start_gateway(config)
    try:
        yield r
    finally:
        await stop_gateway(r)


def sample(name: str, hint: Any, ctx: dict) -> Any:
    """A well-typed value for one field, pointing at real objects where names say so."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    if name in ctx:
        return ctx[name]
    if get_origin(hint) is typing.Literal:
        return get_args(hint)[0]
    return {str: "x", int: 1, float: 1.0, bool: True, dict: {}, list: []}.get(
        hint if get_origin(hint) is None else get_origin(hint), "x")


def frame_for(cls, ctx: dict) -> dict:
    out = {"type": cls.TYPE}
    for f in dataclasses.fields(cls):
        out[f.name] = sample(f.name, cls._HINTS[f.name], ctx)
    if cls.TYPE == "hello":
        out["protocol"] = 1
    return out


async def test_every_role_times_every_message_type(gw):
    room = gw.room_id
    types = registered_types()
    assert {"hello", "message.send", "call.request", "action.compensate"} <= set(types)
    viewer_owner = await gw.client("viewer", "mx-owner", room=room, name="Owner")
    conv = await viewer_owner.request("conversation.open", room=room)
    ctx = {"room": room, "conversation": conv["conversation"], "sku": "D001",
           "call": "k_missing", "user": "mx-host", "agent": "mx-agent", "approval": "ap_x",
           "order_id": "o-x", "session": "s_missing", "last_seq": 0, "status": "available",
           "token": "not-a-token", "stock": 5, "promotion": "P1", "rating": 5,
           "amount": 1.0, "text": "hello", "client_msg_id": "mx-1", "sdp": "v=0",
           "candidate": ""}
    sockets = {}
    for role in ROLES:
        room_claim = room if role in ("viewer", "host", "service") else None
        c = await gw.client(role, f"mx-{role}", room=room_claim, name=role)
        assert (await c.request("ping"))["type"] == "pong"  # past the resume window
        sockets[role] = c
    seen = 0
    for tname, cls in sorted(types.items()):
        for role, c in sockets.items():
            body = frame_for(cls, dict(ctx, client_msg_id=f"mx-{role}-{tname}"))
            if tname == "room.promo.upsert":
                body["promotion"] = {"id": "P-mx", "kind": "coupon", "text": "t"}
            rid = next(_ids)
            await c.send_raw(json.dumps(dict(body, id=rid)))
            r = await c.wait_for(lambda f, rid=rid: f.get("id") == rid, timeout=10)
            seen += 1
            if tname in ("hello",):
                assert r["code"] == "bad_state", (role, tname, r)  # authenticated already
                continue
            if role not in cls.ROLES:
                assert r["type"] == "error" and r["code"] == "forbidden", (role, tname, r)
                assert f"role {role!r} may not send" in r["message"], (role, tname, r)
            else:
                assert r.get("code") != "internal", (role, tname, r)
                assert not (r.get("code") == "forbidden" and "may not send" in r["message"]), \
                    (role, tname, r)
    assert seen == len(types) * len(ROLES)
    for role, c in sockets.items():  # nobody lost their socket along the way
        assert (await c.request("ping"))["type"] == "pong", role


async def test_every_rest_endpoint_times_every_role(gw):
    routes = {(r.method, r.resource.canonical) for r in gw.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/")
              and r.method != "HEAD"}
    declared = set(REST) | COOKIE | EMBED
    assert routes == declared, f"declare who may call: {routes ^ declared}"
    room = gw.room_id
    bodies = {"/api/rooms/{room}/orders": {"order_id": "mx-o", "user": "v", "sku": "D001",
                                           "qty": 1},
              "/api/rooms/{room}/notices": {"kind": "logistics_delay", "orders": ["nope"],
                                            "text": "t"}}
    for (method, path), allowed in REST.items():
        url = gw.url + (path.replace("{room}", room).replace("{cid}", "c-none")
                        .replace("{viewer}", "v-none").replace("{user}", "u-none")
                        .replace("{id}", "att-none"))
        body = bodies.get(path)
        async with gw.http.request(method, url, json=body) as resp:
            if allowed is None:
                assert resp.status == 200, (path, resp.status)
                continue
            assert resp.status == 401, (path, "no token", resp.status)
            assert (await resp.json())["error"] == "unauthenticated"
        for role in ROLES:
            token = gw.token(role, f"mx-{role}", room=room if role != "admin" else None)
            async with gw.http.request(method, url, json=body,
                                       headers={"Authorization": f"Bearer {token}"}) as resp:
                if role in allowed:
                    assert resp.status < 500 and resp.status not in (401, 403), \
                        (path, role, resp.status, await resp.text())
                else:
                    assert resp.status == 403, (path, role, resp.status)
                    assert (await resp.json())["error"] == "forbidden"
