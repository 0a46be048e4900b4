"""Fixtures for the media tests: a gateway with a stub bot and short call timers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.config import Config
from gateway.support.responder import BotReply
from tests.conftest import LOOPBACK_MEDIA, free_port, start_gateway, stop_gateway
from tests.media.rtc_client import GREEN, RED, RtcClient


class EscalatingStub:
    """A tiny responder: escalates when the text asks for a human (人工), else echoes."""

    async def respond(self, q):
        esc = "人工" in q.text
        return BotReply(intent="human_request" if esc else "other", escalate=esc,
                        text="stub: " + q.text)


def media_config(**kw) -> Config:
    """A media test's gateway: its media on loopback (``LOOPBACK_MEDIA``: host candidates on
    127.0.0.1, only loopback remote candidates; docs/testing.md#network-safety) unless ``kw``
    says otherwise for one of those settings."""
    # ring_interval_s 0: these tests place many calls from one viewer on purpose (the ring
    # limit is tested in tests/abuse/test_churn.py)
    base = dict(dev=True, port=free_port(), ring_timeout_s=30.0, call_grace_s=10.0,
                ring_interval_s=0.0)
    base.update({k: list(v) if isinstance(v, list) else v for k, v in LOOPBACK_MEDIA.items()})
    base.update(kw)
    return Config(**base)


async def escalated(r, viewer: str = "v1", agent: str = "a1"):
    """A viewer's conversation assigned to an available agent: (viewer, agent, conv id)."""
    a = await r.client("agent", agent, name=f"Agent {agent}")
    assert (await a.request("agent.status", status="available"))["type"] == "ack"
    v = await r.client("viewer", viewer, room=r.room_id, name=f"Viewer {viewer}")
    conv = await v.request("conversation.open", room=r.room_id)
    cid = conv["conversation"]
    await v.request("message.send", conversation=cid, text="我要转人工", client_msg_id="esc")
    await a.event("conversation.assigned", conversation=cid, timeout=5)
    return v, a, cid


async def ring(v, a, cid, video: bool = True) -> str:
    """Viewer calls, agent accepts; returns the call id once both see ``connecting``."""
    st = await v.request("call.request", conversation=cid, video=video)
    assert st["type"] == "call.state" and st["state"] == "ringing", st
    call = st["call"]
    inc = await a.event("call.incoming", call=call)
    assert inc["conversation"] == cid and inc["from"]["user"] == "v1" and inc["video"] is video
    acc = await a.request("call.accept", call=call)
    assert acc["type"] == "call.state" and acc["state"] == "connecting", acc
    assert acc["ice_servers"] == []
    vst = await v.event("call.state", call=call, state="connecting")
    assert vst["ice_servers"] == []
    return call


@dataclass
class OneToOne:
    """A running viewer-agent call: the two protocol clients, the conversation, the call id
    and each side's WebRTC peer (the viewer sends red, the agent green)."""
    v: Any
    a: Any
    cid: str
    call: str
    vc: RtcClient
    ac: RtcClient


@asynccontextmanager
async def one_to_one(r) -> AsyncIterator[OneToOne]:
    """Escalate, ring, start both peers and wait until the agent decodes the viewer's colour;
    both peers are closed on the way out, whatever the test did."""
    v, a, cid = await escalated(r)
    call = await ring(v, a, cid)
    vc, ac = RtcClient(v, "v1", RED), RtcClient(a, "a1", GREEN)
    try:
        await vc.start(call)
        await ac.start(call)
        await ac.wait_colour("v1", RED)
        yield OneToOne(v, a, cid, call, vc, ac)
    finally:
        await vc.close()
        await ac.close()


@pytest.fixture
async def gw():
    r = await start_gateway(media_config(), responder=EscalatingStub())
    try:
        yield r
    finally:
        await stop_gateway(r)
