"""Issue 17, "Refused": a shop vouches only for viewers in its own rooms. Each refusal is
checked over a real socket: ``hello`` → ``error`` and close 4401, nothing else."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth import admin as A
from signaling.errors import ProtocolError

from .conftest import add_user, login, socket_token


@pytest.fixture
async def shops(gw):
    store = gw.gw.auth.accounts
    room = gw.room_id
    acme = await A.add_shop(store, "acme", (room,), ("https://acme.example",))
    other = await A.add_shop(store, "other", ("other-room",), ())
    await gw.gw.auth.refresher.refresh()
    return acme, other


def shop_token(shop, sub="alice", room=None, exp_in=600, secret=None, kid=None, **extra):
    claims = {"sub": sub, "exp": int(time.time()) + exp_in, **extra}
    if room is not None:
        claims["room"] = room
    return jwt.encode(claims, secret or shop.secret, algorithm="HS256",
                      headers={"kid": kid or shop.id})


async def refused(gw, token: str) -> str:
    c = await gw.client()
    reply = await c.hello(token)
    assert reply["type"] == "error" and reply["code"] in ("unauthenticated", "forbidden"), reply
    assert await c.wait_closed() == 4401
    return reply["message"]


async def test_a_shop_vouches_for_a_viewer_in_its_room(gw, shops):
    acme, _ = shops
    c = await gw.client()
    w = await c.hello(shop_token(acme, room=gw.room_id, name="Alice"))
    assert w["type"] == "welcome", w
    assert (w["role"], w["user"], w["room"], w["name"]) == ("viewer", "acme:alice",
                                                            gw.room_id, "Alice")


async def test_two_shops_cannot_name_the_same_viewer(gw, shops):
    acme, _ = shops
    both = await A.add_shop(gw.gw.auth.accounts, "beta", (gw.room_id,), ())
    await gw.gw.auth.refresher.refresh()
    a = gw.gw.tokens.verify(shop_token(acme, sub="alice", room=gw.room_id))
    b = gw.gw.tokens.verify(shop_token(both, sub="alice", room=gw.room_id))
    assert a.user == "acme:alice" and b.user == "beta:alice" and a.user != b.user


@pytest.mark.parametrize("role", ["agent", "host", "supervisor", "admin", "service"])
async def test_a_shop_token_can_never_be_staff_or_service(gw, shops, role):
    acme, _ = shops
    msg = await refused(gw, shop_token(acme, room=gw.room_id, role=role))
    assert "viewer" in msg


async def test_a_shop_token_for_another_shops_room_is_refused(gw, shops):
    acme, other = shops
    assert "not one of shop 'acme'" in await refused(gw, shop_token(acme, room="other-room"))
    # and the other shop cannot reach acme's room either
    assert "not one of shop 'other'" in await refused(gw, shop_token(other, room=gw.room_id))


async def test_a_shop_token_without_a_room_is_refused(gw, shops):
    acme, _ = shops
    assert "room" in await refused(gw, shop_token(acme))


async def test_expired_shop_identity_is_refused(gw, shops):
    acme, _ = shops
    assert "expired" in await refused(gw, shop_token(acme, room=gw.room_id, exp_in=-60))


async def test_forged_shop_identity_is_refused(gw, shops):
    acme, other = shops
    # signed with another shop's secret, or any secret, under acme's kid
    await refused(gw, shop_token(acme, room=gw.room_id, secret=other.secret))
    await refused(gw, shop_token(acme, room=gw.room_id, secret="x" * 43))
    # payload changed after signing
    good = shop_token(acme, room=gw.room_id)
    h, p, s = good.split(".")
    evil = shop_token(acme, room=gw.room_id, sub="bob").split(".")[1]
    await refused(gw, f"{h}.{evil}.{s}")


async def test_unknown_key_identity_is_refused(gw, shops):
    acme, _ = shops
    assert "unknown key" in await refused(gw, shop_token(acme, room=gw.room_id,
                                                         kid="no-such-shop"))


async def test_a_shop_secret_cannot_sign_with_another_algorithm(gw, shops):
    """``alg`` is the key's, never the token's: EdDSA under a shop's kid finds no key."""
    acme, _ = shops
    claims = {"sub": "alice", "room": gw.room_id, "exp": int(time.time()) + 600}
    token = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                       headers={"kid": acme.id})
    assert "unknown key" in await refused(gw, token)
    none = jwt.encode(claims, None, algorithm="none", headers={"kid": acme.id})
    await refused(gw, none)


async def test_a_rotated_shop_secret_refuses_the_old_one(gw, shops):
    acme, _ = shops
    old = shop_token(acme, room=gw.room_id)
    new = await A.rotate_shop_secret(gw.gw.auth.accounts, "acme")
    await gw.gw.auth.refresher.refresh()
    await refused(gw, old)
    assert gw.gw.tokens.verify(shop_token(new, room=gw.room_id)).user == "acme:alice"


async def test_the_gateway_key_mints_no_viewer_and_no_service(gw):
    """A token signed with the gateway's own key for a non-staff role is refused: the
    gateway mints staff tokens only (after sign-in)."""
    key = gw.gw.auth.state.signer()
    for role in ("viewer", "service"):
        token = jwt.encode({"sub": "x", "role": role, "exp": int(time.time()) + 60, "ep": 1,
                            "sid": "s"}, key.private, algorithm="EdDSA",
                           headers={"kid": key.kid})
        with pytest.raises(ProtocolError) as e:
            gw.gw.tokens.verify(token)
        assert e.value.code.value == "forbidden"


async def test_public_key_as_hmac_secret_is_refused(gw):
    """Algorithm confusion: an HS256 token "signed" with the published public key under the
    gateway's kid finds no HS256 key of that id."""
    await add_user(gw, "ann")
    _, _, cookie, _ = await login(gw, "ann")
    assert (await socket_token(gw, cookie))[0] == 200
    jwk = gw.gw.auth.state.jwks()["keys"][0]
    token = jwt.encode({"sub": "ann", "role": "admin", "exp": int(time.time()) + 60},
                       jwk["x"], algorithm="HS256", headers={"kid": jwk["kid"]})
    await refused(gw, token)
