"""Which of a product's variants (a size that is not on a chart: a shade, a capacity, a
phone model, a bangle's inner size) a viewer's message points to.

Why: the README's size rule is *applied*, not quoted - the reply must contain the size it
recommends. For charted clothing :mod:`.answers` reads the chart; for everything else the
room's own advice attributes say how to choose ("手围13cm以下选14cm，13-15cm选16cm",
"3L适合1-3人，4L适合3-6人", "黄皮选#316…"), and the viewer gives a number or a description
("手围15.5", "family of 5", "黄黑皮"), or names the variant in their own spelling
("15promax" for "iPhone 15 Pro Max"). Three readings, in order:

1. **named**: the message names one of the variants, exactly or by what tells it apart
   from the others (the part after the prefix all variants share);
2. **by number**: an advice clause that names a variant and a condition ("A-B", "A以下",
   "A以上", "A+") whose range holds a number the viewer gave;
3. **by words**: the advice clause that shares the most words with the message.

Each returns the variants as the product lists them, so the reply quotes them verbatim.
"""

from __future__ import annotations

import functools
import os
import re

from ..knowledge import Product
from .slots import _CHAR_STOP, fold_units

_CLAUSE = re.compile(r"[，,；;。！!？?\n]|(?<![\d])\.(?!\d)")
_NUM = r"(\d+(?:\.\d+)?)"
_RANGE = re.compile(_NUM + r"\s*[a-z]*\s*(?:-|~|～|到|至)\s*" + _NUM)
_BELOW = re.compile(_NUM + r"\s*[a-z℃度斤人个月岁]*\s*(?:以下|以内|及以下|之内|不到|或以下|内)")
_ABOVE = re.compile(_NUM + r"\s*[a-z℃度斤人个月岁]*\s*(?:以上|及以上|或以上|\+|起)")
_CN = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_CN_COUNT = re.compile(r"([一二两三四五六七八九十])\s*(?=口|人|个人|位|个月|岁|只|斤)")
_WORD_NUM = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
             "couple": 2, "pair": 2}


@functools.lru_cache(maxsize=16384)
def _compact(s: str) -> str:
    return re.sub(r"\s+", "", fold_units(s.lower()))


def named(text: str, p: Product) -> list[str]:
    """The variant the message names: the longest whose compact form it contains, else the
    one whose distinguishing part it contains ("15promax" → "iPhone 15 Pro Max")."""
    return list(_named(text, tuple(p.sizes)))


