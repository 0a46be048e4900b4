"""A small support floor to attack: one viewer with a conversation assigned to one agent, an
admin and a host, all on one real gateway; and the check that none of them went silent.

"Still receives frames" is checked two ways: every session answers a ``ping`` (its send path
is alive), and a *fresh* viewer's conversation reaches the agent with a chat line both ways
(events flow, routing still assigns to that agent, and whatever the attack stored does not
poison what the agent, the viewer or an admin are sent next).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from tests.conftest import Running
from tests.wsclient import WSClient

_n = itertools.count(1)


@dataclass
class Scene:
    gw: Running
    room: str
    viewer: WSClient
    agent: WSClient
    admin: WSClient
    host: WSClient
    conversation: str
    agent_user: str = "agent-sec"
    extra: list[WSClient] = field(default_factory=list)

    @property
    def sessions(self) -> dict[str, WSClient]:
        return {"viewer": self.viewer, "agent": self.agent, "admin": self.admin,
                "host": self.host}

    async def assert_alive(self, *, fresh_viewer: bool = True, poisoned: bool = False) -> None:
        """Every session answers, and (``fresh_viewer``) a new viewer's conversation reaches
        the agent and the agent's reply reaches that viewer; an admin can list everything.

        ``poisoned``: unencodable data was planted below the edge, so a reply that would
        carry it (the admin's list) may be the typed ``internal`` stand-in, never silence."""
        for role, c in self.sessions.items():
            pong = await c.request("ping", timeout=5)
            assert pong["type"] == "pong", (role, pong)
        lst = await self.admin.request("conversation.list", timeout=5)
        assert lst["type"] == "conversations" or (poisoned and lst.get("code") == "internal"), lst
        got = await self.viewer.request("conversation.get", conversation=self.conversation,
                                        timeout=5)
        assert got["type"] == "conversation" or (poisoned and got.get("code") == "internal"), got
        if not fresh_viewer:
            return
        n = next(_n)
        v = await self.gw.client("viewer", f"sec-bystander-{n}", room=self.room,
                                 name=f"Bystander {n}")
        self.extra.append(v)
        conv = await v.request("conversation.open", room=self.room)
        assert conv["type"] == "conversation", conv
        cid = conv["conversation"]
        mark = len(self.agent.frames)
        r = await v.request("conversation.escalate", conversation=cid, reason="wants a person")
        assert r["type"] == "ack", r
        await self.agent.wait_for(lambda f: f.get("type") == "conversation.assigned"
                                  and f.get("conversation") == cid, timeout=5, start=mark)
        await v.event("conversation.state", state="assigned", conversation=cid)
        r = await self.agent.request("message.send", conversation=cid, text=f"hello {n}",
                                     client_msg_id=f"sec-{n}")
        assert r["type"] == "message", r
        await v.wait_for(lambda f: f.get("type") == "message" and f.get("text") == f"hello {n}")
        r = await self.agent.request("conversation.resolve", conversation=cid)
        assert r["type"] == "ack", r
        await v.close()


async def build_scene(gw: Running, agent_user: str = "agent-sec") -> Scene:
    room = gw.room_id
    agent = await gw.client("agent", agent_user, name="Alice")
    r = await agent.request("agent.status", status="available")
    assert r["type"] == "ack", r
    admin = await gw.client("admin", "admin-sec", name="Boss")
    host = await gw.client("host", "host-sec", room=room, name="Host")
    r = await host.request("room.watch", room=room)
    assert r["type"] == "room.state", r
    viewer = await gw.client("viewer", "viewer-sec", room=room, name="Ann")
    conv = await viewer.request("conversation.open", room=room)
    cid = conv["conversation"]
    r = await viewer.request("conversation.escalate", conversation=cid, reason="help")
    assert r["type"] == "ack", r
    await agent.event("conversation.assigned", conversation=cid)
    return Scene(gw, room, viewer, agent, admin, host, cid, agent_user)
