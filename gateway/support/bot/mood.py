"""Viewer mood: positive, neutral, negative or angry, for the agent console and routing.

Owns one small judgement from the normalised message, the chosen intent and the
escalation reasons: anger/insults/threats -> angry; complaints, compensation demands and
health reports -> negative; warm greetings and praise -> positive; else neutral.
"""

from __future__ import annotations

import re

_POS = re.compile(r"喜欢|爱了|好看|漂亮|太棒|真棒|赞|支持|谢谢|感谢|好评|开心|哈哈|❤|💕|😍|👍|"
                  r"love|great|awesome|amazing|thanks|thank you|nice|beautiful|cute|perfect|😊")
_NEG = re.compile(r"失望|不满|差|烦|后悔|难过|无语|disappoint|bad|poor|unhappy|sad|upset")


def detect_mood(text: str, intent: str, reasons: list[str]) -> str:
    r = set(reasons)
    if r & {"anger", "threat"}:
        return "angry"
    if intent == "complaint" or r & {"compensation", "health"} or _NEG.search(text):
        return "negative"
    if _POS.search(text) or intent == "greeting":
        return "positive"
    return "neutral"
