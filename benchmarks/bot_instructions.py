"""Instructions per bot reply, per message of ``benchmarks.bot`` - a cost figure the machine's
load cannot move.

Why: on a shared machine the wall-clock p99 of ``benchmarks.bot`` is mostly the scheduler's
(see docs/bot.md, *Latency*); comparing two versions of the bot by it needs a quiet machine.
Instruction counts do not: this script re-runs itself under ``valgrind --tool=callgrind``
with collection switched on only inside ``functools.reduce`` (one reduce per message, each
answering it ``--reps`` times after the memo is warm; a dump after each), so warm-up and
imports are not counted. The raw baseline in the same run: the same messages answered by
``OfflineBot(memo=False)`` (every message read afresh), ``ratio`` = memo-off / memo-on.

    python -m benchmarks.bot_instructions [--reps 10]

Slow (valgrind runs the whole warm-up, ~2-5 min); needs ``valgrind`` and a CPython whose
symbol table names ``functools_reduce`` (pyenv builds do).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def _child(reps: int) -> None:
    """Under callgrind: each message answered ``reps`` times inside one reduce (one dump)."""
    from benchmarks.bot import MESSAGES, _queries
    from gateway.cli import tune_gc
    from gateway.support.bot import OfflineBot
    from gateway.support.knowledge import Knowledge, demo_room_path
    from gateway.support.responder import BotQuery

    kb = Knowledge.load(str(demo_room_path()))
    bot = OfflineBot()
    bot.warm_up()
    plain = OfflineBot(memo=False)
    plain.warm_up()
    tune_gc()
    qs = _queries(kb)
    for _ in range(3):  # memo and first-touch caches warm
        for q in qs:
            bot.answer(q)
            plain.answer(q)
    for b in (bot, plain):
        for q in qs:
            def step(acc: None, _: int, b: OfflineBot = b, q: BotQuery = q) -> None:
                b.answer(q)
                return acc

            functools.reduce(step, range(reps), None)
    print(len(MESSAGES))


def _counts(prefix: Path) -> list[int]:
    files = sorted((f for f in prefix.parent.glob(prefix.name + ".*") if re.search(r"\.\d+$", f.name)),
                   key=lambda f: int(f.name.rsplit(".", 1)[1]))
    out = []
    for f in files:
        for line in f.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                out.append(int(line.split()[1]))
                break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bot_instructions")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.reps)
        return 0
    from benchmarks.bot import MESSAGES

    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "cg"
        subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                        "--toggle-collect=functools_reduce", "--dump-after=functools_reduce",
                        f"--callgrind-out-file={prefix}", sys.executable, "-m", "benchmarks.bot_instructions",
                        "--child", "--reps", str(args.reps)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        counts = [c / args.reps for c in _counts(prefix)]
    n = len(MESSAGES)
    if len(counts) != 2 * n:
        print(f"expected {2 * n} dumps, got {len(counts)}", file=sys.stderr)
        return 1
    memo, plain = counts[:n], counts[n:]
    for (_, text), c, p in zip(MESSAGES, memo, plain, strict=True):
        print(f"{c / 1000:8.0f}k  (memo off {p / 1000:6.0f}k)  {text}")
    res = {"bench": "bot_instructions", "reps": args.reps,
           "instructions_per_reply_mean": round(sum(memo) / n), "instructions_per_reply_max": round(max(memo)),
           "heaviest": MESSAGES[memo.index(max(memo))][1],
           "no_memo_instructions_per_reply_mean": round(sum(plain) / n),
           "ratio": round(sum(plain) / sum(memo), 2),
           "per_message": {text: round(c) for (_, text), c in zip(MESSAGES, memo, strict=True)}}
    print(json.dumps(res, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
