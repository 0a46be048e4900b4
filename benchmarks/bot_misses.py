"""Where held-out fact recall is lost: every missed fact of the writer (or category) folds,
grouped by cause.

Why a separate tool: ``bot_generalization`` says *how much* is missed; fixing it needs to
know *why*. Each fold's model is trained once and cached under ``--cache`` (keyed by a hash
of its training rows), so changing a composer or the product finder and re-running takes
seconds, not the benchmark's quarter of an hour. Causes, first that applies:

* ``intent``: the predicted intent is wrong, so the wrong composer answered;
* ``unreachable``: the fact is neither in the room's knowledge, nor ``limit - claimed``,
  nor a chart size (nothing could produce it);
* ``size_no_body`` / ``size_rule``: a chart size was due and the measurements were not read
  / were read but the reply did not hold the size;
* ``no_product`` / ``wrong_product``: the fact belongs to products and none / only other
  products were found;
* ``product_fact``: the right product was found but the composer did not say the fact;
* ``room_fact``: a fact of the room (policy, promotion, FAQ), not said.

    python -m benchmarks.bot_misses [--folds writer] [--only w3,w9] [--show 8]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from gateway.support.bot import OfflineBot
from gateway.support.bot.classifier import IntentClassifier
from gateway.support.bot.features import DIM, load_jieba
from gateway.support.bot.model import ESC_CLASSES, BotModel, corpus_rows, template_rows
from gateway.support.bot.training.corpus import CORPUS_DIR, load_corpus
from gateway.support.knowledge import Knowledge
from gateway.support.responder import BotQuery

ROOT = Path(__file__).resolve().parents[1]
SCORER = ROOT.parent / "shared" / "bot" / "score.py"


def _scorer():  # noqa: ANN202 - the shared scorer's module
    spec = importlib.util.spec_from_file_location("score", SCORER)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fold_model(rows, cache: Path) -> BotModel:  # noqa: ANN001
    """The fold's model from ``cache``, or trained (and cached) when its rows are new."""
    h = hashlib.sha256(f"dim={DIM}".encode())
    for r in rows:
        h.update(f"{r.text}\t{r.intent}\t{r.escalate}\n".encode())
    path = cache / f"{h.hexdigest()[:16]}.npz"
    try:
        z = np.load(path)
        return BotModel(IntentClassifier(z["W"], z["b"]),
                        IntentClassifier(z["We"], z["be"], ESC_CLASSES))
    except (OSError, KeyError, ValueError):
        pass  # not cached yet (or unreadable): train
    m = BotModel.train(rows)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, W=m.intent.W, b=m.intent.b, We=m.escalation.W, be=m.escalation.b)
    os.replace(tmp, path)  # whole or absent: another run may read it at any moment
    return m


def _chart_sizes(kb: Knowledge) -> set[str]:
    return {r.size.lower() for p in kb.products for r in p.size_chart}


def cause(sc, case, pred, kb: Knowledge, slots: dict) -> tuple[str, list[str]]:  # noqa: ANN001
    missing = [f for f in case.facts if not sc.fact_in(f, pred["reply"], True)]
    if pred["intent"] != case.intent:
        return "intent", missing
    raw = sc.normalise(json.dumps(kb.to_dict(), ensure_ascii=False))
    computed = {str(max(0, (p.limit or 0) - (p.claimed or 0))) for p in kb.promotions}
    skus = slots.get("sku") or []
    skus = [skus] if isinstance(skus, str) else list(skus)
    for f in missing:
        nf = sc.normalise(f)
        if nf.lower() in _chart_sizes(kb) and case.intent == "size_advice":
            has_body = "height_cm" in slots or "weight_kg" in slots
            return ("size_rule" if has_body else "size_no_body"), missing
        if nf not in raw and f not in computed:
            return "unreachable", missing
    owners: set[str] = set()
    room_wide = False
    for f in missing:
        nf = sc.normalise(f)
        mine = {p.sku for p in kb.products
                if nf in sc.normalise(json.dumps(p.to_dict(), ensure_ascii=False))}
        owners |= mine
        if not mine:
            room_wide = True
    if owners and not room_wide:
        if not skus:
            return "no_product", missing
        if not owners & set(skus):
            return "wrong_product", missing
        return "product_fact", missing
    return "room_fact", missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", default="writer", choices=("writer", "category"))
    ap.add_argument("--only", default="", help="comma-separated fold names")
    ap.add_argument("--show", type=int, default=6, help="examples printed per cause")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bot_folds"))
    ap.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    ap.add_argument("--dump", type=Path, default=None, help="write every missed case as JSONL")
    args = ap.parse_args(argv)
    sc = _scorer()
    load_jieba()
    rooms = load_corpus(args.corpus)
    base = template_rows()
    if args.folds == "writer":
        folds = {w: [r for r in rooms if r.writer == w] for w in sorted({r.writer for r in rooms})}
    else:
        folds = {c: [r for r in rooms if c in r.categories]
                 for c in sorted({c for r in rooms for c in r.categories})}
    only = {x for x in args.only.split(",") if x}
    by_cause: dict[str, list] = defaultdict(list)
    totals: Counter[str] = Counter()
    per_fold = {}
    for held, test in folds.items():
        if only and held not in only:
            continue
        train = [r for r in rooms if r not in test]
        rows = base + corpus_rows(train)
        bot = OfflineBot(model=fold_model(rows, args.cache))
        n = ok = 0
        for room in test:
            kb = Knowledge.load(room.knowledge_path)
            for c in room.cases:
                r = bot.answer(BotQuery(text=c.text, history=list(c.history), knowledge=kb,
                                        lang=c.lang))
                if not c.facts:
                    continue
                n += 1
                pred = {"intent": r.intent, "reply": r.text}
                if all(sc.fact_in(f, r.text, True) for f in c.facts):
                    ok += 1
                    continue
                why, missing = cause(sc, c, pred, kb, r.slots)
                totals[why] += 1
                by_cause[why].append({"fold": held, "id": c.id, "lang": c.lang,
                                      "history": list(c.history), "text": c.text,
                                      "gold": c.intent, "pred": r.intent, "missing": missing,
                                      "slots": {k: v for k, v in r.slots.items()
                                                if k != "escalation_reasons"},
                                      "reply": r.text[:300]})
        per_fold[held] = round(ok / max(1, n), 4)
        print(json.dumps({"fold": held, "fact_recall": per_fold[held], "n_facts": n}), flush=True)
    print(json.dumps({"mean": round(sum(per_fold.values()) / max(1, len(per_fold)), 4),
                      "misses": dict(totals.most_common())}), flush=True)
    for why, _ in totals.most_common():
        print(f"\n== {why} ({len(by_cause[why])})")
        for ex in by_cause[why][:args.show]:
            print(json.dumps(ex, ensure_ascii=False))
    if args.dump:
        with args.dump.open("w", encoding="utf-8") as fh:
            for why, exs in by_cause.items():
                for ex in exs:
                    fh.write(json.dumps({"cause": why, **ex}, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
