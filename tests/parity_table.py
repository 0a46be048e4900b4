"""Writes the memory-vs-Redis parity table in docs/testing.md from a real pytest run.

    .venv/bin/python -m tests.parity_table           # run the parity tests, rewrite the table
    .venv/bin/python -m tests.parity_table --check   # collect only: does the table list exactly
                                                     # the tests and backends pytest collects?

Why a script: the table claims which support, room and workspace tests pass on which backend;
written by hand it would drift the first time a test is added. The run mode writes what pytest
reported (passed ✓, xfail with its reason, failures as ✗), never what the markers promise; the
check mode (run by tests/unit/test_parity_table.py) keeps the rows and columns in step with
the collected tests between runs.
"""

from __future__ import annotations

import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
PATHS = ["tests/integration", "tests/workspace", "tests/abuse"]
BEGIN, END = "<!-- parity-table:begin -->", "<!-- parity-table:end -->"
COLUMNS = (("memory", "memory"), ("redis", "Redis"))
NOT_RUN = "—"
BACKEND_ID = re.compile(r"\[(memory|redis)(?:-|\])")


@dataclass
class Row:
    """One test (its other parameters kept) and what each backend's run of it did."""

    key: str
    cells: dict[str, str] = field(default_factory=dict)
    why: str = ""


def row_key(nodeid: str) -> str:
    """``tests/x/test_y.py::test_z[redis-0.0-False]`` → ``x/test_y.py::test_z[0.0-False]``."""
    key = nodeid.removeprefix("tests/")
    key = re.sub(r"\[(memory|redis)\]$", "", key)
    return re.sub(r"\[(memory|redis)-", "[", key)


class Recorder:
    """A pytest plugin: which parity items exist, their backend, and how each run ended."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str | None, str, str | None]] = {}
        self.outcome: dict[str, str] = {}
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            if item.get_closest_marker("parity") is None:
                continue
            callspec = getattr(item, "callspec", None)
            backend = callspec.params.get("backend") if callspec else None
            only = item.get_closest_marker("one_backend")
            xfail = {m.args[0]: m.kwargs["reason"] for m in item.iter_markers("parity_xfail")}
            self.items[item.nodeid] = (
                backend or (only.args[0] if only else None),
                only.kwargs.get("why", "") if only else "",
                xfail.get(backend) if backend else None)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The call's outcome, unless setup or teardown failed (that wins) or the test
        was skipped before its call."""
        if report.nodeid not in self.items:
            return
        self.seconds[report.nodeid] += report.duration
        if report.failed:
            self.outcome.setdefault(report.nodeid + " failed", _cell(report))
        elif report.when == "call" or report.skipped:
            self.outcome[report.nodeid] = _cell(report)

    def result(self, nodeid: str) -> str:
        return self.outcome.get(nodeid + " failed") or self.outcome.get(nodeid, "not run")


def _cell(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfail: " + report.wasxfail.removeprefix("reason: ")
    if report.passed:
        return "✓"
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        return "skipped: " + str(reason).removeprefix("Skipped: ")
    if str(report.longrepr).startswith("[XPASS(strict)]"):
        return "✗ passed although marked xfail: the difference is gone, drop parity_xfail"
    return f"✗ failed ({report.when})"


def rows(rec: Recorder, ran: bool) -> list[Row]:
    out: dict[str, Row] = {}
    for nodeid, (backend, why, xfail) in rec.items.items():
        row = out.setdefault(row_key(nodeid), Row(row_key(nodeid)))
        row.why = why
        if backend in ("memory", "redis"):
            if ran:
                row.cells[backend] = rec.result(nodeid)
            else:
                row.cells[backend] = "xfail: " + xfail if xfail else "✓"
        else:  # runs once, on no backend in particular
            row.cells["shared"] = rec.result(nodeid) if ran else "✓"
    return sorted(out.values(), key=lambda r: r.key)


def render(table: list[Row], rec: Recorder, wall_s: float) -> str:
    lines = [BEGIN, "",
             "| Test | memory | Redis | Note |", "|---|---|---|---|"]
    for r in table:
        if "shared" in r.cells:
            cells = [f"{r.cells['shared']} (once, no backend)", NOT_RUN]
        else:
            cells = [r.cells.get(b, NOT_RUN) for b, _ in COLUMNS]
        note = r.why.replace("|", "\\|")
        lines.append(f"| `{r.key}` | " + " | ".join(c.replace("|", "\\|") for c in cells)
                     + f" | {note} |")
    lines.append("")
    for b, label in COLUMNS:
        ids = [n for n, (be, _, _) in rec.items.items() if be == b]
        passed = sum(1 for n in ids if rec.result(n) == "✓")
        xfailed = sum(1 for n in ids if rec.result(n).startswith("xfail"))
        secs = sum(rec.seconds[n] for n in ids)
        lines.append(f"- {label}: {passed} passed, {xfailed} xfailed of {len(ids)} runs "
                     f"({secs:.0f} s of test time)")
    shared = [n for n, (be, _, _) in rec.items.items() if be not in ("memory", "redis")]
    lines.append(f"- no backend: {sum(1 for n in shared if rec.result(n) == '✓')} "
                 f"passed of {len(shared)}")
    lines += [f"- whole run: {wall_s:.0f} s wall clock "
              f"(`python -m tests.parity_table`, {time.strftime('%Y-%m-%d')})", "", END]
    return "\n".join(lines)


def parse(doc: str) -> dict[str, tuple[str, str]]:
    """The table in ``doc``: row key → (memory cell, Redis cell)."""
    body = doc.split(BEGIN, 1)[1].split(END, 1)[0]
    out = {}
    for line in body.splitlines():
        m = re.match(r"\| `([^`]+)` \| (.*?) \| (.*?) \| .*\|$", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def check(table: list[Row], doc: str) -> list[str]:
    """What the doc's table gets wrong about the collected tests (empty: nothing)."""
    listed = parse(doc)
    problems = [f"not in the table: {r.key}" for r in table if r.key not in listed]
    problems += [f"in the table but not collected: {k}"
                 for k in sorted(set(listed) - {r.key for r in table})]
    for r in table:
        if r.key not in listed:
            continue
        for (b, label), cell in zip(COLUMNS, listed[r.key], strict=True):
            runs = b in r.cells or ("shared" in r.cells and b == "memory")
            if runs == (cell == NOT_RUN):
                problems.append(f"{r.key}: the {label} column says {cell!r}")
            elif b in r.cells and r.cells[b].startswith("xfail") != cell.startswith("xfail"):
                problems.append(f"{r.key}: the {label} column should say {r.cells[b]!r}")
    return problems


def main(argv: list[str]) -> int:
    rec = Recorder()
    only_collect = "--check" in argv
    args = ["-q", "-p", "no:cacheprovider", "-m", "parity", *PATHS]
    t0 = time.perf_counter()
    code = pytest.main([*args, "--collect-only"] if only_collect else args, plugins=[rec])
    wall = time.perf_counter() - t0
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        print(f"pytest exited with {code!r}", file=sys.stderr)
        return 2
    table = rows(rec, ran=not only_collect)
    doc = DOC.read_text(encoding="utf-8")
    if only_collect:
        problems = check(table, doc)
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{len(table)} rows: " + ("table out of date" if problems else "table up to date"))
        return 1 if problems else 0
    head, rest = doc.split(BEGIN, 1)
    DOC.write_text(head + render(table, rec, wall) + rest.split(END, 1)[1], encoding="utf-8")
    print(f"wrote {len(table)} rows to {DOC.relative_to(ROOT)}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
