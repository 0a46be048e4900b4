"""Room knowledge: the typed form of a room knowledge-base file.

Owns parsing and serialising the KB format of ``shared/bot/README.md`` (room, products,
promotions, policies, FAQ). These are plain value objects: the *live* copy that hosts and
shop events change is :class:`gateway.support.room.Room`, which holds one of these and is
the only thing allowed to mutate it. Keeping the format here means the bot, the room, the
bot-eval CLI and the Redis seeding all read a KB the same way.

Unknown keys are preserved in ``extra`` so a shop can extend the format without us
dropping their data when we write the state back (e.g. into Redis).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

PROMOTION_KINDS = ("first_n_gift", "discount", "coupon", "bundle")
# the longest text each promotion field may hold (characters); the whole promotion is also
# bounded as JSON (``promotion_max_bytes``, checked by ``check_promotion_size``)
PROMOTION_TEXT_CHARS = {"id": 64, "kind": 16, "text": 500, "gift": 100, "sku": 200,
                        "code": 64, "ends_at": 40}


class KnowledgeError(ValueError):
    """A KB file that does not follow the format; the message names the field."""


def _promo_field(name: str, v: Any) -> Any:
    """One promotion field, typed, or :class:`KnowledgeError` naming it. Why typed: a
    ``threshold`` of ``"abc"`` was accepted and then broke the bot for everyone asking
    about discounts (it formats numbers); what the bot reads must be what it expects."""
    if v is None:
        if name in ("id", "kind"):
            raise KnowledgeError(f"promotion {name!r} must not be null")
        return None
    if name in PROMOTION_TEXT_CHARS:
        if not isinstance(v, str):
            raise KnowledgeError(f"promotion {name!r} must be a string, got {type(v).__name__}")
        if len(v) > PROMOTION_TEXT_CHARS[name]:
            raise KnowledgeError(f"promotion {name!r} is {len(v)} characters; the limit is "
                                 f"{PROMOTION_TEXT_CHARS[name]}")
        return v
    if name == "starts_at":
        return _instant(v)
    if name == "active":
        if not isinstance(v, bool):
            raise KnowledgeError("promotion 'active' must be true or false")
        return v
    # numbers: limit and claimed are counts, threshold and amount money (or a quantity)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise KnowledgeError(f"promotion {name!r} must be a number ≥ 0, got {v!r}"[:160])
    if name in ("limit", "claimed"):
        if v != int(v):
            raise KnowledgeError(f"promotion {name!r} must be a whole number, got {v!r}")
        return int(v)
    return v


def _instant(v: Any) -> float:
    """A promotion's ``starts_at``: Unix seconds, or an ISO 8601 time with its offset."""
    if isinstance(v, str):
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            raise KnowledgeError(f"promotion 'starts_at' is not an ISO 8601 time: {v!r}"[:160]) from None
        if t.tzinfo is None:
            raise KnowledgeError("promotion 'starts_at' needs a UTC offset (e.g. +08:00)")
        return t.timestamp()
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise KnowledgeError(f"promotion 'starts_at' must be Unix seconds or an ISO 8601 time, "
                             f"got {v!r}"[:160])
    return float(v)


def check_promotion_size(d: dict[str, Any], max_bytes: int) -> None:
    """A promotion (its JSON, extras included) over ``max_bytes`` is refused: every
    viewer's ``room.state`` carries every promotion (one host's 4 MB extra field grew each
    new viewer's first frame to 4 MB)."""
    if max_bytes <= 0:
        return
    size = len(json.dumps(d, ensure_ascii=False).encode("utf-8"))
    if size > max_bytes:
        raise KnowledgeError(f"promotion {str(d.get('id'))[:64]!r} is {size} bytes as JSON; "
                             f"the limit is {max_bytes}")


