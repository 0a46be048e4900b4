"""Finding 7 (the socket half): connections that never end, and too many from one place.

2,000 sockets that never said ``hello`` were all still open after 75 s, and there was no
cap per address or per user. Now: no accepted ``hello`` within ``hello_timeout_s`` → error
``unauthenticated`` and close 4408; more than ``max_sockets_per_ip`` from one client
address or ``max_sockets_per_user`` for one user on a node → error ``rate_limited`` and
close 4429. Behind a proxy the client address comes from ``X-Forwarded-For``/``Forwarded``
only when the peer is a trusted proxy: shown here on header strings (the decision
function) and with loopback peers only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time

import pytest

from gateway.config import Config, ConfigError
from signaling.clientaddr import ClientAddress, parse_networks
from tests.conftest import free_port, start_gateway, stop_gateway
from tests.wsclient import WSClient


@pytest.fixture
async def strict():
    config = Config(dev=True, port=free_port())
    # set after construction, so that on a build without these settings the test fails on
    # the behaviour (sockets stay open) rather than on the constructor
    config.hello_timeout_s, config.max_sockets_per_ip, config.max_sockets_per_user = 0.5, 5, 2
    r = await start_gateway(config)
    try:
        yield r
    finally:
        await stop_gateway(r)


async def raw_socket(gw, headers: dict | None = None) -> WSClient:
    c = WSClient(gw.url, gw.http)
    url = gw.url.replace("http", "ws", 1) + "/ws"
    c.ws = await gw.http.ws_connect(url, headers=headers or {})
    c._reader = asyncio.get_running_loop().create_task(c._read())
    gw.clients.append(c)
    return c


async def test_a_socket_that_never_says_hello_is_closed_4408(strict):
    t0 = time.monotonic()
    silent = await raw_socket(strict)
    chatty = await raw_socket(strict)  # frames that are not hello do not extend the deadline
    for _ in range(3):
        e = await chatty.request("ping")
        assert e["code"] == "unauthenticated"
    assert await silent.wait_closed(timeout=5) == 4408
    assert await chatty.wait_closed(timeout=5) == 4408
    assert time.monotonic() - t0 < 3
    err = [f for f in silent.frames if f.get("type") == "error"]
    assert err and err[-1]["code"] == "unauthenticated" and "hello" in err[-1]["message"]
    # an authenticated socket is not affected by the deadline
    ok = await strict.client("viewer", "v-ok", room=strict.room_id)
    await asyncio.sleep(0.8)
    assert (await ok.request("ping"))["type"] == "pong"
    assert strict.gw.endpoint.open_sockets >= 1


async def test_default_hello_deadline_is_ten_seconds():
    assert Config().hello_timeout_s == 10.0
    with pytest.raises(ConfigError, match="HELLO_TIMEOUT_S"):
        Config(dev=True, hello_timeout_s=0).validate()


async def test_sockets_per_address_are_capped_4429(strict):
    socks = [await raw_socket(strict) for _ in range(5)]
    extra = await raw_socket(strict)
    assert await extra.wait_closed(timeout=5) == 4429
    err = [f for f in extra.frames if f.get("type") == "error"]
    assert err and err[0]["code"] == "rate_limited", extra.frames
    # the first five are untouched; closing one frees a place
    w = await socks[0].hello(strict.token("viewer", "v-a", room=strict.room_id))
    assert w["type"] == "welcome"
    await socks[1].close()
    await asyncio.sleep(0.1)
    again = await raw_socket(strict)
    w = await again.hello(strict.token("viewer", "v-b", room=strict.room_id))
    assert w["type"] == "welcome"


async def test_sockets_per_user_are_capped_4429(strict):
    a = await strict.client("agent", "same-agent")
    b = await strict.client("agent", "same-agent")
    c = await strict.client()
    e = await c.request("hello", token=strict.token("agent", "same-agent"), protocol=1)
    assert e["type"] == "error" and e["code"] == "rate_limited" and "same-agent" in e["message"]
    assert await c.wait_closed() == 4429
    other = await strict.client("agent", "other-agent")  # another user is not affected
    for s in (a, b, other):
        assert (await s.request("ping"))["type"] == "pong"


async def test_forwarded_addresses_count_only_behind_a_trusted_proxy():
    """Loopback is the proxy here; the forwarded addresses are documentation ranges that are
    only written into headers (no packet goes anywhere but 127.0.0.1)."""
    trusting = await start_gateway(Config(dev=True, port=free_port(), max_sockets_per_ip=2,
                                          trusted_proxies=["127.0.0.1"]))
    plain = await start_gateway(Config(dev=True, port=free_port(), max_sockets_per_ip=2))
    try:
        # behind the trusted proxy, three clients with different addresses all get in…
        for n in (1, 2, 3):
            c = await raw_socket(trusting, {"X-Forwarded-For": f"203.0.113.{n}"})
            assert (await c.request("ping"))["code"] == "unauthenticated"
        # …and the third socket of one forwarded address is refused
        for _ in range(2):
            await raw_socket(trusting, {"Forwarded": 'for="198.51.100.7:4711"'})
        third = await raw_socket(trusting, {"Forwarded": 'for="198.51.100.7:4711"'})
        assert await third.wait_closed() == 4429
        # without trust the header is ignored: a client cannot dodge the cap by inventing
        # addresses
        for n in (1, 2):
            await raw_socket(plain, {"X-Forwarded-For": f"203.0.113.{n}"})
        forged = await raw_socket(plain, {"X-Forwarded-For": "203.0.113.99"})
        assert await forged.wait_closed() == 4429
    finally:
        await stop_gateway(trusting)
        await stop_gateway(plain)


@pytest.mark.parametrize("peer, headers, want", [
    # not behind a trusted proxy: headers are ignored whatever they say
    ("192.0.2.10", {"X-Forwarded-For": "203.0.113.5"}, "192.0.2.10"),
    ("192.0.2.10", {"Forwarded": "for=203.0.113.5"}, "192.0.2.10"),
    # trusted proxy: the right-most address that is not a trusted proxy
    ("10.0.0.2", {"X-Forwarded-For": "203.0.113.5"}, "203.0.113.5"),
    ("10.0.0.2", {"X-Forwarded-For": "198.51.100.1, 203.0.113.5, 10.0.0.3"}, "203.0.113.5"),
    ("10.0.0.2", {"X-Forwarded-For": "203.0.113.5:5555"}, "203.0.113.5"),
    ("10.0.0.2", {"Forwarded": 'for="[2001:db8::7]:80";proto=https, for=10.0.0.3'},
     "2001:db8::7"),
    ("10.0.0.2", {"Forwarded": "for=203.0.113.9", "X-Forwarded-For": "198.51.100.1"},
     "203.0.113.9"),
    # junk or obfuscated entries stop the walk: nothing further left is believed
    ("10.0.0.2", {"X-Forwarded-For": "198.51.100.1, garbage"}, "10.0.0.2"),
    ("10.0.0.2", {"Forwarded": "for=_hidden"}, "10.0.0.2"),
    # a trusted proxy without headers is itself the client
    ("10.0.0.2", {}, "10.0.0.2"),
    ("::1", {}, "::1"),
])
def test_client_address_decision(peer, headers, want):
    decide = ClientAddress(parse_networks(["10.0.0.0/8", "::1"]))
    assert decide(peer, headers) == want
    ipaddress.ip_address(decide(peer, headers))  # always an address, never header junk


def test_trusted_proxies_are_validated():
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Config(dev=True, trusted_proxies=["10.0.0.0/8", "proxy.example"]).validate()
    Config(dev=True, trusted_proxies=["10.0.0.0/8", "127.0.0.1", "::1"]).validate()
