"""Sign-in, socket tokens, sign-out and revocation over the real REST API and sockets."""

from __future__ import annotations

import asyncio
import secrets
import time

import jwt
import pytest

from gateway.auth import admin as A
from gateway.auth.events import AccountRevoked
from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

from .conftest import JSON, PASSWORD, add_user, hello, login, socket_token


async def test_login_sets_a_session_cookie_and_the_token_opens_a_socket(gw):
    await add_user(gw, "ann", roles=("agent",))
    status, body, cookie, resp = await login(gw, "ann")
    assert status == 200 and body["user"] == "ann" and body["roles"] == ["agent"]
    head = resp.headers["Set-Cookie"]
    assert "HttpOnly" in head and "SameSite=Lax" in head and "Path=/" in head
    assert "Secure" not in head  # plain http on loopback
    # only the hash of the session id is stored
    rows = await gw.gw.auth.accounts.db.fetch("SELECT id_hash FROM auth_sessions")
    assert len(rows) == 1 and cookie not in rows[0][0]
    status, t = await socket_token(gw, cookie)
    assert status == 200 and t["role"] == "agent"
    assert time.time() < t["expires_at"] <= time.time() + 600
    head = jwt.get_unverified_header(t["token"])
    assert head["alg"] == "EdDSA" and head["kid"] == gw.gw.auth.state.signer().kid
    w = await hello(gw, t["token"])
    assert w["type"] == "welcome" and (w["user"], w["role"]) == ("ann", "agent")


async def test_a_token_for_one_of_the_accounts_roles_and_rooms(gw):
    await add_user(gw, "hal", roles=("host", "agent"), rooms=(gw.room_id,))
    _, _, cookie, _ = await login(gw, "hal")
    status, t = await socket_token(gw, cookie, role="host")
    assert status == 200
    w = await hello(gw, t["token"])
    assert (w["role"], w["room"]) == ("host", gw.room_id)
    assert (await socket_token(gw, cookie, role="admin"))[0] == 403
    assert (await socket_token(gw, cookie, role="host", room="elsewhere"))[0] == 403


async def test_wrong_password_and_unknown_user_look_the_same(gw):
    await add_user(gw, "ann")
    a = await login(gw, "ann", "wrong password!")
    b = await login(gw, "nobody", "wrong password!")
    assert a[0] == b[0] == 401
    assert a[1] == b[1] == {"error": "unauthenticated", "message": "wrong user or password"}
    assert a[2] is None and b[2] is None


async def test_five_wrong_passwords_lock_the_account(gw):
    await add_user(gw, "ann")
    await add_user(gw, "root", roles=("admin",))
    for _ in range(5):
        assert (await login(gw, "ann", "not the password"))[0] == 401
    status, body, cookie, _ = await login(gw, "ann")  # even the right one, while locked
    assert status == 429 and body["error"] == "rate_limited" and cookie is None
    # visible to admins (the later admin page)
    admin = gw.token("admin", "root")
    async with gw.http.get(f"{gw.url}/api/admin/users",
                           headers={"Authorization": f"Bearer {admin}"}) as resp:
        users = {u["user"]: u for u in (await resp.json())["users"]}
    assert users["ann"]["locked"] and users["ann"]["failed_logins"] == 5
    assert users["ann"]["locked_until"] > time.time()
    assert not users["root"]["locked"]
    assert "password_hash" not in users["ann"]
    # a new password lifts the lockout
    await A.reset_password(gw.gw.auth.accounts, "ann", "another long password")
    assert (await login(gw, "ann", "another long password"))[0] == 200


async def test_one_address_is_throttled_across_accounts(tmp_path):
    config = Config(dev=True, port=free_port(), data_dir=tmp_path, auth_refresh_s=0.2,
                    login_max_failures_per_address=3)
    gw = await start_gateway(config)
    try:
        await add_user(gw, "ann")
        for user in ("u1", "u2", "u3"):
            assert (await login(gw, user, "guess guess guess"))[0] == 401
        status, body, _, _ = await login(gw, "ann")
        assert status == 429 and body["error"] == "rate_limited"
    finally:
        await stop_gateway(gw)


