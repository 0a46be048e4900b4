"""Live sockets and revocation on one node: ``auth`` renews a socket's identity without
dropping it; sign-out closes the sockets of that sign-in (4403, ``revoked``), disabling an
account or changing its roles closes all of its sockets, and none of them can resume."""

from __future__ import annotations

import asyncio
import time

from gateway.auth import admin as A

from .conftest import JSON, add_user, login, socket_token


async def _signed_in(gw, user: str, roles=("agent",)):
    """(cookie, socket token body, socket) for a fresh sign-in of ``user``."""
    _, _, cookie, _ = await login(gw, user)
    status, t = await socket_token(gw, cookie)
    assert status == 200, t
    c = await gw.client()
    w = await c.hello(t["token"])
    assert w["type"] == "welcome", w
    assert (await c.request("ping"))["type"] == "pong"  # live
    return cookie, t, c


async def test_auth_renews_the_socket_identity_without_dropping_it(gw):
    await add_user(gw, "ann")
    cookie, t, c = await _signed_in(gw, "ann")
    await asyncio.sleep(1.1)  # a later token has a later exp
    _, t2 = await socket_token(gw, cookie)
    assert t2["token"] != t["token"]
    r = await c.request("auth", token=t2["token"])
    assert r["type"] == "ack" and r["expires_at"] == t2["expires_at"] > t["expires_at"]
    session = gw.gw.hub.sessions[c.session]
    assert session.claims.exp == t2["expires_at"]
    assert c.closed_code is None and (await c.request("ping"))["type"] == "pong"


async def test_auth_refuses_another_identity_and_a_bad_token_but_keeps_the_socket(gw):
    await add_user(gw, "ann")
    await add_user(gw, "bob")
    _, _, c = await _signed_in(gw, "ann")
    _, _, bob_cookie, _ = await login(gw, "bob")
    _, bob = await socket_token(gw, bob_cookie)
    r = await c.request("auth", token=bob["token"])
    assert r["type"] == "error" and r["code"] == "forbidden", r
    r = await c.request("auth", token="not-a-token")
    assert r["type"] == "error" and r["code"] == "unauthenticated", r
    assert gw.gw.hub.sessions[c.session].user == "ann"
    assert (await c.request("ping"))["type"] == "pong"


async def test_auth_before_hello_is_refused(gw):
    await add_user(gw, "ann")
    _, _, cookie, _ = await login(gw, "ann")
    _, t = await socket_token(gw, cookie)
    c = await gw.client()
    r = await c.request("auth", token=t["token"])
    assert r["type"] == "error" and r["code"] == "unauthenticated"


async def test_sign_out_closes_that_sign_ins_sockets_and_no_other(gw):
    await add_user(gw, "ann")
    cookie, t, c = await _signed_in(gw, "ann")
    other_cookie, _, other = await _signed_in(gw, "ann")  # ann in a second browser
    sid = c.session
    t0 = time.monotonic()
    async with gw.http.post(f"{gw.url}/api/auth/logout", json={},
                            headers={**JSON, "Cookie": f"livedesk_session={cookie}"}) as resp:
        assert resp.status == 200
    assert await c.wait_closed(5) == 4403
    assert time.monotonic() - t0 < 5
    revoked = [f for f in c.frames if f.get("type") == "revoked"]
    assert revoked and revoked[0]["reason"] == "signed out"
    assert sid not in gw.gw.hub.sessions  # ended: nothing to resume
    assert other.closed_code is None and (await other.request("ping"))["type"] == "pong"
    # the old token opens nothing, and the old session cannot be resumed with another one
    again = await gw.client()
    reply = await again.hello(t["token"])
    assert reply["type"] == "error" and reply["code"] == "unauthenticated"
    _, t3 = await socket_token(gw, other_cookie)
    c3 = await gw.client()
    assert (await c3.hello(t3["token"]))["type"] == "welcome"
    r = await c3.request("resume", session=sid, last_seq=1)
    assert r["type"] == "error" and r["code"] == "resume_failed"


async def test_disabling_through_the_store_closes_every_socket_of_the_account(gw):
    await add_user(gw, "ann")
    _, _, c1 = await _signed_in(gw, "ann")
    _, _, c2 = await _signed_in(gw, "ann")
    bystander = await gw.client("agent", "zed")
    await A.disable_user(gw.gw.auth.accounts, "ann")  # the CLI: this node learns at refresh
    assert await c1.wait_closed(5) == 4403
    assert await c2.wait_closed(5) == 4403
    reasons = {f["reason"] for f in c1.frames if f.get("type") == "revoked"}
    assert reasons == {"account changed"}
    assert (await bystander.request("ping"))["type"] == "pong"


async def test_changing_roles_through_the_admin_api_closes_sockets_at_once(gw):
    await add_user(gw, "ann")
    await add_user(gw, "root", roles=("admin",))
    _, _, c = await _signed_in(gw, "ann")
    _, _, root_cookie, _ = await login(gw, "root")
    _, admin = await socket_token(gw, root_cookie)
    t0 = time.monotonic()
    async with gw.http.patch(f"{gw.url}/api/admin/users/ann", json={"roles": ["supervisor"]},
                             headers={"Authorization": f"Bearer {admin['token']}"}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["roles"] == ["supervisor"]
    assert await c.wait_closed(5) == 4403
    assert time.monotonic() - t0 < 1.0  # the changing node does not wait for its refresh


async def test_a_change_committed_between_the_refreshs_reads_is_not_taken_for_a_sign_out(gw):
    """The refresher reads revoked sessions and epochs in two queries; an account change
    (one transaction: epoch moved on, sessions revoked) committed between them must close
    the account's sockets as "account changed", not as "signed out" (seen once in CI: the
    reads were epochs first)."""
    await add_user(gw, "ann")
    await _signed_in(gw, "ann")  # a sign-in: a session the change revokes
    refresher, store = gw.gw.auth.refresher, gw.gw.auth.accounts
    reasons: list[str] = []
    state = refresher.state
    publish = state.publish_revoked

    def recording(user, reason, session=None):
        if user == "ann":
            reasons.append(reason)
        publish(user, reason, session)

    state.publish_revoked = recording
    committed = False

    def between(read):
        async def wrapped(*a, **k):
            nonlocal committed
            out = await read(*a, **k)
            if not committed:  # the change lands right after the first of the two reads
                committed = True
                await A.disable_user(store, "ann")
            return out
        return wrapped

    store.epochs = between(store.epochs)
    store.revoked_sessions = between(store.revoked_sessions)
    try:
        await refresher.refresh()
        await refresher.refresh()  # the next one sees everything
    finally:
        del store.epochs, store.revoked_sessions
        state.publish_revoked = publish
    assert committed
    # the first event is what closes the sockets (a later "signed out" for the same, already
    # revoked sign-in, when the next refresh notes it, finds them closed)
    assert reasons and reasons[0] == "account changed", reasons