@functools.lru_cache(maxsize=8192)
def _named(text: str, sizes: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`named`: a pure function of the text and the variant names (not of stock),
    remembered, because an order change or a size question re-reads it on every reply."""
    return tuple(_named_list(text, sizes))


def _named_list(text: str, sizes: tuple[str, ...]) -> list[str]:
    vs = [v for v in sizes if v and v.strip()]
    if not vs:
        return []
    ct = _compact(text)
    keys = {v: _compact(v) for v in vs}
    exact = [v for v in vs if len(keys[v]) >= 2 and _contains(ct, keys[v])]
    if exact:
        return [max(exact, key=lambda v: len(keys[v]))]
    if len(vs) < 2:
        return []
    prefix = os.path.commonprefix(list(keys.values()))
    if len(prefix) < 3:
        return []
    tails = {v: keys[v][len(prefix):] for v in vs}
    hits = [v for v in vs if tails[v] and tails[v] in ct]
    if hits:
        best = max(len(tails[v]) for v in hits)
        hits = [v for v in hits if len(tails[v]) == best]
        return [max(hits, key=lambda v: ct.rfind(tails[v]))]
    # the base model ("iPhone15" among its Plus/Pro): its number alone, no other tail
    base = [v for v in vs if not tails[v]]
    m = re.search(r"\d+$", prefix)
    if base and m and re.search(rf"(?<!\d){m.group(0)}(?!\d)", ct):
        return base
    return []


def viewer_numbers(text: str) -> list[float]:
    """The numbers a viewer gave about themselves: digits, counted Chinese numerals
    ("四口之家", "8个月"), English counts ("family of five", "a couple"); millimetres also
    as centimetres (advice is usually written in cm)."""
    out: list[float] = []
    for m in re.finditer(_NUM + r"\s*(mm|毫米)?", text):
        v = float(m.group(1))
        out.append(v)
        if m.group(2):
            out.append(v / 10)
    out += [float(_CN[m.group(1)]) for m in _CN_COUNT.finditer(text)]
    out += [float(n) for w, n in _WORD_NUM.items() if re.search(rf"\b{w}\b", text)]
    return out


def _contains(text: str, key: str) -> bool:
    """``key`` in ``text``; an ASCII end of the key must not continue an ASCII word there
    ("m" is not in "55cm", "pro" not in "promax")."""
    if not key:
        return False
    head = r"(?<![0-9a-z])" if re.match(r"[0-9a-z]", key) else ""
    tail = r"(?![0-9a-z])" if re.search(r"[0-9a-z]$", key) else ""
    return re.search(head + re.escape(key) + tail, text) is not None


def _mentions(clause: str, vs: list[str]) -> list[str]:
    c = _compact(clause)
    found = [v for v in vs if _contains(c, _compact(v))]
    # "58圈口" and "8圈口": keep the longest of nested mentions
    return [v for v in found if not any(v != w and _compact(v) in _compact(w) for w in found)]


def _clauses(p: Product, items: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    vs = [v for v in p.sizes if v and v.strip()]
    out = []
    for k, v in items:
        for clause in _CLAUSE.split(v):
            hit = _mentions(clause, vs)
            if hit:
                out.append((clause, hit))
        hit = _mentions(v, vs)
        if re.search(r"\d", k) and len(hit) == 1:  # "1.5米床": "200x230cm"
            out.append((k, hit))
    return out


def _range(clause: str, named_vs: list[str]) -> tuple[float, float] | None:
    c = fold_units(clause.lower())
    for v in named_vs:  # the variant's own numbers are not the condition
        c = c.replace(fold_units(v.lower()), " ")
    m = _RANGE.search(c)
    if m:
        a, b = float(m.group(1)), float(m.group(2))
        return (min(a, b), max(a, b))
    m = _BELOW.search(c)
    if m:
        return (float("-inf"), float(m.group(1)))
    m = _ABOVE.search(c)
    if m:
        return (float(m.group(1)), float("inf"))
    return None


def by_number(text: str, p: Product, items: list[tuple[str, str]]) -> list[str]:
    vs_text = {_compact(v) for v in p.sizes if v}
    nums = [n for n in viewer_numbers(text)
            if not any(re.fullmatch(rf"#?{re.escape(_fmt(n))}\D*", v) for v in vs_text)]
    if not nums:
        return []
    hits: list[str] = []
    for clause, vs in _clauses(p, items):
        r = _range(clause, vs)
        if r and any(r[0] <= n <= r[1] for n in nums):
            hits = vs  # on a shared boundary the later (larger) clause wins
    return hits


def _fmt(n: float) -> str:
    return str(int(n)) if n.is_integer() else f"{n:g}"


def by_words(text: str, p: Product, items: list[tuple[str, str]]) -> list[str]:
    grams = {text[i:i + 2] for i in range(len(text) - 1)
             if re.fullmatch(r"[\u4e00-\u9fff]{2}", text[i:i + 2])
             and not (text[i] in _CHAR_STOP and text[i + 1] in _CHAR_STOP)}
    best, best_n = [], 0
    for clause, vs in _clauses(p, items):
        body = clause
        for v in vs:
            body = body.replace(v, " ")
        n = sum(1 for g in grams if g in body)
        if n > best_n:
            best, best_n = vs, n
        elif n == best_n and n:
            best = []  # two clauses fit as well: no pick
    return best


def pick(text: str, p: Product, items: list[tuple[str, str]], size: str | None = None) -> list[str]:
    """The variant(s) of ``p`` the normalised ``text`` points to, by ``items`` (the product's
    advice attributes) when it names none; [] when nothing points anywhere."""
    if size and size in p.sizes:
        return [size]
    return named(text, p) or by_number(text, p, items) or by_words(text, p, items)
