"""``livedesk user|shop|keys`` on SQLite and on the real PostgreSQL, and a running server
picking up what they change (a rotated key, a new shop, a disabled account)."""

from __future__ import annotations

import asyncio
import json
import time

import jwt

from gateway.config import Config
from tests.conftest import free_port, start_gateway, stop_gateway

from .conftest import PASSWORD, hello, login, run_cli, socket_token


async def _store_args(backends, monkeypatch, tmp_path) -> list[str]:
    """Where the CLI finds the store: --data-dir, or LIVEDESK_DATABASE_URL for PostgreSQL."""
    monkeypatch.delenv("LIVEDESK_DATABASE_URL", raising=False)
    monkeypatch.delenv("LIVEDESK_DATA_DIR", raising=False)
    if backends.kind == "sqlite":
        return ["--data-dir", str(tmp_path / "cli")]
    monkeypatch.setenv("LIVEDESK_DATABASE_URL", await backends.url("cli"))
    return []


async def test_user_commands(backends, monkeypatch, tmp_path):
    where = await _store_args(backends, monkeypatch, tmp_path)
    code, out, err = await run_cli(["user", "add", "--user", "ann", "--role", "agent",
                                    "--name", "Ann", "--room", "r1", "--password-stdin",
                                    *where], stdin=PASSWORD + "\n")
    assert code == 0, err
    ann = json.loads(out.splitlines()[-1])
    assert ann == {"user": "ann", "name": "Ann", "roles": ["agent"], "rooms": ["r1"],
                   "capacity": None, "max_compensation": None, "skills": [],
                   "disabled": False, "epoch": 1}
    assert PASSWORD not in out and "argon2" not in out
    code, _, err = await run_cli(["user", "add", "--user", "ann", "--role", "admin",
                                  "--password-stdin", *where], stdin=PASSWORD + "\n")
    assert code == 2 and "exists already" in err
    code, _, err = await run_cli(["user", "add", "--user", "bob", "--role", "agent",
                                  "--password-stdin", *where], stdin="short\n")
    assert code == 2 and "characters" in err
    code, _, err = await run_cli(["user", "add", "--user", "sup", "--role", "supervisor",
                                  "--password-stdin", *where], stdin=PASSWORD)
    assert code == 0, err
    code, out, _ = await run_cli(["user", "disable", "--user", "ann", *where])
    assert code == 0 and json.loads(out)["disabled"] is True and json.loads(out)["epoch"] == 2
    code, out, _ = await run_cli(["user", "reset-password", "--user", "ann",
                                  "--password-stdin", *where], stdin="a new long password\n")
    assert code == 0 and json.loads(out)["epoch"] == 3
    code, _, err = await run_cli(["user", "disable", "--user", "nobody", *where])
    assert code == 2 and "no user 'nobody'" in err
    code, out, _ = await run_cli(["user", "list", *where])
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(u["user"], u["roles"], u["disabled"]) for u in listed] == [
        ("ann", ["agent"], True), ("sup", ["supervisor"], False)]


async def test_shop_and_key_commands(backends, monkeypatch, tmp_path):
    where = await _store_args(backends, monkeypatch, tmp_path)
    code, out, err = await run_cli(["shop", "add", "--shop", "acme", "--room", "r1",
                                    "--room", "r2", "--origin", "https://acme.example/",
                                    *where])
    assert code == 0, err
    lines = out.splitlines()
    secret = lines[-1]  # the contract: the secret is the last line
    assert len(secret) >= 43 and json.loads(lines[0]) == {
        "shop": "acme", "rooms": ["r1", "r2"], "origins": ["https://acme.example"],
        "anonymous": False}
    code, out, _ = await run_cli(["shop", "list", *where])
    assert code == 0 and secret not in out and json.loads(out)["shop"] == "acme"
    code, out, _ = await run_cli(["shop", "rotate-secret", "--shop", "acme", *where])
    assert code == 0 and out.splitlines()[-1] not in (secret, "")
    for bad in (["--shop", "ld-x"], ["--shop", "acme"], ["--shop", "a b"]):
        code, _, err = await run_cli(["shop", "add", *bad, "--room", "r", *where])
        assert code == 2, err
    code, _, err = await run_cli(["shop", "add", "--shop", "x", "--room", "r",
                                  "--origin", "javascript:alert(1)", *where])
    assert code == 2 and "origin" in err
    code, out, _ = await run_cli(["keys", "rotate", "--overlap", "60", *where])
    first = json.loads(out)
    code, out, _ = await run_cli(["keys", "rotate", "--overlap", "60", *where])
    second = json.loads(out)
    assert second["retired"] == [first["signer"]] and second["overlap_s"] == 60
    code, out, _ = await run_cli(["keys", "list", *where])
    keys = [json.loads(line) for line in out.splitlines()]
    assert [k["kid"] for k in keys] == [first["signer"], second["signer"]]
    assert keys[0]["expires_at"] <= time.time() + 60 and keys[1]["expires_at"] is None
    assert "PRIVATE" not in out


