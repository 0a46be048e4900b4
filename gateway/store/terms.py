"""How message text becomes search terms, and a query becomes a match: one rule for both
backends (SQLite FTS5 indexes the terms string; PostgreSQL a ``tsvector`` of the same terms).

Why bigrams for Chinese: Chinese has no spaces, and a word of two characters (耳机, 退款)
must be found inside any run (蓝牙耳机坏了). Every overlapping pair of characters of a
CJK run is a term, so any two-or-more character substring of a run is found, whatever a
dictionary would have segmented (a jieba dictionary misses shop and product names; a
trigram index cannot look up a two-character word). Latin letters and digits form words
matched from their start (``refund`` finds ``refunded``; an order id ``ord-7781`` is the
words ``ord`` and ``7781``).

A query is split on white space into *parts*; a conversation matches when one of its
messages contains every part (case-insensitive substring). The index narrows the
candidates; the substring check (:func:`contains_all`) is the rule.
"""

from __future__ import annotations

import re
import unicodedata

# CJK ideographs (+ extension A, compatibility), kana, hangul: scripts written without spaces
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_RUN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_IS_CJK = re.compile(rf"[{_CJK}]")

MAX_QUERY_CHARS = 200
MAX_QUERY_PARTS = 8


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def index_terms(text: str) -> list[str]:
    """The terms a message is indexed under (in order, repeats kept)."""
    out: list[str] = []
    for run in _RUN.findall(_norm(text)):
        if _IS_CJK.match(run):
            if len(run) == 1:
                out.append(run)
            else:
                out.extend(run[i:i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


def terms_text(text: str) -> str:
    """The index terms as one space-separated string (what SQLite's FTS5 tokenizes)."""
    return " ".join(index_terms(text))


def query_parts(q: str) -> list[str]:
    """The parts a query must all find, normalised like the text (empty parts dropped)."""
    return [p for p in _norm(q).split() if _RUN.search(p)]


def part_terms(part: str) -> list[tuple[str, bool]]:
    """``(term, prefix)`` for each index term one query part needs: each CJK bigram exact
    (a lone CJK character as a prefix of the bigrams starting with it), each word as a
    prefix."""
    out: list[tuple[str, bool]] = []
    for run in _RUN.findall(part):
        if _IS_CJK.match(run):
            if len(run) == 1:
                out.append((run, True))
            else:
                out.extend((run[i:i + 2], False) for i in range(len(run) - 1))
        else:
            out.append((run, True))
    return out


MIN_PREFIX = 3
SHORT_PREFIX = "~"  # PostgreSQL's lexeme for a word's first two letters (see the dialect)
ROOM_PREFIX = "zr"


def room_term(room: str) -> str:
    """The index term every message of a room carries (``zr`` + the room id's UTF-8 bytes in
    hex), so "text in this room" is one intersection inside the index instead of a join on
    every match. The databases compute the same in SQL (see the dialects)."""
    return ROOM_PREFIX + room.encode("utf-8").hex()



def match_terms(parts: list[str], min_prefix: int = MIN_PREFIX) -> list[tuple[str, bool]]:
    """The index terms a query looks up: every part's terms, except prefixes shorter than
    ``min_prefix`` when anything else is left. Why: without a prefix index, a prefix like
    ``ld`` expands to every order id in the index (tens of thousands of terms); the
    substring check on the candidates still requires it."""
    every = [t for p in parts for t in part_terms(p)]
    strong = [(t, prefix) for t, prefix in every if not prefix or len(t) >= min_prefix]
    return strong or every


def dropped_prefixes(parts: list[str], min_prefix: int = MIN_PREFIX) -> list[str]:
    """The short ASCII prefixes :func:`match_terms` leaves out of the index lookup (a
    database that cannot look them up cheaply checks them on the text instead)."""
    every = [t for p in parts for t in part_terms(p)]
    kept = match_terms(parts, min_prefix)
    return [t for t, prefix in every if prefix and (t, prefix) not in kept and t.isascii()]


def contains_all(text: str, parts: list[str]) -> bool:
    t = _norm(text)
    return all(p in t for p in parts)


def snippet(text: str, parts: list[str], width: int = 120) -> str:
    """``width`` characters of ``text`` around the first part found (all of it if short)."""
    if len(text) <= width:
        return text
    at = -1
    low = _norm(text)
    for p in parts:
        at = low.find(p)
        if at >= 0:
            break
    if at < 0:  # NFKC changed lengths, or no part: show the start
        return text[:width - 1] + "…"
    start = max(0, min(at - width // 3, len(text) - width))
    s = text[start:start + width]
    return ("…" if start > 0 else "") + s + ("…" if start + width < len(text) else "")
