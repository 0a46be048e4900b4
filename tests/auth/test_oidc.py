"""Single sign-on end to end against a real OpenID Connect provider on loopback
(tests/auth/oidc_provider.py: authlib's authorization server, PKCE and nonce required, RS256
ID tokens). The browser is played by an HTTP client that follows the redirects by hand.

Refused, each with a test: a tampered ID token, a wrong PKCE code_verifier (at the provider,
and through the gateway), a code without PKCE, a state or nonce that is not this sign-in's,
a user without a mapped group, a disabled account, an unknown one when accounts are not
created on first sign-in."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from gateway.auth import admin as A
from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

from .conftest import JSON, PASSWORD
from .oidc_provider import Provider

ROLE_MAP = {"support-agents": "agent", "support-leads": "supervisor",
            "livedesk-admins": "admin"}


@pytest.fixture
async def idp():
    p = await Provider(free_port()).start()
    try:
        yield p
    finally:
        await p.stop()


async def _gateway(tmp_path, idp: Provider, refresh_s: float = 0.2, **kw):
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    secret = idp.add_client("livedesk", public + "/auth/oidc/callback")
    config = Config(port=port, secret=secrets.token_hex(32), data_dir=tmp_path / "store",
                    public_url=public, oidc_issuer=idp.issuer, oidc_client_id="livedesk",
                    oidc_client_secret=secret, oidc_role_map=dict(ROLE_MAP),
                    auth_refresh_s=refresh_s, **kw)
    return await start_gateway(config)


@pytest.fixture
async def gw(tmp_path, idp):
    r = await _gateway(tmp_path, idp)
    try:
        yield r
    finally:
        await stop_gateway(r)


class Browser:
    """Cookies and hand-followed redirects, like a browser (loopback only)."""

    def __init__(self) -> None:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, url: str) -> tuple[int, str]:
        async with self.http.get(url, allow_redirects=False) as r:
            return r.status, r.headers.get("Location", "")

    def cookie(self, name: str) -> str | None:
        for c in self.http.cookie_jar:
            if c.key == name:
                return c.value
        return None

    async def close(self) -> None:
        await self.http.close()


async def sso(gw, idp: Provider, user: str | None, browser: Browser | None = None,
              next_path: str = "/agent", before_callback=None) -> tuple[Browser, str]:
    """start → provider → callback; the final Location (and the browser, for its cookies)."""
    b = browser or Browser()
    idp.next_user = user
    status, to_idp = await b.get(f"{gw.url}/auth/oidc/start?next={next_path}")
    assert status == 302 and to_idp.startswith(idp.issuer + "/authorize?"), (status, to_idp)
    status, back = await b.get(to_idp)
    assert status == 302 and back.startswith(gw.url + "/auth/oidc/callback?"), (status, back)
    if before_callback is not None:
        await before_callback(b, back)
    status, final = await b.get(back)
    assert status == 302, status
    return b, final


async def token_for(gw, b: Browser) -> tuple[int, dict]:
    async with b.http.post(f"{gw.url}/api/auth/token", json={}, headers=JSON) as r:
        return r.status, await r.json()


async def test_sso_creates_the_account_with_mapped_roles_and_signs_in(gw, idp):
    idp.add_user("alice@example.test", "Alice", groups=("support-agents", "unrelated"))
    b, final = await sso(gw, idp, "alice@example.test", next_path="/agent?x=1")
    try:
        assert final == "/agent?x=1"
        assert b.cookie("livedesk_session") and not b.cookie("livedesk_oidc")
        a = await gw.gw.auth.accounts.account("alice@example.test")
        assert (a.roles, a.name) == (("agent",), "Alice")
        assert a.password_hash == "!sso"  # not a hash: no password ever matches
        status, t = await token_for(gw, b)
        assert status == 200 and t["role"] == "agent"
        c = await gw.client()
        w = await c.hello(t["token"])
        assert (w["type"], w["user"], w["role"]) == ("welcome", "alice@example.test", "agent")
        # the provider did check PKCE: a token request carried the verifier and passed
        assert idp.token_requests == [{"status": 200, "error": None}]
    finally:
        await b.close()
    # no password sign-in for an account made by single sign-on
    async with gw.http.post(f"{gw.url}/api/auth/login",
                            json={"user": "alice@example.test", "password": "!sso"}) as r:
        assert r.status == 401


async def test_roles_follow_the_providers_groups_at_each_sign_in(tmp_path, idp):
    gw = await _gateway(tmp_path, idp, refresh_s=1.5)  # a refresh as slow as a real one
    try:
        await _roles_follow_groups(gw, idp)
    finally:
        await stop_gateway(gw)


async def _roles_follow_groups(gw, idp):
    idp.add_user("lee@example.test", "Lee", groups=("support-agents",))
    b, _ = await sso(gw, idp, "lee@example.test")
    _, t = await token_for(gw, b)
    old_socket = await gw.client()
    assert (await old_socket.hello(t["token"]))["role"] == "agent"
    await b.close()
    idp.users["lee@example.test"].groups = ("support-leads", "livedesk-admins")
    b, final = await sso(gw, idp, "lee@example.test", next_path="")
    try:
        assert final == "/admin"  # no next: the page of the first role
        a = await gw.gw.auth.accounts.account("lee@example.test")
        assert a.roles == ("supervisor", "admin")
        assert await old_socket.wait_closed(5) == 4403  # the old role's socket ends
        reasons = [f["reason"] for f in old_socket.frames if f.get("type") == "revoked"]
        assert reasons == ["account changed"]  # at once, by the change (not a later refresh)
        status, t = await token_for(gw, b)
        assert status == 200 and t["role"] == "supervisor"
        new_socket = await gw.client()
        assert (await new_socket.hello(t["token"]))["type"] == "welcome"
        await asyncio.sleep(2.0)  # past the node's next refresh: not closed by it
        assert (await new_socket.request("ping"))["type"] == "pong"
    finally:
        await b.close()


async def test_a_tampered_id_token_is_refused(gw, idp):
    idp.add_user("mal@example.test", "Mal", groups=("support-agents",))
    idp.tamper_next_id_token = True  # groups → livedesk-admins, signature kept
    b, final = await sso(gw, idp, "mal@example.test")
    try:
        assert final.startswith("/login?") and "reason=sso_failed" in final
        assert "refused" in parse_qs(urlsplit(final).query)["detail"][0]
        assert b.cookie("livedesk_session") is None
        assert await gw.gw.auth.accounts.account("mal@example.test") is None
        assert (await token_for(gw, b))[0] == 401
    finally:
        await b.close()


async def test_a_wrong_pkce_verifier_is_refused_by_the_provider(idp):
    """The provider itself (what the gateway relies on): a code is redeemed only with the
    verifier whose S256 hash was the challenge."""
    idp.add_client("c1", "http://127.0.0.1:9/cb")
    secret = idp.clients["c1"].client_secret
    idp.add_user("bob", groups=("support-agents",))
    idp.next_user = "bob"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    b = Browser()
    try:
        status, loc = await b.get(idp.authorize_url(
            response_type="code", client_id="c1", redirect_uri="http://127.0.0.1:9/cb",
            scope="openid", state="s1", nonce="n1", code_challenge=challenge,
            code_challenge_method="S256"))
        assert status == 302
        code = parse_qs(urlsplit(loc).query)["code"][0]

        async def redeem(v: str) -> tuple[int, dict]:
            async with b.http.post(f"{idp.issuer}/token", data={
                    "grant_type": "authorization_code", "code": code,
                    "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": v,
                    "client_id": "c1", "client_secret": secret}) as r:  # client_secret_post
                return r.status, await r.json()

        status, body = await redeem(secrets.token_urlsafe(48))
        assert status == 400 and body["error"] == "invalid_grant", body
        status, body = await redeem(verifier)  # the right one still works (code unspent)
        assert status == 200 and body["id_token"].count(".") == 2
        status, body = await redeem(verifier)  # once
        assert status == 400 and body["error"] == "invalid_grant"
        # no challenge at all: refused at the authorization endpoint
        status, _ = await b.get(idp.authorize_url(
            response_type="code", client_id="c1", redirect_uri="http://127.0.0.1:9/cb",
            scope="openid", state="s2", nonce="n2"))
        assert status == 400
    finally:
        await b.close()


def _reseal(gw, b: Browser, **change) -> None:
    """The state cookie with some of its fields changed, validly signed (as only the gateway
    could): isolates the provider's and the ID token's own checks."""
    oidc = gw.gw.auth.oidc
    st = oidc._open(b.cookie("livedesk_oidc"))
    st.update(change)
    b.http.cookie_jar.update_cookies({"livedesk_oidc": oidc._seal(st)},
                                     aiohttp.client.URL(gw.url + "/auth/oidc/"))


async def test_a_wrong_verifier_through_the_gateway_is_refused(gw, idp):
    idp.add_user("eve@example.test", groups=("support-agents",))

    async def wrong_verifier(b, back):
        _reseal(gw, b, verifier=secrets.token_urlsafe(48))

    b, final = await sso(gw, idp, "eve@example.test", before_callback=wrong_verifier)
    try:
        assert "reason=sso_failed" in final and "invalid_grant" in final
        assert idp.token_requests[-1] == {"status": 400, "error": "invalid_grant"}
        assert b.cookie("livedesk_session") is None
        assert await gw.gw.auth.accounts.account("eve@example.test") is None
    finally:
        await b.close()


async def test_another_sign_ins_nonce_or_state_is_refused(gw, idp):
    idp.add_user("eve@example.test", groups=("support-agents",))

    async def other_nonce(b, back):
        _reseal(gw, b, nonce="not-the-nonce")

    b, final = await sso(gw, idp, "eve@example.test", before_callback=other_nonce)
    assert "reason=sso_failed" in final and b.cookie("livedesk_session") is None
    await b.close()

    async def other_state(b, back):
        _reseal(gw, b, state="not-the-state")

    b, final = await sso(gw, idp, "eve@example.test", before_callback=other_state)
    assert "reason=sso_failed" in final and b.cookie("livedesk_session") is None
    await b.close()

    async def forged_cookie(b, back):
        raw = b.cookie("livedesk_oidc")
        data, mac = raw.rsplit(".", 1)
        st = json.loads(base64.urlsafe_b64decode(data))
        st["next"] = "/admin"
        forged = base64.urlsafe_b64encode(json.dumps(st).encode()).decode() + "." + mac
        b.http.cookie_jar.update_cookies({"livedesk_oidc": forged},
                                         aiohttp.client.URL(gw.url + "/auth/oidc/"))

    b, final = await sso(gw, idp, "eve@example.test", before_callback=forged_cookie)
    assert "reason=sso_failed" in final and "altered" in final
    await b.close()
    assert await gw.gw.auth.accounts.account("eve@example.test") is None


async def test_no_mapped_group_or_a_disabled_account_is_refused(gw, idp):
    idp.add_user("zed@example.test", groups=("marketing",))
    b, final = await sso(gw, idp, "zed@example.test")
    assert "reason=sso_failed" in final and b.cookie("livedesk_session") is None
    await b.close()
    await A.add_user(gw.gw.auth.accounts, A.NewAccount(user="ann@example.test",
                                                       roles=("agent",), password=PASSWORD))
    await A.disable_user(gw.gw.auth.accounts, "ann@example.test")
    idp.add_user("ann@example.test", groups=("support-agents",))
    b, final = await sso(gw, idp, "ann@example.test")
    assert "reason=sso_failed" in final and "disabled" in final
    await b.close()


async def test_without_account_creation_only_existing_accounts_sign_in(tmp_path, idp):
    gw = await _gateway(tmp_path, idp, oidc_create_accounts=False)
    try:
        idp.add_user("new@example.test", groups=("support-agents",))
        b, final = await sso(gw, idp, "new@example.test")
        assert "reason=sso_failed" in final
        await b.close()
        await A.add_user(gw.gw.auth.accounts, A.NewAccount(user="new@example.test",
                                                           roles=("agent",), password=PASSWORD))
        b, final = await sso(gw, idp, "new@example.test")
        assert final == "/agent" and b.cookie("livedesk_session")
        await b.close()
    finally:
        await stop_gateway(gw)


async def test_the_login_page_offers_sso_only_when_configured(gw, tmp_path):
    async with gw.http.get(f"{gw.url}/auth/oidc") as r:
        assert (await r.json()) == {"enabled": True}
    plain = await start_gateway(Config(dev=True, port=free_port(), data_dir=tmp_path / "p"))
    try:
        async with plain.http.get(f"{plain.url}/auth/oidc") as r:
            assert (await r.json()) == {"enabled": False}
        async with plain.http.get(f"{plain.url}/auth/oidc/start", allow_redirects=False) as r:
            assert r.status == 404
    finally:
        await stop_gateway(plain)


@pytest.mark.parametrize("change,words", [
    ({"oidc_issuer": "http://idp.example.com"}, "https"),
    ({"oidc_client_secret": ""}, "CLIENT_SECRET"),
    ({"oidc_role_map": {}}, "ROLE_MAP"),
    ({"oidc_role_map": {"g": "viewer"}}, "roles are"),
    ({"oidc_scopes": "profile"}, "openid"),
])
def test_sso_settings_that_cannot_work_refuse_to_start(change, words):
    from gateway.config import ConfigError
    base = dict(dev=True, oidc_issuer="https://idp.example.com", oidc_client_id="c",
                oidc_client_secret="s", oidc_role_map={"g": "agent"})
    base.update(change)
    with pytest.raises(ConfigError, match=words):
        Config(**base).validate()