async def test_logout_refuses_the_session_and_its_tokens(gw):
    await add_user(gw, "ann")
    _, _, cookie, _ = await login(gw, "ann")
    _, t = await socket_token(gw, cookie)
    async with gw.http.post(f"{gw.url}/api/auth/logout", json={},
                            headers={**JSON, "Cookie": f"livedesk_session={cookie}"}) as resp:
        assert resp.status == 200 and (await resp.json())["signed_out"] is True
        assert "livedesk_session=" in resp.headers["Set-Cookie"]
    status, body = await socket_token(gw, cookie)
    assert status == 401 and body["error"] == "unauthenticated"
    reply = await hello(gw, t["token"])
    assert reply["type"] == "error" and "signed out" in reply["message"]


async def test_disabling_an_account_refuses_its_tokens_and_sign_in(gw):
    revoked: list[AccountRevoked] = []
    gw.gw.events.subscribe(AccountRevoked, revoked.append)
    await add_user(gw, "ann")
    _, _, cookie, _ = await login(gw, "ann")
    _, t = await socket_token(gw, cookie)
    assert (await hello(gw, t["token"]))["type"] == "welcome"
    await A.disable_user(gw.gw.auth.accounts, "ann")  # as the CLI does: through the store
    await asyncio.sleep(0.6)  # the node's refresh (auth_refresh_s = 0.2)
    assert [e.user for e in revoked] == ["ann"]
    reply = await hello(gw, t["token"])
    assert reply["type"] == "error" and "disabled" in reply["message"]
    assert (await socket_token(gw, cookie))[0] == 401
    assert (await login(gw, "ann"))[0] == 401


async def test_changing_roles_refuses_earlier_tokens(gw):
    await add_user(gw, "ann", roles=("admin",))
    _, _, cookie, _ = await login(gw, "ann")
    _, t = await socket_token(gw, cookie)
    async with gw.http.get(f"{gw.url}/api/dashboard",
                           headers={"Authorization": f"Bearer {t['token']}"}) as resp:
        assert resp.status == 200
    await A.set_roles(gw.gw.auth.accounts, "ann", ("agent",))
    await asyncio.sleep(0.6)
    async with gw.http.get(f"{gw.url}/api/dashboard",
                           headers={"Authorization": f"Bearer {t['token']}"}) as resp:
        assert resp.status == 401 and "changed" in (await resp.json())["message"]


async def test_cookie_endpoints_need_a_json_body_type(gw):
    """CSRF: a cross-site form posts text/plain or form data; those are refused."""
    await add_user(gw, "ann")
    async with gw.http.post(f"{gw.url}/api/auth/login",
                            data={"user": "ann", "password": PASSWORD}) as resp:
        assert resp.status == 400
    _, _, cookie, _ = await login(gw, "ann")
    async with gw.http.post(f"{gw.url}/api/auth/token", data="{}",
                            headers={"Content-Type": "text/plain",
                                     "Cookie": f"livedesk_session={cookie}"}) as resp:
        assert resp.status == 400
    async with gw.http.post(f"{gw.url}/api/auth/logout", data="",
                            headers={"Cookie": f"livedesk_session={cookie}"}) as resp:
        assert resp.status == 400
    assert (await socket_token(gw, cookie))[0] == 200  # still signed in


async def test_no_token_is_taken_from_a_url(gw):
    """Tokens travel in hello and Authorization only: a query string never authenticates."""
    admin = gw.token("admin", "root")
    async with gw.http.get(f"{gw.url}/api/dashboard?token={admin}") as resp:
        assert resp.status == 401
    async with gw.http.get(f"{gw.url}/api/admin/users?access_token={admin}") as resp:
        assert resp.status == 401


