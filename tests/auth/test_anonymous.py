"""Issue 17 item 4, over HTTP and a real socket: anonymous viewers of an embedded widget, for
shops that allow them (``livedesk shop add --anonymous``), bound to the browser by a signed
cookie and rate-limited per address; and the embed's headers (frame-ancestors per shop, CORS
for the widget's config call). The browser side is tests/e2e/test_embed.py."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from gateway.auth import admin as A
from gateway.auth.anonymous import COOKIE, AnonymousIdentities, AnonymousLimits
from gateway.store.accounts import Shop
from signaling import ErrorCode, ProtocolError

from .conftest import JSON, hello, run_cli

ORIGIN = "https://acme.example"


@pytest.fixture
async def shops(gw):
    store = gw.gw.auth.accounts
    acme = await A.add_shop(store, "acme", (gw.room_id,), (ORIGIN,), anonymous=True)
    closed = await A.add_shop(store, "closed", ("closed-room",), ("https://closed.example",))
    await gw.gw.auth.refresher.refresh()
    return acme, closed


async def anonymous(gw, room, cookie: str | None = None, headers=None, **body):
    h = {**JSON, **({"Cookie": f"{COOKIE}={cookie}"} if cookie else {}), **(headers or {})}
    async with gw.http.post(f"{gw.url}/api/embed/anonymous", json={"room": room, **body},
                            headers=h) as r:
        c = r.cookies.get(COOKIE)
        return r.status, await r.json(), (c.value if c else None), r.headers


async def test_an_anonymous_viewer_is_bound_to_its_cookie(gw, shops):
    status, body, cookie, headers = await anonymous(gw, gw.room_id)
    assert status == 200, body
    assert body["user"].startswith("~anon:acme:") and body["new"] is True
    set_cookie = headers["Set-Cookie"]
    for attr in ("HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/api/embed/"):
        assert attr in set_cookie, set_cookie
    assert headers["Cache-Control"] == "no-store"
    w = await hello(gw, body["token"])
    assert (w["type"], w["role"], w["user"], w["room"]) == ("welcome", "viewer", body["user"],
                                                            gw.room_id)
    # the same browser (its cookie) is the same viewer; another browser is another
    status, again, _, _ = await anonymous(gw, gw.room_id, cookie)
    assert status == 200 and again["user"] == body["user"] and again["new"] is False
    _, other, _, _ = await anonymous(gw, gw.room_id)
    assert other["user"] != body["user"]
    # a forged cookie (another browser id with a made-up MAC) is a new viewer, not that one
    browser = body["user"].rsplit(":", 1)[1]
    _, forged, _, _ = await anonymous(gw, gw.room_id, f"{browser}.{'0' * 32}")
    assert forged["user"] != body["user"] and forged["new"] is True


async def test_a_shop_that_does_not_admit_anonymous_viewers_says_sign_in(gw, shops):
    status, body, cookie, _ = await anonymous(gw, "closed-room")
    # closed-room is not one of the gateway's rooms: unknown to it
    assert status == 404, body
    await A.add_shop(gw.gw.auth.accounts, "strict", (gw.room_id,), (ORIGIN,))
    await gw.gw.auth.refresher.refresh()
    status, body, cookie, _ = await anonymous(gw, gw.room_id, shop="strict")
    assert status == 403 and "sign in on the shop's site" in body["message"], body
    assert cookie is None
    # two shops embed the room now: the widget must say which (data-shop)
    status, body, _, _ = await anonymous(gw, gw.room_id)
    assert status == 400 and "data-shop" in body["message"], body
    status, body, _, _ = await anonymous(gw, gw.room_id, shop="acme")
    assert status == 200, body


async def test_anonymous_identities_are_handed_to_the_widget_frame_only(gw, shops):
    status, body, _, _ = await anonymous(gw, gw.room_id, headers={"Origin": ORIGIN})
    assert status == 403, body
    status, body, _, _ = await anonymous(gw, gw.room_id, headers={"Origin": gw.url})
    assert status == 200, body
    async with gw.http.post(f"{gw.url}/api/embed/anonymous", data=json.dumps(
            {"room": gw.room_id}), headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 400  # a cross-site form cannot send application/json


def test_new_anonymous_identities_are_limited_per_address():
    ids = AnonymousIdentities(b"k" * 32, AnonymousLimits(new_per_address_per_hour=3,
                                                        tokens_per_address_per_minute=100))
    shops = {"acme": Shop("acme", ("r",), (), "s", anonymous=True)}
    made = [ids.admit(shops, "r", None, None, "10.0.0.1", now=1000.0) for _ in range(3)]
    with pytest.raises(ProtocolError) as e:
        ids.admit(shops, "r", None, None, "10.0.0.1", now=1001.0)
    assert e.value.code is ErrorCode.RATE_LIMITED
    # a browser that has its cookie is not a new identity; another address has its own count
    assert ids.admit(shops, "r", None, made[0].cookie, "10.0.0.1", now=1002.0).user == made[0].user
    assert ids.admit(shops, "r", None, None, "10.0.0.2", now=1002.0).new
    # the window passes
    assert ids.admit(shops, "r", None, None, "10.0.0.1", now=1000.0 + 3600).new


def test_anonymous_token_requests_are_limited_per_address():
    ids = AnonymousIdentities(b"k" * 32, AnonymousLimits(tokens_per_address_per_minute=2))
    shops = {"acme": Shop("acme", ("r",), (), "s", anonymous=True)}
    first = ids.admit(shops, "r", None, None, "a", now=0.0)
    ids.admit(shops, "r", None, first.cookie, "a", now=1.0)
    with pytest.raises(ProtocolError) as e:
        ids.admit(shops, "r", None, first.cookie, "a", now=2.0)
    assert e.value.code is ErrorCode.RATE_LIMITED
    assert ids.admit(shops, "r", None, first.cookie, "a", now=61.0).user == first.user


async def test_embed_page_frame_ancestors_follow_the_shop(gw, shops):
    async with gw.http.get(f"{gw.url}/embed?room={gw.room_id}") as r:
        assert r.status == 200
        assert r.headers["Content-Security-Policy"].endswith(f"frame-ancestors {ORIGIN}")
        assert "X-Frame-Options" not in r.headers
        page = await r.text()
        assert 'name="livedesk-embed"' in page and ORIGIN in page
    # a new origin for the shop: the header follows at the next refresh
    store = gw.gw.auth.accounts
    acme = next(s for s in await store.shops() if s.id == "acme")
    await store.put_shop(replace(acme, origins=(ORIGIN, "http://localhost:5173")))
    await gw.gw.auth.refresher.refresh()
    async with gw.http.get(f"{gw.url}/embed?room={gw.room_id}") as r:
        assert r.headers["Content-Security-Policy"].endswith(
            f"frame-ancestors {ORIGIN} http://localhost:5173")
    # a room no shop embeds: framed by nobody; an unknown room: 404
    async with gw.http.get(f"{gw.url}/embed?room={gw.room_id}&shop=nobody") as r:
        assert r.headers["Content-Security-Policy"].endswith("frame-ancestors 'none'")
    async with gw.http.get(f"{gw.url}/embed?room=nope") as r:
        assert r.status == 404
    # every other page keeps 'none' and X-Frame-Options
    for path in ("/", "/agent", "/widget.js", "/api/embed/config?room=" + gw.room_id):
        async with gw.http.get(gw.url + path) as r:
            assert r.headers["Content-Security-Policy"].endswith("frame-ancestors 'none'"), path
            assert r.headers["X-Frame-Options"] == "DENY", path


async def test_widget_config_cors_follows_the_shops_origins(gw, shops):
    url = f"{gw.url}/api/embed/config?room={gw.room_id}"
    async with gw.http.get(url, headers={"Origin": ORIGIN}) as r:
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "Origin" in r.headers["Vary"]
        assert await r.json() == {"room": gw.room_id, "shop": "acme", "anonymous": True}
    for foreign in ("https://evil.example", "null", "https://closed.example"):
        async with gw.http.get(url, headers={"Origin": foreign}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers, foreign
    async with gw.http.get(f"{gw.url}/widget.js") as r:
        assert r.status == 200 and r.content_type == "application/javascript"
        assert "postMessage" in await r.text()


async def test_cli_shop_add_anonymous(backends, monkeypatch, tmp_path):
    monkeypatch.delenv("LIVEDESK_DATABASE_URL", raising=False)
    monkeypatch.delenv("LIVEDESK_DATA_DIR", raising=False)
    if backends.kind == "sqlite":
        where = ["--data-dir", str(tmp_path / "cli")]
    else:
        monkeypatch.setenv("LIVEDESK_DATABASE_URL", await backends.url("cli"))
        where = []
    code, out, err = await run_cli(["shop", "add", "--shop", "open", "--room", "r1",
                                    "--origin", ORIGIN, "--anonymous", *where])
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["anonymous"] is True
    code, out, err = await run_cli(["shop", "add", "--shop", "strict", "--room", "r2", *where])
    assert code == 0, err
    code, out, _ = await run_cli(["shop", "rotate-secret", "--shop", "open", *where])
    assert json.loads(out.splitlines()[0])["anonymous"] is True  # kept by a rotation
    code, out, _ = await run_cli(["shop", "list", *where])
    listed = {s["shop"]: s["anonymous"] for s in map(json.loads, out.splitlines())}
    assert listed == {"open": True, "strict": False}
