"""Finding 1, the send half: a frame that cannot be encoded never silences a session.

The edge now refuses such text (test_hostile_text.py), so these tests put the poison in
*below* the edge, as a bug or a future code path could: a chat line with a lone surrogate
stored straight through the support service, a non-finite number, an object JSON cannot
hold. Before the fix the session's writer died on the first such frame while the socket
stayed open (the agent console showed "online" and never received anything again), and
resume replayed the poison so the console reconnected for ever.
"""

from __future__ import annotations

import asyncio
import json
import logging

from gateway.support.service import BOT
from signaling.auth import Claims
from signaling.session import Prepared, Session

from .scene import build_scene

POISON = "bad \ud800 text"


def dropped(gw) -> float:
    counter = getattr(gw.gw.metrics, "frames_dropped", None)  # livedesk_frames_dropped_total
    return counter._value.get() if counter is not None else 0.0


async def test_poisoned_chat_line_below_the_edge_leaves_agent_viewer_and_admin_working(gateway, caplog):
    scene = await build_scene(gateway)
    gw = gateway.gw
    conv = gw.support.store.get(scene.conversation)
    before = dropped(gateway)
    agent_seq = scene.agent.last_seq
    with caplog.at_level(logging.ERROR, logger="signaling.session"):
        await gw.support.post(conv, BOT, POISON)  # stored and fanned out to viewer and agent
        await asyncio.sleep(0.05)

    # the sessions go on: a bystander conversation reaches the agent, replies flow; the admin's
    # list, which would carry the poison, is answered (typed), not left without an answer
    await scene.assert_alive(poisoned=True)
    # the next good line after the poison reaches the agent
    r = await scene.viewer.request("message.send", conversation=scene.conversation,
                                   text="after the poison", client_msg_id="k-after")
    assert r["type"] == "message", r
    await scene.agent.wait_for(lambda f: f.get("text") == "after the poison")

    # a request whose reply would carry the poison gets one typed answer, not silence
    got = await scene.agent.request("conversation.get", conversation=scene.conversation)
    assert got["type"] == "error" and got["code"] == "internal", got
    assert (await scene.agent.request("ping"))["type"] == "pong"
    # each drop was logged and counted (at least the viewer's and the agent's copy)
    assert dropped(gateway) - before >= 2
    assert any("cannot be encoded" in r.getMessage() for r in caplog.records)

    # resume from before the poison: everything retained is replayed, never the poison, and
    # the session is resumed (no endless "reconnecting")
    await scene.agent.drop()
    from tests.wsclient import WSClient
    again = await WSClient(gateway.url, gateway.http).connect()
    gateway.clients.append(again)
    w = await again.hello(gateway.token("agent", scene.agent_user, name="Alice"))
    assert w["type"] == "welcome"
    r = await again.request("resume", session=scene.agent.session, last_seq=agent_seq)
    assert r["type"] == "resumed", r
    seqs = [f["seq"] for f in again.frames if "seq" in f and f.get("type") != "welcome"]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert not any("\ud800" in json.dumps(f, ensure_ascii=False) for f in again.frames)
    assert (await again.request("ping"))["type"] == "pong"


class Sock:
    def __init__(self):
        self.got: list[str] = []

    async def send_str(self, data: str) -> None:
        data.encode("utf-8")  # what aiohttp does: a lone surrogate raises here
        self.got.append(data)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> None:
        return None


def session(drops: list) -> tuple[Session, Sock]:
    s = Session(id="s1", claims=Claims(user="u", role="agent"))
    s.on_drop = lambda: drops.append(1)
    sock = Sock()
    s.attach(sock)
    return s, sock


async def test_unencodable_frames_are_dropped_unnumbered_and_the_session_goes_on(caplog):
    drops: list = []
    s, sock = session(drops)
    assert s.send({"type": "a"}) == 1
    for bad in ({"type": "message", "text": POISON}, {"type": "x", "n": float("nan")},
                {"type": "x", "o": object()}, Prepared({"type": "room.update", "t": POISON})):
        assert s.send(bad) == 0
    assert s.send(Prepared({"type": "b"})) == 2
    assert s.send({"type": "c"}) == 3
    await asyncio.sleep(0)
    assert [json.loads(x)["type"] for x in sock.got] == ["a", "b", "c"]
    assert len(drops) == 4
    # never retained: a resume replays exactly the good frames, with their seqs
    assert [json.loads(f.text)["seq"] for f in s.frames_after(0)] == [1, 2, 3]
    assert all("\ud800" not in f.text for f in s.frames_after(0))


async def test_a_dropped_direct_reply_is_answered_internal_with_its_id():
    drops: list = []
    s, sock = session(drops)
    assert s.send({"type": "conversation", "id": 7, "text": POISON}) == 0  # dropped…
    assert s.seq == 1  # …and the internal stand-in took seq 1
    await asyncio.sleep(0)
    (frame,) = [json.loads(x) for x in sock.got]
    assert frame["type"] == "error" and frame["code"] == "internal" and frame["id"] == 7
    assert frame["seq"] == 1 and len(drops) == 1


async def test_a_broadcast_that_cannot_be_encoded_is_dropped_for_every_watcher(gateway):
    scene = await build_scene(gateway)
    gw = gateway.gw
    before = dropped(gateway)
    try:
        gw.hub.publish_local(f"room:{scene.room}", {"type": "room.update", "room": scene.room,
                                                     "change": {"kind": "announcement",
                                                                "text": POISON}})
    except UnicodeEncodeError:
        pass  # the old code raised here, into whoever published
    await scene.assert_alive(fresh_viewer=False)
    r = await scene.host.request("room.announce", room=scene.room, text="next one")
    assert r["type"] == "ack", r
    await scene.host.event("room.announcement", text="next one")
    assert dropped(gateway) > before
