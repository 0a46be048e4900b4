"""Shared helpers for the workspace tests: a deterministic responder, metric scraping and
the usual "viewer escalates, agent gets it" choreography."""

from __future__ import annotations

import itertools
import re

from prometheus_client.parser import text_string_to_metric_families

from gateway.support.responder import BotQuery, BotReply
from tests.backends import MEMORY, Backend
from tests.conftest import Running, start_gateway

ORDER_ID = re.compile(r"\d{10,}")


class StubResponder:
    """Mood and intent from keywords, so tests decide what the bot judged.

    ``angry``/``negative`` in the text set the mood; ``人工`` escalates; ``where``/``物流``
    is a logistics question, ``退货`` a return question (order ids are picked up as slots).
    """

    async def respond(self, q: BotQuery) -> BotReply:
        t = q.text
        mood = "angry" if "angry" in t else "negative" if "negative" in t else "neutral"
        slots = {}
        if m := ORDER_ID.search(t):
            slots["order_id"] = m.group(0)
        if "where" in t or "物流" in t:
            return BotReply("logistics", False, "物流一般48小时内发货。", mood=mood, slots=slots)
        if "退货" in t:
            return BotReply("return_refund", False, "支持七天无理由退货。", mood=mood, slots=slots)
        esc = "人工" in t
        return BotReply("human_request" if esc else "other", esc, "stub", mood=mood, slots=slots)


async def start(backend: Backend = MEMORY, **config) -> Running:
    """A dev gateway on ``backend`` with the stub responder (memory for the suites that are
    not about parity: abuse, e2e)."""
    config.setdefault("retain_s", 600)
    return await start_gateway(backend.config(**config), responder=StubResponder())


async def scrape(gw) -> dict[tuple[str, frozenset], float]:
    async with gw.http.get(gw.url + "/metrics") as r:
        text = await r.text()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def val(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset({k: str(v) for k, v in labels.items()}.items())), 0.0)


def delta(before: dict, after: dict) -> dict[tuple[str, frozenset], float]:
    """Every sample that changed (gauges/counters/histogram parts), with its change."""
    keys = set(before) | set(after)
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in keys
            if after.get(k, 0.0) != before.get(k, 0.0) and not k[0].endswith("_created")}


def changed_names(d: dict) -> set[str]:
    return {k[0] for k in d}


async def viewer(gw, user="v1", name=None):
    v = await gw.client("viewer", user, room=gw.room_id, name=name or user)
    conv = await v.request("conversation.open", room=gw.room_id)
    return v, conv["conversation"]


async def agent(gw, user="a1", status="available"):
    a = await gw.client("agent", user, name="Agent " + user)
    if status:
        r = await a.request("agent.status", status=status)
        assert r["type"] == "ack", r
    return a


async def escalated(gw, v, cid, a, text="我要转人工"):
    """Viewer asks for a person (bot escalates) and agent ``a`` is assigned; returns the
    agent's ``conversation.assigned`` frame."""
    r = await v.request("message.send", conversation=cid, text=text, client_msg_id="esc-" + cid)
    assert r["type"] == "message", r
    return await a.event("conversation.assigned", conversation=cid)


_said = itertools.count(1)


async def say(c, cid, text):
    r = await c.request("message.send", conversation=cid, text=text,
                        client_msg_id=f"t{next(_said)}")
    assert r["type"] == "message", r
    return r
