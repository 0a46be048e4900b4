"""Issue 13, finding 1 end to end: a lone surrogate never silences a real agent console.

The agent console runs in headless Chromium; viewers are raw protocol clients, because a
browser cannot put an unpaired surrogate on the wire (it would send U+FFFD) while a hostile
script can send the JSON escape ``"\\ud800"``. The viewer tries the poison in a conversation
``name``, an escalation ``reason`` and chat ``text``: each is a typed ``bad_request`` and
nothing is stored. The console stays online, keeps showing that viewer's next good line,
then receives the next viewer's conversation and answers it. Before the fix the first
stored poison made the console's session drop every later frame while showing "online"
(and a reload replayed the poison, "reconnecting" for ever): no later line, no next viewer.
"""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, open_page, wait_online

pytestmark = pytest.mark.browser

T = 10_000
LONE = "\ud800"


async def test_agent_console_keeps_working_after_a_lone_surrogate(gw, browser, artifacts):
    logs: list[str] = []
    room = gw.room_id
    agent = await open_page(browser, f"{gw.url}/agent?user=agent-hx&name=Alice", DESKTOP, logs=logs)
    await wait_online(agent)
    await agent.wait_for_selector('[data-testid="agent-item"][data-user="agent-hx"][data-status="available"]',
                                  timeout=T)

    v1 = await gw.client("viewer", "viewer-hx1", room=room, name="Mallory")
    e = await v1.request("conversation.open", room=room, name=f"Mal{LONE}lory")
    assert e["type"] == "error" and e["code"] == "bad_request" and "'name'" in e["message"], e
    conv = await v1.request("conversation.open", room=room)
    c1 = conv["conversation"]
    e = await v1.request("conversation.escalate", conversation=c1, reason=f"angry{LONE}")
    assert e["type"] == "error" and e["code"] == "bad_request" and "'reason'" in e["message"], e
    r = await v1.request("message.send", conversation=c1, text="第一句正常的话", client_msg_id="hx-1")
    assert r["type"] == "message", r
    assert (await v1.request("conversation.escalate", conversation=c1, reason="wants a person"))["type"] == "ack"
    await agent.wait_for_selector(f'[data-testid="conv-item"][data-conversation="{c1}"]', timeout=T)
    await agent.click(f'[data-testid="conv-item"][data-conversation="{c1}"]')
    await agent.wait_for_selector('[data-testid="chat-log"] >> text=第一句正常的话', timeout=T)

    # the poison in chat text, after assignment (the agent would be sent it at once)
    e = await v1.request("message.send", conversation=c1, text=f"坏{LONE}字", client_msg_id="hx-2")
    assert e["type"] == "error" and e["code"] == "bad_request" and "surrogate" in e["message"], e
    r = await v1.request("message.send", conversation=c1, text="之后的一句", client_msg_id="hx-3")
    assert r["type"] == "message", r
    await agent.wait_for_selector('[data-testid="chat-log"] >> text=之后的一句', timeout=T)
    await agent.wait_for_selector('[data-testid="conn-state"][data-state="online"]', state="attached",
                                  timeout=T)

    # the next viewer's conversation reaches the console, and the console answers it
    v2 = await gw.client("viewer", "viewer-hx2", room=room, name="Bob")
    c2 = (await v2.request("conversation.open", room=room))["conversation"]
    assert (await v2.request("message.send", conversation=c2, text="有人吗", client_msg_id="b-1"))["type"] == "message"
    assert (await v2.request("conversation.escalate", conversation=c2, reason="wants a person"))["type"] == "ack"
    await agent.wait_for_selector(f'[data-testid="conv-item"][data-conversation="{c2}"]', timeout=T)
    await agent.click(f'[data-testid="conv-item"][data-conversation="{c2}"]')
    await agent.wait_for_selector('[data-testid="chat-log"] >> text=有人吗', timeout=T)
    await agent.fill('[data-testid="chat-input"]', "您好，我是Alice")
    await agent.press('[data-testid="chat-input"]', "Enter")
    await v2.wait_for(lambda f: f.get("type") == "message" and f.get("text") == "您好，我是Alice")
    await agent.screenshot(path=str(artifacts / "hostile_text_agent.png"))

    # a reload (a resume or a fresh session) shows the console online with both
    # conversations, and never the poison
    await agent.reload()
    await wait_online(agent)
    await agent.wait_for_selector(f'[data-testid="conv-item"][data-conversation="{c2}"]', timeout=T)
    assert LONE not in await agent.content()
    assert not [line for line in logs if line.startswith("pageerror")], logs
