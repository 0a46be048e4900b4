"""The JSON Schema of protocol v1: every client message and every server event, generated.

Client messages come from the registry :func:`signaling.protocol.message` fills (the classes
:func:`~signaling.protocol.decode_frame` decodes with: their fields, which are required, the
edge limits as ``maxLength``/``maxItems``, the roles allowed to send each); server events from
the :class:`~signaling.protocol.Event` dataclasses the planes serialize with ``to_wire`` (a
field is left out of a frame only when it is ``None`` and defaults to ``None``). The caller
has imported the planes (``python -m gateway.specs`` imports :mod:`gateway.app`; a running
gateway has them all), so every class is registered before we look; importing the app from
here would make a cycle with the app's own ``/api/protocol.schema.json`` route.

Three frames are plain dicts in the code rather than Event classes (``error``, ``revoked``,
``reconnect``); they are declared below as dataclasses *here*, the only handwritten part, and
``tests/unit/test_specs_drift.py`` validates what the code really sends against them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, get_origin, get_type_hints

from signaling.errors import ErrorCode
from signaling.limits import ID_MAX_CHARS
from signaling.protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Event,
    Message,
    registered_types,
)

from .jsonschema import is_optional, schema_of, wire_name

SCHEMA_ID = "https://livedesk.dev/spec/protocol.schema.json"


# --- the frames the code builds as dicts (handwritten; checked against the code) --------------

@dataclass
class ErrorFrame(Event):
    """``ProtocolError.to_wire`` (signaling/errors.py): every refusal of a request."""

    TYPE: ClassVar[str] = "error"
    code: ErrorCode
    message: str


@dataclass
class Revoked(Event):
    """``Hub.close_user`` (signaling/hub.py): the identity was signed out or changed; the
    socket is closed next and must not be resumed."""

    TYPE: ClassVar[str] = "revoked"
    reason: str


@dataclass
class Reconnect(Event):
    """``Hub.tell_all_to_reconnect`` (signaling/hub.py): the node drains; reconnect (to
    another node) and ``resume``."""

    TYPE: ClassVar[str] = "reconnect"
    reason: str


HANDWRITTEN: tuple[type[Event], ...] = (ErrorFrame, Revoked, Reconnect)

# Events whose ``to_wire`` spreads one dict field's entries into the frame instead of nesting
# it (``ContextEvent``: the context's fields sit next to ``conversation``): the field is not a
# property and the frame is open to more. Checked by serializing every event in
# tests/unit/test_specs_drift.py, which fails for a new spreading class not listed here.
SPREAD: dict[str, str] = {"context": "context"}


def event_classes() -> list[type[Event]]:
    """Every Event dataclass with a wire type, sorted by (type, class name)."""
    found: dict[str, type[Event]] = {}
    stack: list[type[Event]] = [Event]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.TYPE:
                found[f"{sub.__module__}.{sub.__qualname__}"] = sub
    return sorted(found.values(), key=lambda c: (c.TYPE, c.__name__))


class _Defs:
    """The ``$defs`` of the document: one entry per class, named by its class name (a
    collision is an error, never a silent overwrite)."""

    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}
        self.owner: dict[str, type] = {}

    def name(self, cls: type) -> str:
        name = cls.__name__
        if self.owner.setdefault(name, cls) is not cls:
            raise ValueError(f"two protocol classes are named {name}: "
                             f"{self.owner[name].__module__} and {cls.__module__}")
        return name

    def ref(self, cls: type) -> dict[str, Any]:
        name = self.name(cls)
        if name not in self.defs:
            self.defs[name] = {}  # placeholder: a class may refer to itself
            self.defs[name] = self._plain(cls)
        return {"$ref": f"#/$defs/{name}"}

    def _plain(self, cls: type) -> dict[str, Any]:
        """A nested dataclass (not a frame): all its fields, as ``dataclasses.asdict``."""
        hints = get_type_hints(cls, include_extras=True)
        props = {wire_name(f.name): schema_of(hints[f.name], self.ref)
                 for f in dataclasses.fields(cls)}
        return _object(cls, props, list(props))


def _object(cls: type, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "title": cls.__name__}
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(f"{cls.__name__}("):  # dataclass's generated signature
        out["description"] = " ".join(doc.split())
    out["properties"] = props
    if required:
        out["required"] = required
    return out


def _message_schema(cls: type[Message], defs: _Defs) -> dict[str, Any]:
    props: dict[str, Any] = {
        "type": {"const": cls.TYPE},
        "id": {"description": "correlation id, echoed in the reply",
               "anyOf": [{"type": "string", "maxLength": ID_MAX_CHARS}, {"type": "number"},
                         {"type": "null"}]},
    }
    required = ["type"]
    for f in dataclasses.fields(cls):
        hint = cls._HINTS[f.name]
        props[wire_name(f.name)] = schema_of(hint, defs.ref, cls._LIMITS[f.name])
        if (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                and not is_optional(hint)):
            required.append(wire_name(f.name))
    out = _object(cls, props, required)
    out["x-roles"] = list(cls.ROLES)
    if cls.SETTLE:
        out["x-settle"] = True
    return out


def _event_schema(cls: type[Event], defs: _Defs) -> dict[str, Any]:
    hints = get_type_hints(cls, include_extras=True)
    props: dict[str, Any] = {
        "type": {"const": cls.TYPE},
        "seq": {"type": "integer", "description": "per-session sequence number (after welcome)"},
        "id": {"description": "the id of the request this frame answers"},
    }
    required = ["type"]
    spread = SPREAD.get(cls.TYPE)
    for f in dataclasses.fields(cls):
        if get_origin(hints[f.name]) is ClassVar or f.name == spread:
            continue
        props[wire_name(f.name)] = schema_of(hints[f.name], defs.ref)
        if f.default is not None:  # to_wire leaves out only None-defaulted Nones
            required.append(wire_name(f.name))
    out = _object(cls, props, required)
    if spread:
        out["x-spread"] = spread
        out["additionalProperties"] = True
    if cls in HANDWRITTEN:
        out["x-handwritten"] = True
    return out


def protocol_document() -> dict[str, Any]:
    """The whole document: ``$defs`` for every class, ``ClientMessage``/``ServerEvent``
    unions, and ``x-messages``/``x-events`` indexes by wire type (what the SDK's type
    generator reads)."""
    defs = _Defs()
    messages: dict[str, dict[str, Any]] = {}
    for type_name, mcls in sorted(registered_types().items()):
        name = defs.name(mcls)
        defs.defs[name] = _message_schema(mcls, defs)
        messages[type_name] = {"$ref": f"#/$defs/{name}", "roles": list(mcls.ROLES)}
    events: dict[str, list[str]] = {}
    for ecls in [*event_classes(), *[h for h in HANDWRITTEN if h not in event_classes()]]:
        name = defs.name(ecls)
        defs.defs[name] = _event_schema(ecls, defs)
        events.setdefault(ecls.TYPE, []).append(f"#/$defs/{name}")
    defs.defs["ClientMessage"] = {"oneOf": [{"$ref": m["$ref"]} for m in messages.values()]}
    defs.defs["ServerEvent"] = {"anyOf": [{"$ref": r} for rs in events.values() for r in rs]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "LiveDesk WebSocket protocol",
        "description": "Every frame on /ws, generated from the code by `python -m gateway.specs`"
                       " (docs/protocol.md explains them). Do not edit by hand.",
        "x-protocol-version": PROTOCOL_VERSION,
        "x-max-frame-bytes": MAX_FRAME_BYTES,
        "anyOf": [{"$ref": "#/$defs/ClientMessage"}, {"$ref": "#/$defs/ServerEvent"}],
        "x-messages": messages,
        "x-events": events,
        "$defs": dict(sorted(defs.defs.items())),
    }
