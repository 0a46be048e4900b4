"""Protocol v1 framing: typed client messages, typed server events, edge validation.

A client message type is a dataclass decorated with :func:`message`, which records its
wire ``type`` name and the roles allowed to send it. :func:`decode_frame` turns one text
frame into an instance of the right class or raises a :class:`ProtocolError` naming the
problem, *before* any handler runs: handlers only ever see well-typed objects.

Server events are dataclasses deriving from :class:`Event`; ``to_wire()`` drops optional
fields that are ``None`` so the JSON stays small and matches the documented shapes.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, get_args, get_origin, get_type_hints

from .errors import ErrorCode, ProtocolError

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024

ROLES = ("viewer", "agent", "host", "admin", "service")


class Message:
    """Base of every client message class. ``TYPE`` and ``ROLES`` are set by :func:`message`."""

    TYPE: ClassVar[str] = ""
    ROLES: ClassVar[tuple[str, ...]] = ROLES


_REGISTRY: dict[str, type[Message]] = {}


def message(type_name: str, roles: tuple[str, ...] = ROLES):
    """Class decorator: register a dataclass as the client message ``type_name``."""

    def wrap(cls):
        cls = dataclass(cls)
        cls.TYPE = type_name
        cls.ROLES = tuple(roles)
        cls._HINTS = get_type_hints(cls)
        _REGISTRY[type_name] = cls
        return cls

    return wrap


def registered_types() -> dict[str, type[Message]]:
    return dict(_REGISTRY)


@dataclass
class Event:
    """Base of server events. Subclasses set ``TYPE``."""

    TYPE: ClassVar[str] = ""

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None and f.default is None:
                continue  # optional and absent
            out[f.name] = _plain(v)
        return out


def _plain(v: Any) -> Any:
    if isinstance(v, Event):
        d = v.to_wire()
        d.pop("type", None)
        return d
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {k: _plain(x) for k, x in dataclasses.asdict(v).items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def parse_json_frame(data: str | bytes) -> dict[str, Any]:
    """Size check, JSON parse and object check: the first three edge checks."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_FRAME_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"frame is {len(raw)} bytes; the limit is {MAX_FRAME_BYTES} bytes")
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProtocolError(ErrorCode.BAD_JSON, f"frame is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"frame must be a JSON object, got {type(obj).__name__}")
    return obj


def decode_frame(obj: dict[str, Any]) -> Message:
    """Turn a parsed JSON object into its typed message, or raise ``ProtocolError``."""
    t = obj.get("type")
    if not isinstance(t, str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "field 'type' is missing or not a string")
    cls = _REGISTRY.get(t)
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {t!r}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        hint = cls._HINTS[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in obj or obj[f.name] is None:
            if required and not _optional(hint):
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"{t}: field {f.name!r} is required")
            continue
        kwargs[f.name] = _check(t, f.name, obj[f.name], hint)
    return cls(**kwargs)


def _optional(hint: Any) -> bool:
    return _is_union(hint) and type(None) in get_args(hint)


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (typing.Union, types.UnionType)


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
          dict: "an object", list: "a list"}


def _check(t: str, name: str, value: Any, hint: Any) -> Any:
    if _is_union(hint):
        opts = [a for a in get_args(hint) if a is not type(None)]
        for a in opts:
            try:
                return _check(t, name, value, a)
            except ProtocolError:
                pass
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{t}: field {name!r} has the wrong type")
    origin = get_origin(hint)
    if origin is typing.Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"{t}: field {name!r} must be one of {list(allowed)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{t}: field {name!r} must be a list")
        (inner,) = get_args(hint) or (Any,)
        return [_check(t, f"{name}[]", v, inner) for v in value]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{t}: field {name!r} must be an object")
        return value
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{t}: field {name!r} must be a number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{t}: field {name!r} must be an integer")
        return value
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"{t}: field {name!r} must be {_NAMES[hint]}")
        return value
    return value


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# --- the two messages the signaling layer itself owns ------------------------------------

@message("hello")
class Hello(Message):
    token: str
    protocol: int = PROTOCOL_VERSION


@message("resume")
class Resume(Message):
    session: str
    last_seq: int


@message("ping")
class Ping(Message):
    """Application-level keepalive; answered by ``pong`` (useful behind proxies)."""


@dataclass
class Welcome(Event):
    TYPE: ClassVar[str] = "welcome"
    session: str
    user: str
    role: str
    protocol: int
    ice_servers: list
    name: str | None = None
    room: str | None = None


@dataclass
class Resumed(Event):
    TYPE: ClassVar[str] = "resumed"
    session: str
    last_seq: int


@dataclass
class Ack(Event):
    TYPE: ClassVar[str] = "ack"


@dataclass
class Pong(Event):
    TYPE: ClassVar[str] = "pong"
    ts: float
