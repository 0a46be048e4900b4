"""Every frame a test received, validated against the generated protocol schema
(docs/spec/protocol.schema.json, the committed file: what integrators read).

Used by walks that already run (the acceptance walk, on one node and across nodes), so the
schema is checked against real traffic without a gateway start of its own."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "spec" / "protocol.schema.json"


@functools.cache
def _validators() -> dict[str, jsonschema.Draft202012Validator]:
    doc = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return {t: jsonschema.Draft202012Validator({"anyOf": [{"$ref": r} for r in refs],
                                                "$defs": doc["$defs"]})
            for t, refs in doc["x-events"].items()}


def check_frames(frames: list[dict[str, Any]]) -> int:
    """Fails naming the first frame whose type is unknown to the schema or that matches none
    of its type's shapes; returns how many were checked."""
    validators = _validators()
    for f in frames:
        v = validators.get(f.get("type"))  # type: ignore[arg-type]
        assert v is not None, f"frame type {f.get('type')!r} is not in protocol.schema.json: {f}"
        err = jsonschema.exceptions.best_match(v.iter_errors(f))
        assert err is None, f"{f.get('type')} frame does not match the schema: {err.message}: {f}"
    return len(frames)
