"""The admin page's REST endpoints: ``/api/admin/users`` (list, add) and
``/api/admin/users/{user}`` (disable, enable, roles, password), admins only, every bad body
a typed 4xx; and the 429 body of a locked sign-in (``retry_after``)."""

from __future__ import annotations

import pytest

from .conftest import PASSWORD, add_user, login


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def call(gw, method: str, path: str, token: str, body=None):
    async with gw.http.request(method, gw.url + path, json=body, headers=bearer(token)) as r:
        return r.status, await r.json()


async def test_add_list_disable_enable_role_and_password(gw):
    admin = gw.token("admin", "root")
    status, a = await call(gw, "POST", "/api/admin/users", admin, {
        "user": "cat", "roles": ["agent"], "password": PASSWORD, "name": "Cat",
        "rooms": [gw.room_id], "capacity": 3, "skills": ["returns"]})
    assert status == 201, a
    assert (a["user"], a["roles"], a["rooms"], a["capacity"], a["disabled"]) == \
        ("cat", ["agent"], [gw.room_id], 3, False)
    assert "password" not in a and "password_hash" not in a
    assert (await login(gw, "cat"))[0] == 200
    status, listed = await call(gw, "GET", "/api/admin/users", admin)
    assert [u["user"] for u in listed["users"]] == ["cat"]

    status, a = await call(gw, "PATCH", "/api/admin/users/cat", admin, {"disabled": True})
    assert status == 200 and a["disabled"] is True
    assert (await login(gw, "cat"))[0] == 401
    status, a = await call(gw, "PATCH", "/api/admin/users/cat", admin, {"disabled": False})
    assert status == 200 and a["disabled"] is False
    assert (await login(gw, "cat"))[0] == 200

    status, a = await call(gw, "PATCH", "/api/admin/users/cat", admin,
                           {"roles": ["agent", "supervisor"]})
    assert status == 200 and a["roles"] == ["agent", "supervisor"]

    for _ in range(5):
        await login(gw, "cat", "not the password")
    status, listed = await call(gw, "GET", "/api/admin/users", admin)
    assert listed["users"][0]["locked"] is True
    status, a = await call(gw, "PATCH", "/api/admin/users/cat", admin,
                           {"password": "a brand new password"})
    assert status == 200 and a["locked"] is False  # a new password lifts the lockout
    assert (await login(gw, "cat", "a brand new password"))[0] == 200
    assert (await login(gw, "cat"))[0] == 401


@pytest.mark.parametrize("body,code,status", [
    ({"roles": ["agent"], "password": PASSWORD}, "bad_request", 400),  # no user
    ({"user": "x y", "roles": ["agent"], "password": PASSWORD}, "bad_request", 400),
    ({"user": "dan", "roles": ["boss"], "password": PASSWORD}, "bad_request", 400),
    ({"user": "dan", "roles": ["agent"], "password": "short"}, "bad_request", 400),
    ({"user": "dan", "roles": ["host"], "password": PASSWORD}, "bad_request", 400),  # no room
    ({"user": "dan", "roles": "agent", "password": PASSWORD}, "bad_request", 400),
    ({"user": "dan", "roles": ["agent"], "password": PASSWORD, "capacity": "3"},
     "bad_request", 400),
    ({"user": "dan", "roles": ["agent"], "password": PASSWORD, "rooms": ["r"] * 33},
     "bad_request", 400),
    ({"user": "dan", "roles": ["agent"], "password": PASSWORD, "admin": True},
     "bad_request", 400),
    ({"user": "ann", "roles": ["agent"], "password": PASSWORD}, "conflict", 409),
])
async def test_bad_new_accounts_are_typed_errors(gw, body, code, status):
    await add_user(gw, "ann")
    got, err = await call(gw, "POST", "/api/admin/users", gw.token("admin", "root"), body)
    assert (got, err["error"]) == (status, code), err
    assert err["message"]
    assert [a.id for a in await gw.gw.auth.accounts.accounts()] == ["ann"]  # nothing added


@pytest.mark.parametrize("body", [{}, {"disabled": "yes"}, {"roles": []}, {"roles": ["x"]},
                                  {"password": "short"}, {"epoch": 3}, {"roles": ["host"]}])
async def test_bad_changes_are_typed_errors_and_change_nothing(gw, body):
    before = await add_user(gw, "ann")
    got, err = await call(gw, "PATCH", "/api/admin/users/ann", gw.token("admin", "root"), body)
    assert got == 400 and err["error"] == "bad_request", err
    after = await gw.gw.auth.accounts.account("ann")
    assert after == before


async def test_unknown_user_self_lockout_and_non_admins(gw):
    await add_user(gw, "ann")
    await add_user(gw, "root", roles=("admin",))
    admin = gw.token("admin", "root")
    got, err = await call(gw, "PATCH", "/api/admin/users/nobody", admin, {"disabled": True})
    assert (got, err["error"]) == (404, "not_found")
    got, err = await call(gw, "PATCH", "/api/admin/users/root", admin, {"disabled": True})
    assert (got, err["error"]) == (409, "conflict")
    got, err = await call(gw, "PATCH", "/api/admin/users/root", admin, {"roles": ["agent"]})
    assert (got, err["error"]) == (409, "conflict")
    for role in ("agent", "supervisor", "host", "viewer", "service"):
        tok = gw.token(role, "mallory", room=gw.room_id if role in ("viewer", "host") else None)
        got, err = await call(gw, "PATCH", "/api/admin/users/ann", tok, {"disabled": True})
        assert (got, err["error"]) == (403, "forbidden"), role
        got, err = await call(gw, "POST", "/api/admin/users", tok,
                              {"user": "eve", "roles": ["admin"], "password": PASSWORD})
        assert (got, err["error"]) == (403, "forbidden"), role
    assert not (await gw.gw.auth.accounts.account("ann")).disabled


async def test_a_locked_sign_in_says_how_long(gw):
    await add_user(gw, "ann")
    for _ in range(5):
        assert (await login(gw, "ann", "not the password"))[0] == 401
    status, body, cookie, resp = await login(gw, "ann")
    assert status == 429 and body["error"] == "rate_limited" and cookie is None
    assert 0 < body["retry_after"] <= 60  # the fixture's login_lockout_s
    assert resp.headers["Retry-After"] == str(body["retry_after"])