@dataclass
class SizeRow:
    size: str
    height_cm: tuple[float, float] | None = None
    weight_kg: tuple[float, float] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SizeRow:
        def rng(key: str) -> tuple[float, float] | None:
            v = d.get(key)
            if v is None:
                return None
            if not (isinstance(v, list) and len(v) == 2):
                raise KnowledgeError(f"size_chart.{key} must be [min, max]")
            return (float(v[0]), float(v[1]))

        return cls(size=str(d["size"]), height_cm=rng("height_cm"), weight_kg=rng("weight_kg"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size}
        if self.height_cm is not None:
            out["height_cm"] = list(self.height_cm)
        if self.weight_kg is not None:
            out["weight_kg"] = list(self.weight_kg)
        return out


@dataclass
class Product:
    sku: str
    name: str
    price: float
    list_price: float | None = None
    stock: int = 0
    sizes: list[str] = field(default_factory=list)
    size_chart: list[SizeRow] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    ships_within_hours: int | None = None
    # other names viewers use: English, pinyin, a nickname ("rice", "dami", "五常米");
    # optional (older knowledge files have none). An English alias names the product in
    # English replies.
    aliases: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN = ("sku", "name", "price", "list_price", "stock", "sizes", "size_chart",
              "attributes", "ships_within_hours", "aliases")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Product:
        try:
            return cls(
                sku=str(d["sku"]),
                name=str(d["name"]),
                price=d.get("price") or 0,
                list_price=d.get("list_price"),
                stock=int(d.get("stock") or 0),
                sizes=[str(s) for s in d.get("sizes") or []],
                size_chart=[SizeRow.from_dict(r) for r in d.get("size_chart") or []],
                attributes={str(k): str(v) for k, v in (d.get("attributes") or {}).items()},
                ships_within_hours=d.get("ships_within_hours"),
                aliases=[str(a) for a in d.get("aliases") or [] if str(a).strip()],
                extra={k: v for k, v in d.items() if k not in cls._KNOWN},
            )
        except KeyError as e:
            raise KnowledgeError(f"product is missing field {e.args[0]!r}") from None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.extra)
        out.update(
            sku=self.sku, name=self.name, price=self.price, list_price=self.list_price,
            stock=self.stock, sizes=list(self.sizes),
            attributes=dict(self.attributes), ships_within_hours=self.ships_within_hours,
        )
        if self.size_chart:
            out["size_chart"] = [r.to_dict() for r in self.size_chart]
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out

    def display_name(self, lang: str | None) -> str:
        """The name a reply uses: the first English alias in English, else the name."""
        if lang == "en":
            for a in self.aliases:
                if a.isascii():
                    return a
        return self.name


@dataclass
class Promotion:
    id: str
    kind: str
    text: str = ""
    limit: int | None = None
    claimed: int | None = None
    gift: str | None = None
    sku: str | None = None
    threshold: float | None = None
    amount: float | None = None
    code: str | None = None
    ends_at: str | None = None
    # when the sale begins (Unix seconds; ISO 8601 with an offset is accepted and converted):
    # surge mode warns agents before it and starts at it (surge.py)
    starts_at: float | None = None
    active: bool = True  # extension: hosts can stop a promotion without deleting it
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN = ("id", "kind", "text", "limit", "claimed", "gift", "sku", "threshold",
              "amount", "code", "ends_at", "starts_at", "active")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Promotion:
        if not isinstance(d, dict):
            raise KnowledgeError("a promotion must be an object")
        if "id" not in d or "kind" not in d:
            raise KnowledgeError("promotion needs 'id' and 'kind'")
        if d["kind"] not in PROMOTION_KINDS:
            raise KnowledgeError(f"promotion kind must be one of {PROMOTION_KINDS}, got {d['kind']!r}"[:200])
        typed = {k: _promo_field(k, d[k]) for k in cls._KNOWN if k in d}
        if not typed["id"]:
            raise KnowledgeError("promotion 'id' must not be empty")
        p = cls(**{k: v for k, v in typed.items() if k != "active"})
        p.active = typed.get("active") is not False
        if p.kind == "first_n_gift":
            p.limit = int(p.limit or 0)
            p.claimed = int(p.claimed or 0)
        p.extra = {k: v for k, v in d.items() if k not in cls._KNOWN}
        return p

    @property
    def skus(self) -> list[str]:
        """The SKUs the promotion names (a bundle's ``A002+A004`` is two)."""
        return [s for s in (self.sku or "").split("+") if s]

    def gifts_left(self, stock: int | None = None) -> int | None:
        """Remaining first-N quota; when the gift is tied to a SKU, never more than its stock."""
        if self.kind != "first_n_gift":
            return None
        left = max(0, (self.limit or 0) - (self.claimed or 0))
        if stock is not None:
            left = min(left, max(0, stock))
        return left

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.extra)
        out.update({k: getattr(self, k) for k in self._KNOWN})
        return out


