"""LLMResponder against a real (tiny) aiohttp server speaking the OpenAI chat-completions API."""

import asyncio
import json

import pytest
from aiohttp import web

from gateway.support.bot.llm import LLMResponder, parse_answer
from gateway.support.responder import BotQuery


class FakeOpenAI:
    def __init__(self) -> None:
        self.mode = "ok"
        self.answer = {"intent": "stock", "escalate": False, "reply": "还有9件哦"}
        self.requests: list[dict] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"body": body, "auth": request.headers.get("Authorization")})
        if self.mode == "slow":
            await asyncio.sleep(2)
        if self.mode == "error":
            return web.json_response({"error": "boom"}, status=500)
        content = "not json at all" if self.mode == "garbage" else json.dumps(self.answer, ensure_ascii=False)
        return web.json_response({"id": "x", "object": "chat.completion",
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


@pytest.fixture
async def fake():
    f = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", f.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    f.url = f"http://127.0.0.1:{port}"
    yield f
    await runner.cleanup()


@pytest.fixture
async def llm(fake, bot):
    r = LLMResponder(fake.url, model="test-model", api_key="sk-test", timeout=0.5, fallback=bot)
    yield r
    await r.close()


async def test_uses_model_answer_and_sends_knowledge(llm, fake, kb_b):
    r = await llm.respond(BotQuery(text="粉底液还有吗", history=[], knowledge=kb_b))
    assert (r.intent, r.escalate, r.text) == ("stock", False, "还有9件哦")
    assert r.slots["source"] == "llm"
    req = fake.requests[0]
    assert req["auth"] == "Bearer sk-test" and req["body"]["model"] == "test-model"
    system = req["body"]["messages"][0]["content"]
    assert "MEIMEI30" in system and "持妆粉底液" in system


async def test_rules_escalation_wins_over_model(llm, fake, kb_b):
    fake.answer = {"intent": "complaint", "escalate": False, "reply": "抱歉"}
    r = await llm.respond(BotQuery(text="用了面膜脸上过敏起疹子了", history=[], knowledge=kb_b))
    assert r.escalate is True and r.slots["escalation_overridden_by_rules"]


@pytest.mark.parametrize("mode", ["slow", "error", "garbage"])
async def test_falls_back_to_offline_bot(llm, fake, kb_b, mode):
    fake.mode = mode
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await llm.respond(BotQuery(text="粉底液还有货吗", history=[], knowledge=kb_b))
    assert loop.time() - t0 < 1.5
    assert r.slots["source"] == "offline-fallback"
    assert r.intent == "stock" and "9" in r.text


async def test_invalid_intent_falls_back(llm, fake, kb_b):
    fake.answer = {"intent": "chitchat", "escalate": False, "reply": "hi"}
    r = await llm.respond(BotQuery(text="卷发棒多少钱", history=[], knowledge=kb_b))
    assert r.slots["source"] == "offline-fallback" and r.intent == "price_promo"


def test_parse_answer_tolerates_fences():
    a = parse_answer('```json\n{"intent": "greeting", "escalate": false, "reply": "hi"}\n```')
    assert a["intent"] == "greeting"
    with pytest.raises(ValueError):
        parse_answer('{"intent": "greeting", "escalate": "no", "reply": "hi"}')
