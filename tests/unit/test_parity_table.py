"""docs/testing.md's parity table lists exactly the collected parity tests, with the right
backends and xfails (``python -m tests.parity_table --check``); and the row keys drop only the
backend from a test id."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.parity_table import ROOT, row_key


def test_row_key_drops_only_the_backend():
    assert row_key("tests/integration/test_room.py::test_x[redis]") == "integration/test_room.py::test_x"
    assert row_key("tests/integration/test_r.py::test_y[redis-0.0-False]") == \
        "integration/test_r.py::test_y[0.0-False]"
    assert row_key("tests/workspace/test_a.py::test_z") == "workspace/test_a.py::test_z"


def test_the_parity_table_matches_the_collected_tests():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "tests.parity_table", "--check"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:] + p.stdout[-500:]
    assert "table up to date" in p.stdout
