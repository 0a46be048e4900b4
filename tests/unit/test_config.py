"""Configuration: every field documented, env vars parsed, unsafe settings refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Config, ConfigError, field_names

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_config_field_is_documented():
    text = DOC.read_text(encoding="utf-8")
    missing = [f for f in field_names() if f"`{f}`" not in text]
    assert not missing, f"undocumented config fields: {missing}"


def test_env_vars_fill_the_config(monkeypatch):
    monkeypatch.setenv("LIVEDESK_PORT", "9123")
    monkeypatch.setenv("LIVEDESK_STUN_URLS", "stun:a:3478, stun:b:3478")
    monkeypatch.setenv("LIVEDESK_AGENT_CAPACITY", "7")
    monkeypatch.setenv("LIVEDESK_WEB_ROOT", "/srv/web")
    c = Config.from_env(host="127.0.0.1")
    assert c.port == 9123 and c.agent_capacity == 7
    assert c.stun_urls == ["stun:a:3478", "stun:b:3478"]
    assert c.web_root == Path("/srv/web")
    monkeypatch.setenv("LIVEDESK_PORT", "eighty")
    with pytest.raises(ConfigError, match="LIVEDESK_PORT"):
        Config.from_env()


def test_unsafe_settings_are_refused():
    with pytest.raises(ConfigError, match="TURN_SECRET"):
        Config(dev=True, turn_urls=["turn:x"]).validate()
    with pytest.raises(ConfigError, match="media-mode"):
        Config(dev=True, media_mode="magic").validate()
    with pytest.raises(ConfigError, match="UDP_PORT"):
        Config(dev=True, udp_port_min=5000, udp_port_max=4000).validate()
    with pytest.raises(ConfigError, match="RESOLVED_RETENTION_S"):
        Config(dev=True, resolved_retention_s=-1).validate()


def test_turn_credentials_follow_the_rest_api_scheme():
    import base64
    import hashlib
    import hmac
    import time

    from gateway.ice import IceProvider
    ice = IceProvider(["stun:s:3478"], ["turn:t:3478"], "sekret", ttl_s=600)
    servers = ice.for_call("v1", until=time.time() + 3600)
    assert servers[0] == {"urls": ["stun:s:3478"]}
    user, cred = servers[1]["username"], servers[1]["credential"]
    expiry, who = user.split(":")
    assert who == "v1" and int(expiry) > 0
    want = base64.b64encode(hmac.new(b"sekret", user.encode(), hashlib.sha1).digest()).decode()
    assert cred == want


# --- issue 13 (CONFIG): settings that mean what they say -----------------------------------
STRONG = "5f0c8c1d7e2a4b6f9a3e1d0c7b5a49382716f5e4d3c2b1a0f9e8d7c6b5a49382"


@pytest.mark.parametrize("word", ["off", "OFF", "false", "False", "0", "no", "No"])
def test_livedesk_dev_off_words_leave_dev_mode_off(monkeypatch, word):
    """Finding 3: LIVEDESK_DEV=off (false, no…) used to turn dev mode *on*."""
    monkeypatch.setenv("LIVEDESK_DEV", word)
    assert Config.from_env().dev is False
    assert Config.from_env(dev=True).dev is True  # --dev still wins


@pytest.mark.parametrize("word", ["disabled", "of", "2", "enable", "none", "nope"])
def test_boolean_settings_refuse_unknown_words_naming_the_variable(monkeypatch, word):
    monkeypatch.setenv("LIVEDESK_DEV", word)
    with pytest.raises(ConfigError, match="LIVEDESK_DEV"):
        Config.from_env()


@pytest.mark.parametrize("word", ["1", "on", "TRUE", "yes"])
def test_env_var_alone_never_turns_dev_mode_on(monkeypatch, word):
    monkeypatch.setenv("LIVEDESK_DEV", word)
    with pytest.raises(ConfigError, match="--dev"):
        Config.from_env()
    assert Config.from_env(dev=True).dev is True


def test_strict_boolean_parser():
    from gateway.config import parse_bool
    assert [parse_bool("X", v) for v in ("on", "True", "1", "YES")] == [True] * 4
    assert [parse_bool("X", v) for v in ("Off", "false", "0", "no")] == [False] * 4
    with pytest.raises(ConfigError, match="LIVEDESK_X"):
        parse_bool("X", "y")


@pytest.mark.parametrize("url", ["https://shop.example.com", "http://10.0.0.5:8080",
                                 "http://0.0.0.0:8080"])
def test_dev_refuses_a_public_url_that_is_not_loopback(url):
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        Config(dev=True, public_url=url).validate()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:9000",
                                 "http://[::1]:8080"])
def test_dev_accepts_a_loopback_public_url(url):
    assert Config(dev=True, public_url=url).validate().dev


@pytest.mark.parametrize("secret", ["a", "changeme", "test-secret", "s3cret", "x" * 200,
                                    "ab" * 100, "cluster-test-secret-0123456789abcdef",
                                    "0123456789abcdef" * 3])
def test_weak_secrets_are_refused_outside_dev(secret):
    """Finding 3: LIVEDESK_SECRET=a was accepted (a forged token is brute-forced at once)."""
    with pytest.raises(ConfigError, match="LIVEDESK_SECRET is too weak"):
        Config(dev=False, secret=secret).validate()
    assert Config(dev=True, secret=secret).validate().secret == secret  # a demo may


def test_random_32_byte_secrets_pass():
    import secrets
    for _ in range(200):
        for s in (secrets.token_hex(32), secrets.token_urlsafe(32),
                  __import__("base64").b64encode(secrets.token_bytes(32)).decode()):
            Config(dev=False, secret=s).validate()
    Config(dev=False, secret=STRONG).validate()


def test_http_timeouts_and_page_policy_settings(monkeypatch):
    monkeypatch.setenv("LIVEDESK_HTTP_HEADER_TIMEOUT_S", "3.5")
    monkeypatch.setenv("LIVEDESK_HTTP_BODY_TIMEOUT_S", "4")
    monkeypatch.setenv("LIVEDESK_FRAME_ANCESTORS", "self, https://*.shop.example.com")
    monkeypatch.setenv("LIVEDESK_GATEWAY_ORIGINS", "https://gw2.example.com, ws://127.0.0.1:8081/")
    c = Config.from_env(dev=True).validate()
    assert c.http_header_timeout_s == 3.5 and c.http_body_timeout_s == 4.0
    assert c.frame_ancestors == ["'self'", "https://*.shop.example.com"]
    assert c.gateway_origins == ["wss://gw2.example.com", "ws://127.0.0.1:8081"]


@pytest.mark.parametrize("bad", ["*", "'self'; script-src *", "data:", "https://a.com/path",
                                 "'none' https://a.com"])
def test_frame_ancestors_cannot_open_or_inject_the_policy(bad):
    with pytest.raises(ConfigError, match="FRAME_ANCESTORS"):
        Config(dev=True, frame_ancestors=bad.split(" ")).validate()


@pytest.mark.parametrize("bad", ["gw2.example.com", "ftp://x", "wss://x/ws?a=1", "javascript:x",
                                 "wss://user:pw@x"])
def test_gateway_origins_must_be_origins(bad):
    with pytest.raises(ConfigError, match="GATEWAY_ORIGINS"):
        Config(dev=True, gateway_origins=[bad]).validate()


def test_token_command_refuses_a_weak_secret(monkeypatch, capsys):
    from gateway.cli import main
    monkeypatch.setenv("LIVEDESK_SECRET", "a")
    assert main(["token", "--role", "admin", "--user", "x"]) == 2
    assert "too weak" in capsys.readouterr().err
    monkeypatch.setenv("LIVEDESK_SECRET", STRONG)
    assert main(["token", "--role", "admin", "--user", "x"]) == 0
