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
