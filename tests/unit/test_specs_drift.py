"""The generated specs match the code (issue 22, item 5).

* docs/spec/openapi.json and docs/spec/protocol.schema.json are what ``python -m gateway.specs``
  generates now (regenerate and commit when this fails);
* every route the app registers is in the OpenAPI document, and nothing else is;
* every message class and every event class, serialized the way the code serializes it,
  validates against its own schema, and the handwritten frames (error) too;
* the schemas in both documents are valid JSON Schema 2020-12.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import jsonschema
import pytest

from gateway.app import create_app
from gateway.specs import openapi_document, protocol_document
from gateway.specs.__main__ import documents
from gateway.specs.__main__ import main as specs_main
from gateway.specs.openapi import OPERATIONS, registered_routes
from gateway.specs.protocol import SPREAD, event_classes
from signaling.errors import ErrorCode, ProtocolError
from signaling.protocol import decode_frame, registered_types
from tests.backends import MEMORY
from tests.security.test_serve_process import STRONG

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "spec"


def test_committed_specs_are_what_the_code_generates(capsys):
    for name, text in documents().items():
        committed = (SPEC / name).read_text(encoding="utf-8")
        assert committed == text, (f"docs/spec/{name} is out of date: run "
                                   f"`python -m gateway.specs` and commit it")
    assert specs_main(["--check", "--out", str(SPEC)]) == 0


def test_check_mode_fails_on_a_stale_file(tmp_path, capsys):
    """The --check the drift rests on can fail: a file changed by one byte is reported."""
    for name, text in documents().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert specs_main(["--check", "--out", str(tmp_path)]) == 0
    stale = tmp_path / "protocol.schema.json"
    stale.write_text(stale.read_text(encoding="utf-8").replace('"hello"', '"helo"', 1),
                     encoding="utf-8")
    assert specs_main(["--check", "--out", str(tmp_path)]) == 1
    assert "protocol.schema.json" in capsys.readouterr().err


@pytest.mark.parametrize("dev", [True, False], ids=["dev", "prod"])
def test_every_registered_route_is_in_the_openapi_document(dev):
    config = MEMORY.config()
    config.dev = dev
    config.secret = config.secret or STRONG
    routes = registered_routes(create_app(config))
    doc = openapi_document()
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    missing = sorted(routes - documented)
    assert not missing, f"routes registered but not in gateway/specs/openapi.py: {missing}"
    if dev:  # the dev app has every route (/api/dev/token too): nothing documented is absent
        assert sorted(documented - routes) == []
    else:
        assert ("get", "/api/dev/token") not in routes
    dev_only = {(op.method, op.path) for op in OPERATIONS if op.dev_only}
    assert dev_only == {("get", "/api/dev/token")}


def test_protocol_document_is_valid_json_schema_and_covers_every_class():
    doc = protocol_document()
    jsonschema.Draft202012Validator.check_schema(doc)
    assert set(doc["x-messages"]) == set(registered_types())
    assert {c.TYPE for c in event_classes()} <= set(doc["x-events"])
    assert {"error", "revoked", "reconnect"} <= set(doc["x-events"])


def test_openapi_components_are_valid_json_schema():
    """(schemathesis loads the whole document in tests/integration/test_schemathesis.py)"""
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    for s in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(s)
    assert len({op["operationId"] for ops in doc["paths"].values() for op in ops.values()}) \
        == len(OPERATIONS)


# --- every class, serialized as the code serializes it, against its schema ----------------

def _sample(hint: Any, depth: int = 0) -> Any:
    if get_origin(hint) is typing.Annotated:
        return _sample(get_args(hint)[0], depth)
    if get_origin(hint) in (typing.Union, types.UnionType):
        return _sample([a for a in get_args(hint) if a is not type(None)][0], depth)
    if get_origin(hint) is typing.Literal:
        return get_args(hint)[0]
    if hint is str:
        return "x"
    if hint is bool:
        return True
    if hint is int:
        return 3
    if hint is float:
        return 1.5
    if hint in (list, tuple) or get_origin(hint) in (list, tuple):
        args = get_args(hint)
        return [_sample(args[0], depth + 1)] if args and depth < 3 else []
    if hint is dict or get_origin(hint) is dict:
        return {"k": "v"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return next(iter(hint))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _instance(hint, depth + 1)
    return "any"


def _instance(cls: type, depth: int = 0, optional_none: bool = False) -> Any:
    hints = get_type_hints(cls, include_extras=True)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if get_origin(hints[f.name]) is typing.ClassVar:
            continue
        kwargs[f.name] = None if optional_none and f.default is None else \
            _sample(hints[f.name], depth)
    return cls(**kwargs)


def _validator(doc: dict[str, Any], ref: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": ref, "$defs": doc["$defs"]})


@pytest.mark.parametrize("optional_none", [False, True], ids=["all-fields", "optionals-none"])
def test_every_event_as_serialized_matches_its_schema(optional_none):
    doc = protocol_document()
    for cls in event_classes():
        wire = json.loads(json.dumps(_instance(cls, optional_none=optional_none).to_wire()))
        refs = doc["x-events"][cls.TYPE]
        ref = next(r for r in refs if r.endswith("/" + cls.__name__))
        errors = list(_validator(doc, ref).iter_errors(wire))
        assert not errors, f"{cls.__name__}.to_wire() {wire} vs its schema: {errors[0].message}"
        props = doc["$defs"][cls.__name__]["properties"]
        if cls.TYPE not in SPREAD:  # every key it writes is declared
            assert set(wire) <= set(props), (cls.__name__, set(wire) - set(props))


def test_every_message_schema_accepts_what_decode_frame_accepts_and_bounds_the_same():
    doc = protocol_document()
    for type_name, cls in registered_types().items():
        frame = {"type": type_name, "id": 1,
                 **{k.rstrip("_"): v for k, v in dataclasses.asdict(_instance(cls)).items()}}
        frame = json.loads(json.dumps(frame, default=lambda e: e.value))
        decode_frame(frame)  # the code accepts it…
        v = _validator(doc, doc["x-messages"][type_name]["$ref"])
        assert not list(v.iter_errors(frame)), type_name  # …and so does the schema
        for name, lim in cls._LIMITS.items():  # one character over a string's limit: both refuse
            if cls._HINTS[name] is str or (get_origin(cls._HINTS[name]) in (
                    typing.Union, types.UnionType) and str in get_args(cls._HINTS[name])):
                long = {**frame, name: "y" * (lim.max_chars + 1)}
                with pytest.raises(ProtocolError):
                    decode_frame(long)
                assert list(v.iter_errors(long)), f"{type_name}.{name}: schema has no limit"
        for req in doc["$defs"][cls.__name__].get("required", []):
            if req == "type":
                continue
            short = {k: x for k, x in frame.items() if k != req}
            with pytest.raises(ProtocolError):
                decode_frame(short)
            assert list(v.iter_errors(short))


def test_the_handwritten_error_frame_matches_what_the_code_sends():
    doc = protocol_document()
    v = _validator(doc, "#/$defs/ErrorFrame")
    for code in ErrorCode:
        assert not list(v.iter_errors(ProtocolError(code, "why").to_wire(7)))
    assert list(v.iter_errors({"type": "error", "code": "no_such_code", "message": "m"}))
