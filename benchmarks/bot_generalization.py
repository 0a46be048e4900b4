"""Held-out evaluation of the bot: leave one writer out, leave one category of rooms out.

For each fold the bot's model (intent classifier + escalation scorer) is trained on the
template utterances and every corpus room *except* the held-out ones, and the held-out
cases are answered against their own room's knowledge and scored by the shared scorer
(``shared/bot/score.py --strict-facts``), exactly as hidden rooms are judged. Folds:

* ``writer``: each writer's rooms held out in turn (a writer's habits are not learned);
* ``category``: each product category (``tags`` in a room's meta.json: beauty, food, …)
  held out in turn: every room of that category, mixed rooms included, with every writer
  who wrote for them.

Also printed: the escalation threshold sweep over the writer folds' held-out cases (recall
and false alarms of "rules or p ≥ t"), and the dev set with the shipped model when
``shared/bot`` is beside the repository. The last line is one JSON object: every fold, the
mean and the worst fold of ``auto_resolution``, ``escalation_recall``,
``wrong_escalation_rate``, ``fact_recall``, ``intent_accuracy``.

    python -m benchmarks.bot_generalization [--folds writer,category] [--threshold T] [--cache DIR]

``--cache DIR`` keeps each fold's trained model in DIR, keyed by a hash of its training
rows (the same cache as ``benchmarks.bot_misses``): a fold whose rows did not change is not
trained again (a one-room category fold is the same training as that writer's fold).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bot_misses import fold_model
from gateway.support.bot import OfflineBot
from gateway.support.bot.features import featurize, load_jieba
from gateway.support.bot.model import (
    ESCALATION_THRESHOLD,
    BotModel,
    corpus_rows,
    template_rows,
)
from gateway.support.bot.normalize import normalize
from gateway.support.bot.training.corpus import CORPUS_DIR, CorpusRoom, load_corpus
from gateway.support.knowledge import Knowledge
from gateway.support.responder import BotQuery

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bot"
KEYS = ("auto_resolution", "escalation_recall", "wrong_escalation_rate", "fact_recall",
        "intent_accuracy")
LOWER_IS_BETTER = {"wrong_escalation_rate"}


def predict(bot: OfflineBot, rooms: list[CorpusRoom]) -> tuple[list[dict], list[dict]]:
    """Answer every case of ``rooms``; returns (cases, predictions) as JSON objects."""
    cases, preds = [], []
    for room in rooms:
        kb = Knowledge.load(room.knowledge_path)
        for c in room.cases:
            r = bot.answer(BotQuery(text=c.text, history=list(c.history), knowledge=kb,
                                    lang=c.lang))
            cases.append(c.to_json())
            preds.append({"id": c.id, "intent": r.intent, "escalate": r.escalate,
                          "reply": r.text, "_p": bot.model.p_escalate(normalize(c.text)),
                          "_rules": r.slots.get("escalation_reasons", [])})
    return cases, preds


def score(cases: list[dict], preds: list[dict], scorer: Path) -> dict:
    with tempfile.TemporaryDirectory() as d:
        cp, pp = Path(d) / "cases.jsonl", Path(d) / "preds.jsonl"
        cp.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), "utf-8")
        pp.write_text("".join(json.dumps({k: v for k, v in p.items() if not k.startswith("_")},
                                         ensure_ascii=False) + "\n" for p in preds), "utf-8")
        out = subprocess.run([sys.executable, str(scorer), str(cp), str(pp), "--json",
                              "--strict-facts"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(folds: list[dict]) -> dict:
    if not folds:
        return {}
    mean = {k: round(sum(f[k] for f in folds) / len(folds), 4) for k in KEYS}
    worst = {k: (max if k in LOWER_IS_BETTER else min)(f[k] for f in folds) for k in KEYS}
    return {"mean": mean, "worst": worst}


def sweep(preds: list[dict], cases: list[dict]) -> list[dict]:
    """Recall and false alarms of "rules or human_request or p ≥ t" for several t."""
    gold = {c["id"]: c["escalate"] for c in cases}
    pos = sum(gold.values()) or 1
    neg = (len(gold) - sum(gold.values())) or 1
    rows = []
    for t in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
        tp = fp = 0
        for p in preds:
            base = [r for r in p["_rules"] if r != "model"] or p["intent"] == "human_request"
            esc = bool(base) or p["_p"] >= t
            tp += esc and gold[p["id"]]
            fp += esc and not gold[p["id"]]
        rows.append({"threshold": t, "recall": round(tp / pos, 4),
                     "wrong_escalation_rate": round(fp / neg, 4)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", default="writer,category")
    ap.add_argument("--threshold", type=float, default=ESCALATION_THRESHOLD)
    ap.add_argument("--scorer", type=Path, default=SHARED / "score.py")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    ap.add_argument("--cache", type=Path, default=None,
                    help="reuse/keep fold models here (only with the default --epochs)")
    args = ap.parse_args(argv)
    if not args.scorer.exists():
        print(f"scorer not found at {args.scorer}", file=sys.stderr)
        return 2
    load_jieba()
    rooms = load_corpus(args.corpus)
    if len(rooms) < 2:
        print("need at least two corpus rooms", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    base = template_rows()
    base_feats = [featurize(r.text) for r in base]
    room_rows = {r.room: corpus_rows([r]) for r in rooms}
    room_feats = {k: [featurize(x.text) for x in v] for k, v in room_rows.items()}
    out: dict = {"rooms": {r.room: {"writer": r.writer, "category": r.category,
                                    "cases": len(r.cases)} for r in rooms},
                 "threshold": args.threshold, "folds": {}}
    for kind in [k for k in args.folds.split(",") if k]:
        if kind == "writer":
            folds = {w: [r for r in rooms if r.writer == w] for w in sorted({r.writer for r in rooms})}
        else:  # category: every room of that category is held out (mixed rooms with either)
            folds = {c: [r for r in rooms if c in r.categories]
                     for c in sorted({c for r in rooms for c in r.categories})}
        results, all_cases, all_preds = [], [], []
        for held, test in folds.items():
            train = [r for r in rooms if r not in test]
            rows = base + [x for r in train for x in room_rows[r.room]]
            feats = base_feats + [f for r in train for f in room_feats[r.room]]
            if args.cache is not None and args.epochs == 80:
                model = fold_model(rows, args.cache)
                model.threshold = args.threshold
            else:
                model = BotModel.train(rows, threshold=args.threshold, epochs=args.epochs,
                                       feats=feats)
            cases, preds = predict(OfflineBot(model=model), test)
            m = score(cases, preds, args.scorer)
            fold = {"held_out": held, "rooms": [r.room for r in test], "n": m["n"],
                    **{k: round(m[k], 4) for k in KEYS}}
            print(json.dumps(fold, ensure_ascii=False), flush=True)
            results.append(fold)
            all_cases += cases
            all_preds += preds
        out["folds"][kind] = {"folds": results, **summarise(results)}
        if kind == "writer":
            out["threshold_sweep"] = sweep(all_preds, all_cases)
            for row in out["threshold_sweep"]:
                print(json.dumps(row), flush=True)
    dev = SHARED / "dev_cases.jsonl"
    if dev.exists():
        kb = Knowledge.load(SHARED / "room_a.json")
        bot = OfflineBot()
        cases = [json.loads(line) for line in dev.read_text("utf-8").splitlines() if line.strip()]
        preds = []
        for c in cases:
            r = bot.answer(BotQuery(text=c["text"], history=c.get("history") or [],
                                    knowledge=kb, lang=c.get("lang")))
            preds.append({"id": c["id"], "intent": r.intent, "escalate": r.escalate,
                          "reply": r.text})
        m = score(cases, preds, args.scorer)
        out["dev"] = {k: round(m[k], 4) for k in KEYS}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
