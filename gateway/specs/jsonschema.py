"""Python type hints → JSON Schema (draft 2020-12), one rule for every generated document.

The protocol's classes are plain dataclasses with standard hints (``str``, ``int | None``,
``Literal[...]``, ``list[str]``, ``dict``, nested dataclasses) plus the edge limits of
:mod:`signaling.limits`; this module maps exactly those, and refuses (``TypeError``) a hint it
does not know rather than writing a schema that would be wrong.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin

from signaling.limits import FieldLimit

# a nested dataclass becomes a reference; the caller decides its name and collects it
RefFor = Callable[[type], dict[str, Any]]


def wire_name(field_name: str) -> str:
    """``from_`` → ``from``: a Python keyword field's wire name (``ChatMessage.to_wire``)."""
    return field_name[:-1] if field_name.endswith("_") else field_name


def is_optional(hint: Any) -> bool:
    return _is_union(hint) and type(None) in get_args(hint)


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (typing.Union, types.UnionType)


def schema_of(hint: Any, ref_for: RefFor, limit: FieldLimit | None = None) -> dict[str, Any]:
    """The schema of one hint. ``limit`` (client messages only: the edge enforces it) adds
    ``maxLength`` to every string and ``maxItems`` to every list or object inside."""
    if get_origin(hint) is typing.Annotated:
        return schema_of(get_args(hint)[0], ref_for, limit)
    if _is_union(hint):
        opts = [schema_of(a, ref_for, limit) for a in get_args(hint)]
        simple = [o.get("type") for o in opts]
        if all(isinstance(t, str) and len(o) == 1 for t, o in zip(simple, opts, strict=True)):
            return {"type": simple}
        return {"anyOf": opts}
    if hint is type(None):
        return {"type": "null"}
    if hint is Any or hint is object:
        return {}
    origin = get_origin(hint)
    if origin is typing.Literal:
        values = list(get_args(hint))
        kinds = {_json_type(v) for v in values}
        out: dict[str, Any] = {"enum": values}
        if len(kinds) == 1:
            out = {"type": kinds.pop(), **out}
        return out
    if hint is str:
        return {"type": "string", **({"maxLength": limit.max_chars} if limit else {})}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint in (list, tuple) or origin in (list, tuple):
        args = get_args(hint)
        out = {"type": "array"}
        if args and not (origin is tuple and args[-1] is not Ellipsis and len(args) > 1):
            out["items"] = schema_of(args[0], ref_for, limit)
        if limit:
            out["maxItems"] = limit.max_items
        return out
    if hint is dict or origin is dict:
        out = {"type": "object"}
        args = get_args(hint)
        if len(args) == 2 and args[1] is not Any:
            out["additionalProperties"] = schema_of(args[1], ref_for, limit)
        if limit:
            out["maxProperties"] = limit.max_items
        return out
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return ref_for(hint)
    raise TypeError(f"no JSON Schema rule for the hint {hint!r}: add one to "
                    f"gateway/specs/jsonschema.py")


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if v is None:
        return "null"
    return "string"