async def test_jwks_publishes_the_public_keys(gw):
    async with gw.http.get(f"{gw.url}/.well-known/jwks.json") as resp:
        assert resp.status == 200
        keys = (await resp.json())["keys"]
    assert len(keys) == 1
    k = keys[0]
    assert set(k) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (k["kty"], k["crv"], k["alg"], k["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert k["kid"] == gw.gw.auth.state.signer().kid
    # a token the gateway mints verifies with the published key alone
    await add_user(gw, "ann")
    _, _, cookie, _ = await login(gw, "ann")
    _, t = await socket_token(gw, cookie)
    pub = jwt.PyJWK(k).key
    assert jwt.decode(t["token"], pub, algorithms=["EdDSA"])["sub"] == "ann"


async def test_key_rotation_overlap_then_refusal(gw):
    await add_user(gw, "ann")
    _, _, cookie, _ = await login(gw, "ann")
    _, old = await socket_token(gw, cookie)
    old_kid = jwt.get_unverified_header(old["token"])["kid"]
    report = await A.rotate_keys(gw.gw.auth.accounts, overlap_s=1.5)
    assert report["retired"] == [old_kid]
    await asyncio.sleep(0.6)  # the server picks the new key up by itself
    _, new = await socket_token(gw, cookie)
    assert jwt.get_unverified_header(new["token"])["kid"] == report["signer"] != old_kid
    async with gw.http.get(f"{gw.url}/.well-known/jwks.json") as resp:
        assert {k["kid"] for k in (await resp.json())["keys"]} == {old_kid, report["signer"]}
    assert (await hello(gw, old["token"]))["type"] == "welcome"  # during the overlap
    await asyncio.sleep(1.2)
    reply = await hello(gw, old["token"])
    assert reply["type"] == "error" and reply["code"] == "unauthenticated"
    assert (await hello(gw, new["token"]))["type"] == "welcome"
    async with gw.http.get(f"{gw.url}/.well-known/jwks.json") as resp:
        assert [k["kid"] for k in (await resp.json())["keys"]] == [report["signer"]]


async def test_without_dev_and_behind_https_the_cookie_is_secure(tmp_path):
    port = free_port()
    config = Config(port=port, secret=secrets.token_hex(32), data_dir=tmp_path,
                    public_url=f"https://127.0.0.1:{port}")
    gw = await start_gateway(config)
    try:
        await add_user(gw, "ann")
        status, _, _, resp = await login(gw, "ann")
        assert status == 200 and "Secure" in resp.headers["Set-Cookie"]
        async with gw.http.get(f"{gw.url}/api/dev/token") as r:
            assert r.status == 404  # no demo identities without --dev
    finally:
        await stop_gateway(gw)


async def test_without_a_store_there_is_no_sign_in_but_keys_exist(tmp_path):
    gw = await start_gateway()  # memory only
    try:
        async with gw.http.post(f"{gw.url}/api/auth/login",
                                json={"user": "ann", "password": PASSWORD}) as resp:
            assert resp.status == 503 and (await resp.json())["error"] == "unavailable"
        async with gw.http.get(f"{gw.url}/.well-known/jwks.json") as resp:
            assert len((await resp.json())["keys"]) == 1
    finally:
        await stop_gateway(gw)


@pytest.mark.parametrize("body", [{"user": "ann"}, {"user": "", "password": "x"},
                                  {"user": "a" * 200, "password": "x"},
                                  {"user": "ann", "password": 5}])
async def test_bad_login_bodies_are_typed_errors(gw, body):
    async with gw.http.post(f"{gw.url}/api/auth/login", json=body) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "bad_request"


async def test_password_checks_run_off_the_event_loop(gw, monkeypatch):
    """Argon2 takes tens of milliseconds of CPU: it must run in a thread, not on the loop."""
    import threading

    from gateway.auth import passwords

    threads: list[int] = []
    real = passwords._verify

    def spy(stored, password):
        threads.append(threading.get_ident())
        return real(stored, password)

    monkeypatch.setattr(passwords, "_verify", spy)
    await add_user(gw, "ann")
    assert (await login(gw, "ann"))[0] == 200
    assert (await login(gw, "nobody", "whatever you say"))[0] == 401
    assert len(threads) == 2 and threading.get_ident() not in threads
