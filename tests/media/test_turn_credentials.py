"""Issue 13, finding 2: TURN credentials only to a call's participants, when the call starts,
expiring no later than the call's maximum.

Before the fix every socket (every viewer of a stream) got a TURN credential in ``welcome``,
valid for ``turn_ttl_s`` whatever the call. Now ``welcome`` carries STUN only, nothing in
``ringing`` carries a credential, and the participants' ``call.state connecting`` carries one
whose expiry is at most the call's deadline (``max_call_s`` after it was accepted). No TURN
server is contacted: the credentials are only read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from gateway.ice import IceProvider
from tests.conftest import start_gateway, stop_gateway
from tests.media.conftest import EscalatingStub, escalated, media_config

TURN_SECRET = "turn-test-secret-0123456789abcdef"
TURN_URLS = ["turn:127.0.0.1:3478?transport=udp"]
STUN_URLS = ["stun:127.0.0.1:3478"]
MAX_CALL_S = 120.0  # much shorter than the TURN TTL: the call's maximum must win


def credentials_in(frames: list[dict]) -> list[dict]:
    """Every ICE server carrying a credential, anywhere in these frames."""
    found = []

    def walk(x):
        if isinstance(x, dict):
            if "credential" in x or "username" in x and "urls" in x:
                found.append(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    for f in frames:
        walk(f)
    return found


def check_turn(server: dict, user: str, not_after: float) -> None:
    assert server["urls"] == TURN_URLS
    expiry, who = server["username"].split(":", 1)
    assert who == user
    assert time.time() < int(expiry) <= not_after, (expiry, not_after)
    want = base64.b64encode(hmac.new(TURN_SECRET.encode(), server["username"].encode(),
                                     hashlib.sha1).digest()).decode()
    assert server["credential"] == want


async def test_turn_credentials_only_to_participants_when_the_call_starts():
    gw = await start_gateway(media_config(turn_urls=TURN_URLS, turn_secret=TURN_SECRET,
                                          stun_urls=STUN_URLS, turn_ttl_s=3600,
                                          max_call_s=MAX_CALL_S),
                             responder=EscalatingStub())
    try:
        v, a, cid = await escalated(gw)
        bystander = await gw.client("viewer", "v2", room=gw.room_id, name="Other viewer")
        host = await gw.client("host", "h1", room=gw.room_id, name="Host")
        await bystander.request("ping")
        await host.request("ping")
        for c in (v, a, bystander, host):
            welcome = next(f for f in c.frames if f.get("type") == "welcome")
            assert welcome["ice_servers"] == [{"urls": STUN_URLS}], welcome["ice_servers"]
        assert not credentials_in(v.frames + a.frames + bystander.frames + host.frames)

        # ringing: nobody holds a credential yet
        st = await v.request("call.request", conversation=cid, video=False)
        assert st["state"] == "ringing"
        call = st["call"]
        inc = await a.event("call.incoming", call=call)
        assert not credentials_in([st, inc])

        # accepted: the call starts; each participant gets STUN + TURN, capped by the call
        accepted_at = time.time()
        acc = await a.request("call.accept", call=call)
        vst = await v.event("call.state", call=call, state="connecting")
        deadline = accepted_at + MAX_CALL_S + 1  # (+1: whole seconds in the username)
        for frame, user in ((acc, "a1"), (vst, "v1")):
            stun, turn = frame["ice_servers"]
            assert stun == {"urls": STUN_URLS}
            check_turn(turn, user, deadline)
        media_call = gw.gw.media.calls.get(call)
        assert media_call.deadline is not None
        assert abs(media_call.deadline - (accepted_at + MAX_CALL_S)) < 5

        # the bystander and the uninvited host got no credential at any point
        assert not credentials_in(bystander.frames), json.dumps(bystander.frames)[:500]
        assert not credentials_in(host.frames), json.dumps(host.frames)[:500]
        # and the participants got them only in call.state connecting
        for c in (v, a):
            carriers = {f.get("type") + "/" + str(f.get("state")) for f in c.frames
                        if credentials_in([f])}
            assert carriers == {"call.state/connecting"}, carriers
    finally:
        await stop_gateway(gw)


def test_provider_caps_the_expiry_at_the_call_deadline():
    ice = IceProvider(["stun:s:3478"], ["turn:t:3478"], "sekret", ttl_s=3600)
    now = 1_800_000_000.0
    servers = ice.for_call("v1", until=now + 90, now=now)
    assert servers[0] == {"urls": ["stun:s:3478"]}
    assert servers[1]["username"] == f"{int(now + 90)}:v1"
    # a TTL shorter than the call's remaining time still wins
    assert ice.for_call("v1", until=now + 7200, now=now)[1]["username"] == f"{int(now + 3600)}:v1"
    assert ice.stun_servers() == [{"urls": ["stun:s:3478"]}]
    assert IceProvider([], ["turn:t"], "s").stun_servers() == []
