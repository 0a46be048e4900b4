"""Text normalisation and language detection for viewer messages.

Owns the one canonical form every other bot module works on: full-width ASCII folded to
half-width, lower case, Chinese numerals in measurements turned into digits ("一米六五" ->
"1米65", "一百斤" -> "100斤"), runs of whitespace collapsed. Also decides whether a message is
Chinese or English when the conversation does not say.
"""

from __future__ import annotations

import functools
import re

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100}
_CN_NUM = re.compile(r"[零〇一二两三四五六七八九十百]+")
# Chinese numbers are only rewritten where they measure something we care about.
_CN_NUM_BEFORE = re.compile(r"([零〇一二两三四五六七八九十百]+)(?=\s*(?:斤|公斤|kg|千克|cm|厘米|公分|码|件|个|天|小时))")
_CN_HEIGHT = re.compile(r"一米([一二三四五六七八九])([一二三四五六七八九])?")


def _cn_to_int(s: str) -> int | None:
    if not s:
        return None
    if all(ch in _CN_DIGITS for ch in s) and len(s) > 1:  # 一六五 -> 165
        return int("".join(str(_CN_DIGITS[ch]) for ch in s))
    total, cur = 0, 0
    for ch in s:
        if ch in _CN_DIGITS:
            cur = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (cur or 1) * _CN_UNITS[ch]
            cur = 0
        else:
            return None
    return total + cur


def fold_width(text: str) -> str:
    out = []
    for ch in text:
        o = ord(ch)
        if 0xFF01 <= o <= 0xFF5E:
            ch = chr(o - 0xFEE0)
        elif o == 0x3000:
            ch = " "
        out.append(ch)
    return "".join(out)


def normalize(text: str) -> str:
    """The canonical lower-case, half-width form of a message."""
    t = fold_width(text or "").lower()
    t = t.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"').replace("′", "'").replace("″", '"')
    t = _CN_HEIGHT.sub(lambda m: "1米" + str(_CN_DIGITS[m.group(1)]) + (str(_CN_DIGITS[m.group(2)]) if m.group(2) else ""), t)

    def num(m: re.Match[str]) -> str:
        v = _cn_to_int(m.group(1))
        return str(v) if v is not None else m.group(1)

    t = _CN_NUM_BEFORE.sub(num, t)
    return re.sub(r"\s+", " ", t).strip()


_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[a-zA-Z]")


@functools.lru_cache(maxsize=8192)
def detect_lang(text: str) -> str:
    """``"zh"`` when the message has any real Chinese in it, else ``"en"``. Remembered per
    raw text (it is read on every reply, and viewers repeat the same questions)."""
    cjk = len(_CJK.findall(text))
    latin_words = len(re.findall(r"[a-zA-Z]{2,}", text))
    if cjk == 0:
        return "en" if latin_words else "zh"
    if latin_words >= 3 and cjk <= 2:
        return "en"
    return "zh"