@dataclass
class FaqEntry:
    q: str
    a: str
    intent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"q": self.q, "a": self.a, "intent": self.intent}


@dataclass
class RoomInfo:
    id: str
    title: str = ""
    host: str = ""
    currency: str = "CNY"


@dataclass
class Knowledge:
    """One room's knowledge base, as loaded from a KB file."""

    room: RoomInfo
    products: list[Product] = field(default_factory=list)
    promotions: list[Promotion] = field(default_factory=list)
    policies: dict[str, str] = field(default_factory=dict)
    faq: list[FaqEntry] = field(default_factory=list)
    on_screen: str | None = None  # extension: SKU the host is showing now

    def check_size(self, max_bytes: int, max_promotion_bytes: int = 0,
                   max_promotions: int = 0) -> None:
        """Refuse (:class:`KnowledgeError`) a knowledge base over the room limits: its whole
        JSON over ``max_bytes``, a promotion over ``max_promotion_bytes``, more than
        ``max_promotions`` promotions (0: that limit off). Checked on load and after every
        host change, so what a room holds (and sends each new viewer) stays bounded."""
        if max_promotions > 0 and len(self.promotions) > max_promotions:
            raise KnowledgeError(f"{len(self.promotions)} promotions; the limit is "
                                 f"{max_promotions}")
        for p in self.promotions:
            check_promotion_size(p.to_dict(), max_promotion_bytes)
        if max_bytes > 0:
            size = len(json.dumps(self.to_dict(), ensure_ascii=False).encode("utf-8"))
            if size > max_bytes:
                raise KnowledgeError(f"the room's knowledge is {size} bytes as JSON; the limit "
                                     f"is {max_bytes}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Knowledge:
        if not isinstance(d, dict) or not isinstance(d.get("room"), dict) or "id" not in d["room"]:
            raise KnowledgeError("KB must be an object with room.id")
        r = d["room"]
        kb = cls(
            room=RoomInfo(id=str(r["id"]), title=str(r.get("title", "")),
                          host=str(r.get("host", "")), currency=str(r.get("currency", "CNY"))),
            products=[Product.from_dict(p) for p in d.get("products") or []],
            promotions=[Promotion.from_dict(p) for p in d.get("promotions") or []],
            policies={str(k): str(v) for k, v in (d.get("policies") or {}).items()},
            faq=[FaqEntry(q=str(f.get("q", "")), a=str(f.get("a", "")), intent=f.get("intent"))
                 for f in d.get("faq") or []],
            on_screen=d.get("on_screen"),
        )
        skus = [p.sku for p in kb.products]
        if len(set(skus)) != len(skus):
            raise KnowledgeError("duplicate sku in products")
        return kb

    @classmethod
    def load(cls, path: str | Path, limits: Any = None) -> Knowledge:
        """Read a KB file; with ``limits`` (a :class:`~gateway.support.limits.SupportLimits`)
        also refuse one over the room limits."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise KnowledgeError(f"{path}: not valid JSON ({e})") from None
        try:
            kb = cls.from_dict(data)
            if limits is not None:
                kb.check_size(limits.knowledge_max_bytes, limits.promotion_max_bytes,
                              limits.promotions_per_room)
            return kb
        except KnowledgeError as e:
            raise KnowledgeError(f"{path}: {e}") from None

    def product(self, sku: str) -> Product | None:
        for p in self.products:
            if p.sku == sku:
                return p
        return None

    def promotion(self, promo_id: str) -> Promotion | None:
        for p in self.promotions:
            if p.id == promo_id:
                return p
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "room": {"id": self.room.id, "title": self.room.title, "host": self.room.host,
                     "currency": self.room.currency},
            "products": [p.to_dict() for p in self.products],
            "promotions": [p.to_dict() for p in self.promotions],
            "policies": dict(self.policies),
            "faq": [f.to_dict() for f in self.faq],
            "on_screen": self.on_screen,
        }


def demo_room_path() -> Path:
    """The demo room shipped inside the package; what ``make run`` serves."""
    return Path(__file__).resolve().parent.parent / "demo" / "room_demo.json"
