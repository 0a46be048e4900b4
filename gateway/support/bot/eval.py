"""``livedesk bot-eval``: run the bot over a cases file and write predictions.

Owns the offline evaluation command. It loads one room KB, feeds each case through the
same path the server uses (``OfflineBot.respond`` with ``history`` = earlier viewer
messages), reads only ``id``, ``lang``, ``history`` and ``text`` of each case (never the
labels), writes one ``{"id","intent","escalate","reply"}`` JSON line per case and prints a
one-line summary. Score the output with ``shared/bot/score.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

from ..knowledge import Knowledge, KnowledgeError
from ..responder import BotQuery
from .bot import OfflineBot


def _read_cases(path: Path) -> list[dict]:
    cases = []
    with path.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {n}: invalid JSON ({e.msg})") from None
            if not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("text"), str):
                raise ValueError(f"{path} line {n}: a case needs 'id' and 'text'")
            hist = obj.get("history") or []
            if not isinstance(hist, list):
                raise ValueError(f"{path} line {n}: 'history' must be a list")
            cases.append({"id": str(obj["id"]), "lang": obj.get("lang"), "history": [str(h) for h in hist],
                          "text": obj["text"]})
    return cases


async def _run(bot: OfflineBot, kb: Knowledge, cases: list[dict]) -> list[dict]:
    out = []
    for c in cases:
        r = await bot.respond(BotQuery(text=c["text"], history=c["history"], knowledge=kb, lang=c["lang"]))
        out.append({"id": c["id"], "intent": r.intent, "escalate": r.escalate, "reply": r.text})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="livedesk bot-eval", description="Run the offline bot over a cases file.")
    ap.add_argument("--room", required=True, help="room knowledge-base JSON")
    ap.add_argument("--cases", required=True, help="cases JSONL (id, lang, history, text)")
    ap.add_argument("--predictions", required=True, help="where to write predictions JSONL")
    args = ap.parse_args(argv)
    try:
        kb = Knowledge.load(args.room)
        cases = _read_cases(Path(args.cases))
    except (KnowledgeError, ValueError, OSError) as e:
        print(f"bot-eval: {e}", file=sys.stderr)
        return 2
    bot = OfflineBot()
    warm = bot.warm_up()
    t0 = time.perf_counter()
    preds = asyncio.run(_run(bot, kb, cases))
    elapsed = time.perf_counter() - t0
    with open(args.predictions, "w", encoding="utf-8") as fh:
        for p in preds:
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    counts = Counter(p["intent"] for p in preds)
    n_esc = sum(p["escalate"] for p in preds)
    per = f"{1000 * elapsed / max(1, len(preds)):.2f}ms/case"
    print(f"bot-eval: {len(preds)} cases, intents {dict(counts.most_common())}, escalations {n_esc}, "
          f"elapsed {elapsed:.3f}s ({per}, warm-up {warm:.2f}s) -> {args.predictions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
