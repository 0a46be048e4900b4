"""Canned replies for agents: from the room FAQ and a team list, with live placeholders.

Placeholders are filled at *send* time from the room's live state, so a reply saved an hour
ago still quotes the gifts left right now:

``{promo.<id>.left|claimed|limit|code|gift|amount|threshold|text}``,
``{product.<sku>.stock|price|name|list_price|ships_within_hours}``,
``{room.title|host}``. An unknown placeholder is a typed ``bad_request`` naming it, never
a silently wrong number sent to a viewer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signaling import ErrorCode, ProtocolError

from .room import Room

PLACEHOLDER = re.compile(r"\{(promo|product|room)(?:\.([A-Za-z0-9_+\-]+))?\.([a-z_]+)\}")

DEFAULT_TEAM_REPLIES = [
    {"id": "team-greet", "title": "问候 / Greeting",
     "text": "您好，我是客服，很高兴为您服务！请问有什么可以帮您？"},
    {"id": "team-wait", "title": "稍等 / One moment",
     "text": "收到，我帮您查一下，请稍等片刻～"},
    {"id": "team-bye", "title": "结束 / Closing",
     "text": "还有其他问题随时找我们，祝您购物愉快！"},
]


@dataclass
class CannedReply:
    id: str
    title: str
    text: str
    source: str  # "faq" | "team"

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "source": self.source}


def load_team_replies(path: Path | None) -> list[CannedReply]:
    items = DEFAULT_TEAM_REPLIES
    if path is not None:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
    return [CannedReply(str(i["id"]), str(i.get("title", i["id"])), str(i["text"]), "team")
            for i in items]


def room_replies(room: Room) -> list[CannedReply]:
    """FAQ answers plus live templates generated from the room's promotions and products."""
    kb = room.knowledge
    out = [CannedReply(f"faq-{i}", f.q, f.a, "faq") for i, f in enumerate(kb.faq)]
    for p in kb.promotions:
        if p.kind == "first_n_gift":
            out.append(CannedReply(f"promo-{p.id}", f"名额 {p.id}",
                                   f"{p.text}（目前还剩 {{promo.{p.id}.left}} 个名额）", "faq"))
        elif p.kind == "coupon":
            out.append(CannedReply(f"promo-{p.id}", f"券码 {p.id}",
                                   f"券码 {{promo.{p.id}.code}}：{p.text}", "faq"))
    for prod in kb.products:
        out.append(CannedReply(f"stock-{prod.sku}", f"库存 {prod.name}",
                               f"{prod.name}现在还有 {{product.{prod.sku}.stock}} 件，"
                               f"价格 {{product.{prod.sku}.price}} 元。", "faq"))
    return out


def search(replies: list[CannedReply], q: str | None) -> list[CannedReply]:
    if not q:
        return replies
    ql = q.lower()
    return [r for r in replies if ql in r.title.lower() or ql in r.text.lower()]


def fill(text: str, room: Room) -> str:
    kb = room.knowledge

    def sub(m: re.Match) -> str:
        scope, key, attr = m.group(1), m.group(2), m.group(3)
        if scope == "room":
            if key is not None or attr not in ("title", "host"):
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown placeholder {m.group(0)}")
            return str(getattr(kb.room, attr))
        if scope == "promo":
            p = kb.promotion(key or "")
            if p is None:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown promotion in {m.group(0)}")
            if attr == "left":
                prod = kb.product(p.sku) if p.sku else None
                return str(p.gifts_left(prod.stock if prod else None))
            if attr in ("claimed", "limit", "code", "gift", "amount", "threshold", "text"):
                v = getattr(p, attr)
                return "" if v is None else _num(v)
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown placeholder {m.group(0)}")
        prod = kb.product(key or "")
        if prod is None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown sku in {m.group(0)}")
        if attr in ("stock", "price", "name", "list_price", "ships_within_hours"):
            v = getattr(prod, attr)
            return "" if v is None else _num(v)
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown placeholder {m.group(0)}")

    return PLACEHOLDER.sub(sub, text)


def _num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
