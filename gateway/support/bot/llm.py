"""LLMResponder: answer with any OpenAI-compatible chat-completions endpoint, safely.

Owns calling ``POST {base_url}/v1/chat/completions`` with aiohttp: the room knowledge goes
into the system prompt as JSON, the model must answer with a JSON object
``{"intent", "escalate", "reply"}``. The offline bot is always computed first (it is
sub-millisecond) and is the fallback on timeout, HTTP error, invalid JSON or an unknown
intent. Safety: if the offline escalation rules say escalate, the reply escalates
whatever the model says (and ``human_request`` always escalates).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import aiohttp

from ..responder import INTENTS, BotQuery, BotReply
from .bot import OfflineBot
from .normalize import detect_lang

log = logging.getLogger(__name__)

SYSTEM_PROMPT = """You are the customer-support assistant of a live-shopping stream (直播带货).
Answer the viewer's latest message using ONLY the room knowledge below; it is the live state
(stock, gift quota = limit - claimed, coupons, ship windows, policies). Never invent numbers.
Reply in the viewer's language ({lang}). Pick exactly one intent from: {intents}.
Set escalate=true if the viewer asks for a human/phone/voice/video call/连麦, is angry or insulting,
threatens a bad review, a report (12315, 消协, platform), legal action or a chargeback, demands
compensation (赔偿, 补差价, 精神损失费), or reports a health/safety problem (allergy, rash, burn,
food poisoning, overheating). Otherwise escalate=false.
Respond with one JSON object only: {{"intent": "...", "escalate": true|false, "reply": "..."}}.
Room knowledge (JSON):
{kb}"""


class LLMResponder:
    """A :class:`~gateway.support.responder.Responder` backed by an OpenAI-compatible API."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 3.0,
                 fallback: OfflineBot | None = None, session: aiohttp.ClientSession | None = None,
                 temperature: float = 0.2) -> None:
        base = base_url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else (
            base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions"))
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.temperature = temperature
        self.fallback = fallback or OfflineBot()
        self._session = session
        self._own_session = session is None

    def warm_up(self) -> float:
        return self.fallback.warm_up()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    def _messages(self, query: BotQuery, lang: str) -> list[dict[str, str]]:
        kb = json.dumps(query.knowledge.to_dict(), ensure_ascii=False)
        msgs = [{"role": "system", "content": SYSTEM_PROMPT.format(lang=lang, intents=", ".join(INTENTS), kb=kb)}]
        for h in query.history[-6:]:
            msgs.append({"role": "user", "content": h})
        msgs.append({"role": "user", "content": query.text})
        return msgs

    async def _call(self, query: BotQuery, lang: str) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "messages": self._messages(query, lang), "temperature": self.temperature,
                "response_format": {"type": "json_object"}}
        async with self._session.post(self.url, json=body, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
            resp.raise_for_status()
            data = await resp.json(content_type=None)
        content = data["choices"][0]["message"]["content"]
        return parse_answer(content)

    async def respond(self, query: BotQuery) -> BotReply:
        offline = self.fallback.answer(query)
        lang = query.lang if query.lang in ("zh", "en") else detect_lang(query.text)
        try:
            ans = await asyncio.wait_for(self._call(query, lang), timeout=self.timeout + 0.5)
        except Exception as e:  # noqa: BLE001 - any failure means: use the offline answer
            log.warning("LLM responder failed (%s: %s); using the offline bot", type(e).__name__, e)
            offline.slots["source"] = "offline-fallback"
            return offline
        intent = ans["intent"]
        escalate = bool(ans["escalate"]) or offline.escalate or intent == "human_request"
        slots = dict(offline.slots)
        slots["source"] = "llm"
        if offline.escalate and not ans["escalate"]:
            slots["escalation_overridden_by_rules"] = True
        return BotReply(intent=intent, escalate=escalate, text=ans["reply"], mood=offline.mood, lang=lang,
                        slots=slots)


def parse_answer(content: str) -> dict[str, Any]:
    """The model's JSON answer, validated; raises ValueError when it is not usable."""
    text = content.strip()
    m = re.search(r"\{.*\}", text, re.S)  # tolerate ```json fences and chatter around the object
    if not m:
        raise ValueError("no JSON object in the model's answer")
    obj = json.loads(m.group(0))
    if not isinstance(obj, dict):
        raise ValueError("answer is not an object")
    intent, esc, reply = obj.get("intent"), obj.get("escalate"), obj.get("reply")
    if intent not in INTENTS:
        raise ValueError(f"unknown intent {intent!r}")
    if not isinstance(esc, bool):
        raise ValueError("escalate must be a boolean")
    if not isinstance(reply, str) or not reply.strip():
        raise ValueError("reply must be a non-empty string")
    return {"intent": intent, "escalate": esc, "reply": reply.strip()}