async def test_a_running_server_follows_the_cli(backends, monkeypatch, tmp_path):
    """The CLI and a server on one store: a new shop, a rotated key and a disabled account
    reach the server without a restart."""
    where = await _store_args(backends, monkeypatch, tmp_path)
    if backends.kind == "sqlite":
        config = Config(dev=True, port=free_port(), data_dir=tmp_path / "cli",
                        auth_refresh_s=0.2)
    else:
        config = Config(dev=True, port=free_port(), database_url=await backends.url("cli"),
                        auth_refresh_s=0.2)
    gw = await start_gateway(config)
    try:
        room = gw.room_id
        code, out, _ = await run_cli(["user", "add", "--user", "ann", "--role", "agent",
                                      "--password-stdin", *where], stdin=PASSWORD)
        code, out, _ = await run_cli(["shop", "add", "--shop", "acme", "--room", room, *where])
        secret = out.splitlines()[-1]
        await asyncio.sleep(0.6)
        viewer = jwt.encode({"sub": "v1", "room": room, "exp": int(time.time()) + 60},
                            secret, algorithm="HS256", headers={"kid": "acme"})
        assert (await hello(gw, viewer))["user"] == "acme:v1"
        _, _, cookie, _ = await login(gw, "ann")
        _, t = await socket_token(gw, cookie)
        code, out, _ = await run_cli(["keys", "rotate", "--overlap", "30", *where])
        new_kid = json.loads(out)["signer"]
        await asyncio.sleep(0.6)
        _, t2 = await socket_token(gw, cookie)
        assert jwt.get_unverified_header(t2["token"])["kid"] == new_kid
        assert (await hello(gw, t["token"]))["type"] == "welcome"  # overlap
        code, _, _ = await run_cli(["user", "disable", "--user", "ann", *where])
        await asyncio.sleep(0.6)
        reply = await hello(gw, t2["token"])
        assert reply["type"] == "error" and "disabled" in reply["message"]
    finally:
        await stop_gateway(gw)


async def test_sign_in_and_lockout_on_both_backends(backends):
    """The failure counts and sessions are SQL of their own (upserts): run them on each."""
    config = Config(dev=True, port=free_port(), database_url=await backends.url("gw"),
                    auth_refresh_s=0.2) if backends.kind == "postgresql" else \
        Config(dev=True, port=free_port(), data_dir=backends.tmp_path / "gw",
               auth_refresh_s=0.2)
    gw = await start_gateway(config)
    try:
        from .conftest import add_user

        await add_user(gw, "ann")
        _, _, cookie, _ = await login(gw, "ann")
        assert (await socket_token(gw, cookie))[0] == 200
        for _ in range(5):
            assert (await login(gw, "ann", "wrong wrong wrong"))[0] == 401
        assert (await login(gw, "ann"))[0] == 429
        assert (await login(gw, "bob-unknown", "wrong wrong"))[0] == 401
        rows = await gw.gw.auth.accounts.failures(["user:ann", "user:bob-unknown"])
        assert rows["user:ann"].failures == 5 and rows["user:ann"].locked_until > time.time()
        assert rows["user:bob-unknown"].failures == 1
    finally:
        await stop_gateway(gw)
