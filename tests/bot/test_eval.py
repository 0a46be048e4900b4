"""End-to-end: ``bot-eval`` over our own held-out room and over the shared dev set, scored by score.py."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.support.bot.eval import main as bot_eval

HERE = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "bot"
SCORE = SHARED / "score.py"


def _score(cases: Path, preds: Path) -> dict:
    out = subprocess.run([sys.executable, str(SCORE), str(cases), str(preds), "--json", "--strict-facts"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_eval_writes_one_prediction_per_case(tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    assert bot_eval(["--room", str(HERE / "room_b.json"), "--cases", str(HERE / "cases_b.jsonl"),
                     "--predictions", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    n_cases = sum(1 for line in (HERE / "cases_b.jsonl").read_text(encoding="utf-8").splitlines() if line.strip())
    assert len(rows) == n_cases >= 60
    assert set(rows[0]) == {"id", "intent", "escalate", "reply"}
    assert "bot-eval:" in capsys.readouterr().out


def test_eval_reports_bad_input(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    assert bot_eval(["--room", str(HERE / "room_b.json"), "--cases", str(bad),
                     "--predictions", str(tmp_path / "p.jsonl")]) == 2


@pytest.mark.skipif(not SCORE.exists(), reason=f"scorer not found at {SCORE} (shared/bot is not checked out next to the repo)")
@pytest.mark.parametrize("room", ["b", "c"])
def test_own_room_floors(tmp_path, room):
    """Rooms and questions of our own: B (beauty + sportswear), C (kitchen appliances + tea,
    written later by a second author)."""
    out = tmp_path / "p.jsonl"
    assert bot_eval(["--room", str(HERE / f"room_{room}.json"), "--cases", str(HERE / f"cases_{room}.jsonl"),
                     "--predictions", str(out)]) == 0
    m = _score(HERE / f"cases_{room}.jsonl", out)
    assert m["auto_resolution"] >= 0.8, m
    assert m["escalation_recall"] >= 0.9, m
    assert m["wrong_escalation_rate"] <= 0.05, m
    assert m["intent_accuracy"] >= 0.85, m


def test_dev_set_acceptance_gate(tmp_path):
    if not (SHARED / "dev_cases.jsonl").exists() or not SCORE.exists():
        pytest.fail(f"shared dev set not found at {SHARED} (the checkout sits beside ../shared)")
    out = tmp_path / "p.jsonl"
    assert bot_eval(["--room", str(SHARED / "room_a.json"), "--cases", str(SHARED / "dev_cases.jsonl"),
                     "--predictions", str(out)]) == 0
    m = _score(SHARED / "dev_cases.jsonl", out)
    assert m["auto_resolution"] >= 0.85, m
    assert m["escalation_recall"] >= 0.95, m
    assert m["wrong_escalation_rate"] <= 0.05, m


def test_no_dev_sentence_in_bot_files():
    """The bot must be built from its own data: no dev-set sentence may appear in our files."""
    dev = SHARED / "dev_cases.jsonl"
    if not dev.exists():
        pytest.fail(f"shared dev set not found at {SHARED} (the checkout sits beside ../shared)")
    texts = set()
    for line in dev.read_text(encoding="utf-8").splitlines():
        if line.strip():
            c = json.loads(line)
            texts.add(c["text"])
            texts.update(c.get("history") or [])
    root = Path(__file__).resolve().parents[2]
    files = [*(root / "gateway" / "support" / "bot").rglob("*"), *(root / "tests" / "bot").rglob("*"),
             root / "gateway" / "demo" / "room_demo.json", root / "docs" / "bot.md", root / "benchmarks" / "bot.py"]
    for f in files:
        if f.is_file() and f.suffix in (".py", ".json", ".jsonl", ".tsv", ".md"):
            content = f.read_text(encoding="utf-8")
            found = [t for t in texts if t.strip() and t in content]
            assert not found, f"{f} contains {len(found)} dev-set sentence(s)"
