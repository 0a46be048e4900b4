"""Issue 13, finding 2: the compose stack's TURN relay is no door into the private network.

``docker compose config`` needs a compose CLI (no engine, but none is installed here), so
this test renders ``docker/compose.yaml`` itself: PyYAML parses it (merge keys included),
then ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` are substituted from a given
environment exactly as compose does. Everything below is read from that rendered document:

* coturn denies relaying to every range of the issue (``--denied-peer-ip=from-to``), has no
  TCP relay, no loopback or multicast peers;
* Redis requires a password that must be set, and the gateways' ``LIVEDESK_REDIS_URL``
  carries it;
* Redis and coturn share no network.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
ENV = {"LIVEDESK_SECRET": "s" * 64, "TURN_SECRET": "t" * 64, "REDIS_PASSWORD": "0123abcd" * 4,
       "POSTGRES_PASSWORD": "4567cdef" * 4}

# The ranges of issue 13, build item 9 (coturn must deny relaying to each of them).
DENIED = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
          "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7", "fe80::/10")

_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$\$")


class MissingVariable(Exception):
    pass


def _substitute(text: str, env: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("?", ":?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        if op in ("-", ":-") and unset:
            return arg
        return value if value is not None else ""
    return _VAR.sub(one, text)


def render(env: dict[str, str]):
    """The compose document with every variable substituted (raises MissingVariable)."""
    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return _substitute(node, env)
        return node
    return walk(yaml.safe_load(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def doc():
    return render(ENV)


def _coturn_args(doc) -> list[str]:
    return [str(a) for a in doc["services"]["coturn"]["command"]]


def _denied_ranges(args: list[str]) -> list[tuple[ipaddress._BaseAddress, ipaddress._BaseAddress]]:
    out = []
    for a in args:
        if a.startswith("--denied-peer-ip="):
            spec = a.split("=", 1)[1]
            lo, _, hi = spec.partition("-")
            out.append((ipaddress.ip_address(lo), ipaddress.ip_address(hi or lo)))
    return out


def _networks(svc: dict) -> set[str]:
    nets = svc.get("networks", ["default"])
    return set(nets) if isinstance(nets, (list, dict)) else {nets}


def test_the_renderer_substitutes_like_compose():
    assert _substitute("a${X:-d}b", {}) == "adb"
    assert _substitute("a${X:-d}b", {"X": ""}) == "adb"
    assert _substitute("a${X-d}b", {"X": ""}) == "ab"
    assert _substitute("${X}", {"X": "v"}) == "v"
    assert _substitute("$$HOME", {}) == "$HOME"
    with pytest.raises(MissingVariable):
        _substitute("${X:?set X}", {"X": ""})


@pytest.mark.parametrize("cidr", DENIED)
def test_coturn_denies_relaying_to(doc, cidr):
    net = ipaddress.ip_network(cidr)
    ranges = _denied_ranges(_coturn_args(doc))
    covered = any(lo.version == net.version and lo <= net.network_address
                  and net.broadcast_address <= hi for lo, hi in ranges)
    assert covered, f"coturn does not deny {cidr} (denied: {[(str(a), str(b)) for a, b in ranges]})"


def test_coturn_denies_the_metadata_service_and_redis_side_addresses(doc):
    """Spot checks of single addresses a relay must never reach (read, never contacted)."""
    ranges = _denied_ranges(_coturn_args(doc))
    for addr in ("169.254.169.254", "10.0.0.5", "172.17.0.2", "192.168.1.1", "127.0.0.1",
                 "100.100.100.200", "fd00::2", "fe80::1", "::1", "0.0.0.0"):
        a = ipaddress.ip_address(addr)
        assert any(lo.version == a.version and lo <= a <= hi for lo, hi in ranges), addr


def test_coturn_has_no_tcp_relay_and_no_loopback_or_multicast_peers(doc):
    args = _coturn_args(doc)
    assert "--no-tcp-relay" in args
    assert "--no-multicast-peers" in args
    assert not any(a.startswith("--allow-loopback-peers") for a in args)
    assert not any(a.startswith("--server-relay") for a in args)
    assert not any(a.startswith("--allowed-peer-ip") for a in args), \
        "an allowed-peer-ip would punch a hole into the denied ranges"
    assert "--use-auth-secret" in args and "--no-cli" in args


def test_redis_requires_a_password_that_must_be_set(doc):
    redis = doc["services"]["redis"]
    args = [str(a) for a in redis["command"]]
    assert "--requirepass" in args, "Redis must require a password"
    assert args[args.index("--requirepass") + 1] == ENV["REDIS_PASSWORD"]
    # the healthcheck's redis-cli authenticates through the environment
    assert redis["environment"]["REDISCLI_AUTH"] == ENV["REDIS_PASSWORD"]
    for name in ("gw1", "gw2"):
        url = doc["services"][name]["environment"]["LIVEDESK_REDIS_URL"]
        assert url == f"redis://:{ENV['REDIS_PASSWORD']}@redis:6379/0", (name, url)
    for empty in ({k: v for k, v in ENV.items() if k != "REDIS_PASSWORD"},
                  {**ENV, "REDIS_PASSWORD": ""}):
        with pytest.raises(MissingVariable, match="REDIS_PASSWORD"):
            render(empty)


def test_redis_and_coturn_share_no_network(doc):
    services = doc["services"]
    redis, coturn = _networks(services["redis"]), _networks(services["coturn"])
    assert "default" not in redis and "default" not in coturn
    assert not redis & coturn, f"Redis and coturn share {redis & coturn}"
    # the gateways still reach Redis, and Redis is on no network with a way out
    for name in ("gw1", "gw2"):
        assert redis & _networks(services[name]), f"{name} cannot reach Redis"
    for net in redis:
        assert doc["networks"][net].get("internal") is True, f"network {net} is not internal"
    # coturn is alone on its network(s): nothing of the stack is on the relay's side
    for name, svc in services.items():
        if name != "coturn":
            assert not _networks(svc) & coturn, f"{name} shares a network with coturn"
    assert not services["redis"].get("ports"), "Redis must not be published"


def test_postgresql_requires_a_password_and_stays_on_the_internal_network(doc):
    services = doc["services"]
    pg = services["postgres"]
    assert pg["environment"]["POSTGRES_PASSWORD"] == ENV["POSTGRES_PASSWORD"]
    for name in ("gw1", "gw2"):
        url = services[name]["environment"]["LIVEDESK_DATABASE_URL"]
        assert url == f"postgresql://livedesk:{ENV['POSTGRES_PASSWORD']}@postgres:5432/livedesk"
        assert _networks(pg) & _networks(services[name]), f"{name} cannot reach PostgreSQL"
    assert not _networks(pg) & _networks(services["coturn"])
    for net in _networks(pg):
        assert doc["networks"][net].get("internal") is True, f"network {net} is not internal"
    for empty in ({k: v for k, v in ENV.items() if k != "POSTGRES_PASSWORD"},
                  {**ENV, "POSTGRES_PASSWORD": ""}):
        with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
            render(empty)
