"""Issue 2, end to end: a viewer page and an agent page chat after escalation.

Viewer (390×844 phone) types, the bot answers, the viewer taps "talk to a person"; the agent
console (1440×900) shows the assignment and its context; the agent replies and the viewer
sees it. Then the viewer's socket is killed: the page resumes its session and shows a
message the agent sent meanwhile, with nothing lost.
"""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, PHONE, open_page, wait_online

pytestmark = pytest.mark.browser

T = 10_000


async def test_viewer_and_agent_chat_after_escalation(gw, browser, artifacts):
    logs: list[str] = []
    agent = await open_page(browser, f"{gw.url}/agent?user=agent-e2e&name=Alice", DESKTOP, logs=logs)
    await wait_online(agent)
    viewer = await open_page(browser, f"{gw.url}/?user=viewer-e2e&name=小王", PHONE, phone=True, logs=logs)
    await wait_online(viewer)

    # the agent's status switch defaults to available and the server knows it
    await agent.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=agent-item]')].length > 0", timeout=T)
    assert await agent.locator('[data-testid="agent-status"]').input_value() == "available"

    # viewer opens support, asks, the bot answers (bot line marked)
    await viewer.click('[data-testid="open-support"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="bot"]', timeout=T)
    await viewer.fill('[data-testid="chat-input"]', "这件卫衣有M码吗")
    await viewer.press('[data-testid="chat-input"]', "Enter")
    await viewer.wait_for_selector('[data-testid="msg-mine"] >> text=这件卫衣有M码吗', timeout=T)
    await viewer.wait_for_selector('[data-testid="msg-bot"]', timeout=T)

    # "talk to a person" → queued → assigned to the agent
    await viewer.click('[data-testid="talk-to-person"]')
    await viewer.wait_for_selector('[data-testid="conv-state"][data-state="assigned"]', timeout=T)
    await viewer.wait_for_selector('[data-testid="msg-local-notice"] >> text=Alice', timeout=T)

    # the console shows the assignment with the chat so far (bot part marked) and context
    await agent.wait_for_selector('[data-testid="conv-item"][data-state="assigned"]', timeout=T)
    await agent.wait_for_selector('[data-testid="chat-state"][data-state="assigned"]', timeout=T)
    await agent.wait_for_selector('[data-testid="chat-log"] >> text=这件卫衣有M码吗', timeout=T)
    assert await agent.locator('[data-testid="chat-log"] [data-testid="msg-bot"]').count() >= 1
    assert await agent.locator('[data-testid="bot-part-label"]').count() == 1
    assert "小王" in await agent.locator('[data-testid="ctx-viewer"]').inner_text()
    assert await agent.locator('[data-testid="ctx-reason"]').inner_text() != ""
    assert await agent.locator('[data-testid="ctx-timeline"]').count() == 1
    assert await agent.locator('[data-testid="ctx-orders"]').count() == 1

    # agent replies, viewer sees it
    await agent.fill('[data-testid="chat-input"]', "您好，我是Alice，M码有货的")
    await agent.press('[data-testid="chat-input"]', "Enter")
    await viewer.wait_for_selector('[data-testid="msg-agent"] >> text=M码有货的', timeout=T)
    await agent.wait_for_selector('[data-testid="human-part-label"]', timeout=T)

    await viewer.screenshot(path=str(artifacts / "e2e_chat_viewer.png"))
    await agent.screenshot(path=str(artifacts / "e2e_chat_agent.png"))

    # kill the viewer's socket (and keep it away for a moment), agent sends meanwhile
    await viewer.evaluate("""() => {
        const c = window.__ld.client;
        window.__savedUrls = c.urls;
        c.urls = ['ws://127.0.0.1:9/ws'];
        c.dropSocket();
    }""")
    await viewer.wait_for_selector('[data-testid="conn-state"][data-state="reconnecting"]',
                                   state="attached", timeout=T)
    sess = await viewer.evaluate("window.__ld.client.session")
    await agent.fill('[data-testid="chat-input"]', "断线期间发送的消息")
    await agent.press('[data-testid="chat-input"]', "Enter")
    await agent.wait_for_selector('[data-testid="msg-mine"] >> text=断线期间发送的消息', timeout=T)
    await viewer.screenshot(path=str(artifacts / "e2e_chat_viewer_reconnecting.png"))
    await viewer.evaluate("() => { window.__ld.client.urls = window.__savedUrls; }")
    await wait_online(viewer, timeout=15_000)
    await viewer.wait_for_selector('[data-testid="msg-agent"] >> text=断线期间发送的消息', timeout=T)
    stats = await viewer.evaluate("window.__ld.client.stats")
    assert stats["resumes"] == 1 and stats["fresh"] == 0, stats
    assert await viewer.evaluate("window.__ld.client.session") == sess
    # nothing duplicated
    assert await viewer.locator('[data-testid="msg-agent"]').count() == 2

    # and the viewer can still talk
    await viewer.fill('[data-testid="chat-input"]', "收到，谢谢")
    await viewer.press('[data-testid="chat-input"]', "Enter")
    await agent.wait_for_selector('[data-testid="chat-log"] >> text=收到，谢谢', timeout=T)
    await viewer.screenshot(path=str(artifacts / "e2e_chat_viewer_resumed.png"))
    errors = [l for l in logs if l.startswith("pageerror")]
    assert not errors, errors
