"""Check one writer's room and labelled cases before they join the bot corpus.

``python -m gateway.support.bot.training.corpus_check DIR`` reads ``DIR/room.json`` (the
knowledge format of the bot README) and ``DIR/cases.jsonl`` (the README's case format) and
prints every problem it finds, then a summary (cases, intents, escalation share, languages,
multi-turn share). Exit status 1 when any problem was found.

Why a checker and not trust: the corpus is written by independent writers (people or
helpers), each seeing only the README and their own room. The rules they must follow are
the README's: 12 intents, ``human_request`` always escalates, every fact a literal
substring of the room (or ``limit - claimed``, or a size from the chart rule). A fact that
is not in the room would train the answer checks on something no bot can say.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

INTENTS = ("greeting", "product_info", "size_advice", "stock", "price_promo", "order_change",
           "logistics", "payment", "return_refund", "complaint", "human_request", "other")


def _norm(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if 0xFF01 <= o <= 0xFF5E:
            ch = chr(o - 0xFEE0)
        if not ch.isspace():
            out.append(ch)
    return "".join(out).lower()


def room_problems(room: dict) -> list[str]:
    probs = []
    for key in ("room", "products", "promotions", "policies", "faq"):
        if key not in room:
            probs.append(f"room.json: missing top-level key {key!r}")
    r = room.get("room", {})
    for key in ("id", "title", "host", "currency"):
        if key not in r:
            probs.append(f"room.json: room.{key} missing")
    skus = set()
    for i, p in enumerate(room.get("products", [])):
        for key in ("sku", "name", "price", "stock", "sizes", "attributes", "ships_within_hours"):
            if key not in p:
                probs.append(f"room.json: products[{i}] lacks {key!r}")
        skus.add(p.get("sku"))
    for i, pr in enumerate(room.get("promotions", [])):
        if pr.get("kind") not in ("first_n_gift", "discount", "coupon", "bundle"):
            probs.append(f"room.json: promotions[{i}].kind {pr.get('kind')!r} is not a README kind")
        if "text" not in pr:
            probs.append(f"room.json: promotions[{i}] lacks the host's 'text'")
    for key in ("shipping", "returns", "payment", "invoice"):
        if key not in room.get("policies", {}):
            probs.append(f"room.json: policies.{key} missing")
    for i, f in enumerate(room.get("faq", [])):
        if f.get("intent") not in INTENTS:
            probs.append(f"room.json: faq[{i}].intent {f.get('intent')!r} is not one of the 12")
    return probs


def allowed_facts(room: dict) -> tuple[str, set[str]]:
    """The room's text (facts must be substrings of it) and the derived facts it allows."""
    text = _norm(json.dumps(room, ensure_ascii=False))
    derived: set[str] = set()
    for pr in room.get("promotions", []):
        if pr.get("kind") == "first_n_gift" and isinstance(pr.get("limit"), int) \
                and isinstance(pr.get("claimed"), int):
            derived.add(str(pr["limit"] - pr["claimed"]))
    for p in room.get("products", []):
        for row in p.get("size_chart") or []:
            derived.add(_norm(str(row.get("size"))))
    return text, derived


def case_problems(cases: list[tuple[int, dict]], room: dict) -> list[str]:
    text, derived = allowed_facts(room)
    probs = []
    ids = Counter(c.get("id") for _, c in cases)
    for cid, n in ids.items():
        if n > 1:
            probs.append(f"id {cid!r} used {n} times")
    for line, c in cases:
        where = f"cases.jsonl:{line}"
        keys = {"id", "lang", "history", "text", "intent", "escalate", "facts"}
        if not keys <= set(c):
            probs.append(f"{where}: missing {sorted(keys - set(c))}")
            continue
        if c["lang"] not in ("zh", "en"):
            probs.append(f"{where}: lang must be zh or en")
        if not isinstance(c["history"], list) or not all(isinstance(h, str) for h in c["history"]):
            probs.append(f"{where}: history must be a list of strings")
        if not isinstance(c["text"], str) or not c["text"].strip():
            probs.append(f"{where}: text must be a non-empty string")
        if c["intent"] not in INTENTS:
            probs.append(f"{where}: intent {c['intent']!r} is not one of the 12")
        if not isinstance(c["escalate"], bool):
            probs.append(f"{where}: escalate must be true or false")
        if c["intent"] == "human_request" and c["escalate"] is not True:
            probs.append(f"{where}: human_request always escalates")
        if not isinstance(c["facts"], list):
            probs.append(f"{where}: facts must be a list")
            continue
        for f in c["facts"]:
            if not isinstance(f, str) or not f:
                probs.append(f"{where}: a fact must be a non-empty string")
            elif _norm(f) not in text and _norm(f) not in derived:
                probs.append(f"{where}: fact {f!r} is not in room.json, not limit-claimed, "
                             f"not a chart size")
    return probs


def summary(cases: list[dict]) -> dict:
    n = len(cases) or 1
    return {
        "cases": len(cases),
        "intents": dict(Counter(c.get("intent") for c in cases).most_common()),
        "escalate_share": round(sum(1 for c in cases if c.get("escalate") is True) / n, 3),
        "lang": dict(Counter(c.get("lang") for c in cases)),
        "multi_turn_share": round(sum(1 for c in cases if c.get("history")) / n, 3),
        "with_facts_share": round(sum(1 for c in cases if c.get("facts")) / n, 3),
    }


def check_dir(d: Path) -> tuple[list[str], dict]:
    probs: list[str] = []
    try:
        room = json.loads((d / "room.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        return [f"room.json: {e}"], {}
    probs += room_problems(room)
    cases: list[tuple[int, dict]] = []
    try:
        lines = (d / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError as e:
        return probs + [f"cases.jsonl: {e}"], {}
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            probs.append(f"cases.jsonl:{i}: not JSON ({e})")
            continue
        if not isinstance(obj, dict):
            probs.append(f"cases.jsonl:{i}: not an object")
            continue
        cases.append((i, obj))
    probs += case_problems(cases, room)
    return probs, summary([c for _, c in cases])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    bad = 0
    for arg in argv:
        probs, summ = check_dir(Path(arg))
        for p in probs[:200]:
            print(f"{arg}: {p}")
        if len(probs) > 200:
            print(f"{arg}: … and {len(probs) - 200} more problems")
        print(json.dumps({"dir": arg, "problems": len(probs), **summ}, ensure_ascii=False))
        bad += bool(probs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
