"""Which product a question is about when it names none: the one whose knowledge holds
what was asked.

Why: viewers often ask about a property without naming the product ("蓬松度多少",
"脂肪含量高不高", "how many speed settings"), because the product is on their screen or
obvious to them. When only one product of the room has that property - an attribute key
or value, a variant list - that product is the answer; asking "which one?" back loses the
viewer. The match is only trusted when it is clear: the words the message shares with one
product's knowledge and with no (or few) other products' outweigh every other product's.
Used by the composers (:mod:`.answers`) only after the product finder and the
conversation found nothing, so a named product always wins.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from ..knowledge import Knowledge, Product
from .lexicon import STOP, zh_for
from .normalize import normalize
from .slots import _CHAR_STOP, fold_units

# a match is trusted when its score reaches this (one word only this product's knowledge
# holds) and is at least twice the runner-up's
MIN_SCORE = 1.0
# an attribute key says what the product *has* ("蓬松度", "机芯"); a value word counts less
KEY_WEIGHT = 1.5
# words every shop's attributes use: they say nothing about which product
_COMMON = frozenset({"多少", "什么", "怎么", "可以", "能不", "是不", "不是", "有没", "没有", "一个", "这个",
                     "那个", "适合", "建议", "选择", "可选", "价格", "直播", "链接", "颜色", "规格",
                     "产地", "保质", "质期", "材质", "成分", "配料", "尺寸", "重量", "净含", "含量",
                     "使用", "用法", "以上", "以下", "左右", "支持", "不支", "一起", "时候", "小时"})


@dataclass(frozen=True)
class _Topics:
    products: tuple[Product, ...]
    keys: tuple[str, ...]  # per product: its attribute keys, lower case, units folded
    values: tuple[str, ...]  # per product: attribute values and variants
    # text → the sku it is about (or None), for these objects: the same questions recur
    answers: dict[str, str | None] = field(default_factory=dict)


_BY_OBJECTS: dict[tuple[int, ...], _Topics] = {}


def _topics(kb: Knowledge) -> _Topics:
    """The room's topic index, built once per set of product objects. Found by the very
    objects: an entry holds them, so their ids cannot be reused while it lives; the room
    changes only stock and quotas in place (which this index does not read), and a refresh
    that brings new objects builds a new entry. Cheaper per message than the catalog key."""
    ids = tuple(map(id, kb.products))
    t = _BY_OBJECTS.get(ids)
    if t is not None and all(a is b for a, b in zip(t.products, kb.products, strict=True)):
        return t

    def fold(s: str) -> str:
        return fold_units(normalize(s))

    prods = tuple(kb.products)
    t = _Topics(prods, tuple(fold(" ".join(p.attributes)) for p in prods),
                tuple(fold(" ".join([*p.attributes.values(), *p.sizes])) for p in prods))
    if len(_BY_OBJECTS) > 256:
        _BY_OBJECTS.clear()
    _BY_OBJECTS[ids] = t
    return t


@functools.lru_cache(maxsize=8192)
def question_terms(text: str) -> frozenset[str]:
    """Chinese bigrams (not both characters common chat), ASCII words of 2+ characters
    (model names, units: "nfc", "pfoa", "vg10"), and the Chinese of English words."""
    out = {text[i:i + 2] for i in range(len(text) - 1)
           if re.fullmatch(r"[\u4e00-\u9fff]{2}", text[i:i + 2])
           and not (text[i] in _CHAR_STOP and text[i + 1] in _CHAR_STOP)}
    out -= _COMMON
    for w in re.findall(r"[a-z][a-z0-9.+-]*[a-z0-9]|\d+[a-z]+[a-z0-9]*", text):
        if w in STOP:
            continue
        if len(w) >= 2 and not w.isalpha() or 2 <= len(w) <= 5 and w.isalpha():
            out.add(w)  # "vg10", "nfc", "spf": as written in the knowledge
        if w.isalpha() and len(w) >= 3:
            out.update(z for z in zh_for(w)[:3] if len(z) >= 2 and z not in _COMMON)
    return frozenset(out)


def product_by_topic(text: str, kb: Knowledge, among: list[Product] | None = None) -> Product | None:
    """The one product (of ``among``, default all) whose attributes or variants hold what
    the normalised ``text`` asks about, or None when no product stands out."""
    prods = tuple(kb.products)
    if len(prods) < 2:
        return prods[0] if prods and among is None else None
    idx = _topics(kb)
    if among is None:
        if text not in idx.answers:
            if len(idx.answers) > 4096:
                idx.answers.clear()
            p = _by_topic(text, idx, None)
            idx.answers[text] = p.sku if p is not None else None
        sku = idx.answers[text]
        return next((p for p in kb.products if p.sku == sku), None) if sku else None
    found = _by_topic(text, idx, {p.sku for p in among})
    return next((p for p in kb.products if p.sku == found.sku), None) if found else None


def _by_topic(text: str, idx: _Topics, allowed: set[str] | None) -> Product | None:
    """The scoring itself (module docstring), over the products whose sku is ``allowed``."""
    prods = idx.products
    scores = [0.0] * len(prods)
    for t in question_terms(fold_units(text)):
        in_key = [i for i, k in enumerate(idx.keys) if t in k]
        in_val = [i for i, v in enumerate(idx.values) if t in v and i not in in_key]
        owners = len(in_key) + len(in_val)
        if not owners or owners > max(2, len(prods) // 3):
            continue  # nowhere, or a word many products share
        for i in in_key:
            scores[i] += KEY_WEIGHT / owners
        for i in in_val:
            scores[i] += 1.0 / owners
    ranked = sorted(((s, i) for i, s in enumerate(scores)
                     if allowed is None or prods[i].sku in allowed), reverse=True)
    if not ranked or ranked[0][0] < MIN_SCORE:
        return None
    if len(ranked) > 1 and ranked[1][0] * 2 > ranked[0][0]:
        return None
    return prods[ranked[0][1]]
