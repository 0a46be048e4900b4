"""``python -m gateway.specs [--out docs/spec/] [--check]``: write (or check) the generated
specs, ``openapi.json`` and ``protocol.schema.json``. ``--check`` exits 1 naming each file
that differs from what the code generates (what ``tests/unit/test_specs_drift.py`` runs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import gateway.app  # noqa: F401  (every plane: registers every message and event class)

from . import openapi_document, protocol_document

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "spec"


def render(doc: dict[str, Any]) -> str:
    """The committed form: stable key order as generated, 1-space indent, UTF-8, final
    newline (diffs stay readable)."""
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def documents() -> dict[str, str]:
    return {"openapi.json": render(openapi_document()),
            "protocol.schema.json": render(protocol_document())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.specs", description=__doc__)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory (docs/spec/)")
    ap.add_argument("--check", action="store_true",
                    help="compare instead of writing; exit 1 if any file differs")
    args = ap.parse_args(argv)
    stale = []
    for name, text in documents().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run `python -m gateway.specs`): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
