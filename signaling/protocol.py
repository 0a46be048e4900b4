"""Protocol v1 framing: typed client messages, typed server events, edge validation.

A client message type is a dataclass decorated with :func:`message`, which records its
wire ``type`` name and the roles allowed to send it. :func:`decode_frame` turns one text
frame into an instance of the right class or raises a :class:`ProtocolError` naming the
problem, *before* any handler runs: handlers only ever see well-typed objects.

A frame passes two gates: :func:`parse_json_frame` parses with
:func:`signaling.inbound.loads` (bounded size, depth and number length; no NaN), and
:func:`decode_frame` keeps only the declared fields, checks every string in them (nested ones
included) with :func:`signaling.inbound.clean_text` — no lone surrogate or control character
— and bounds each field by its :mod:`signaling.limits`, so a new message type is covered
without anyone having to remember it. (The strings are checked per field rather than in
``loads`` so that the error can carry the frame's ``id``.)

Server events are dataclasses deriving from :class:`Event`; ``to_wire()`` drops optional
fields that are ``None`` so the JSON stays small and matches the documented shapes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    ClassVar,
    TypeVar,
    dataclass_transform,
    get_args,
    get_origin,
    get_type_hints,
)

from . import inbound
from .errors import ErrorCode, ProtocolError
from .limits import DEFAULT, ID_MAX_CHARS, KEY_MAX_CHARS, FieldLimit, MaxChars, split

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024

ROLES = ("viewer", "agent", "host", "supervisor", "admin", "service")


class Message:
    """Base of every client message class. ``TYPE``, ``ROLES`` and ``SETTLE`` are set by
    :func:`message`.

    ``SETTLE``: after handling such a message the edge waits until every bus subscription
    made so far is effective (:meth:`~signaling.bus.Bus.settle`) before it reads the
    client's next frame, so nothing the client does next can publish an event before the
    subscription that should carry it back is in place. The planes set it on their own
    messages (the watches, ``conversation.open``, ``agent.status``): the edge knows no
    message by name."""

    TYPE: ClassVar[str] = ""
    ROLES: ClassVar[tuple[str, ...]] = ROLES
    SETTLE: ClassVar[bool] = False
    # declared, not assigned: :func:`message` sets them on each class it registers (and
    # makes it a dataclass, hence the fields), so a type checker knows every message has them
    _HINTS: ClassVar[dict[str, Any]]
    _LIMITS: ClassVar[dict[str, FieldLimit]]
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


_REGISTRY: dict[str, type[Message]] = {}

_M = TypeVar("_M", bound=Message)


@dataclass_transform()
def message(type_name: str, roles: tuple[str, ...] = ROLES,
            settle: bool = False) -> Callable[[type[_M]], type[_M]]:
    """Class decorator: register a dataclass as the client message ``type_name``."""

    def wrap(cls: type[_M]) -> type[_M]:
        cls = dataclass(cls)
        cls.TYPE = type_name
        cls.ROLES = tuple(roles)
        cls.SETTLE = settle
        hints = get_type_hints(cls, include_extras=True)
        cls._HINTS, cls._LIMITS = {}, {}
        for name, hint in hints.items():
            if name in ("TYPE", "ROLES", "SETTLE") or get_origin(hint) is ClassVar:
                continue
            cls._HINTS[name], cls._LIMITS[name] = split(hint)
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
    """Size check, JSON parse within :func:`signaling.inbound.loads`' limits (bytes, depth,
    number length, no NaN) and object check: the first edge checks. The strings are checked
    next, field by field, by :func:`request_id` and :func:`decode_frame` (which keep only
    the declared fields), so the error for a bad one carries the frame's ``id``."""
    obj = inbound.loads(data, max_bytes=MAX_FRAME_BYTES, what="frame", clean=False)
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"frame must be a JSON object, got {type(obj).__name__}")
    return obj


def request_id(obj: dict[str, Any]) -> str | int | float | None:
    """The frame's correlation ``id``: absent/null, a string of at most ``ID_MAX_CHARS``
    characters, or a finite number. Anything else is ``bad_request`` (answered without an
    id): it is echoed in replies, so it must always encode, and ``NaN`` is not JSON."""
    rid = obj.get("id")
    if rid is None or type(rid) is int:
        return rid
    if type(rid) is float:
        if not math.isfinite(rid):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "field 'id' must be a finite number")
        return rid
    if type(rid) is str:
        rid = inbound.clean_text(rid, "id")
        if len(rid) > ID_MAX_CHARS:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"field 'id' is {len(rid)} characters; the limit is "
                                f"{ID_MAX_CHARS}")
        return rid
    raise ProtocolError(ErrorCode.BAD_REQUEST,
                        "field 'id' must be a string or a number (or absent)")


def decode_frame(obj: dict[str, Any]) -> Message:
    """Turn a parsed JSON object into its typed message, or raise ``ProtocolError``.

    Every declared field is type-checked and bounded by its limit (see
    :mod:`signaling.limits`); strings are re-checked with :func:`signaling.inbound.clean_text`
    so an object that did not come through :func:`parse_json_frame` (a forwarded request, a
    test) gets the same rule."""
    t = obj.get("type")
    if not isinstance(t, str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "field 'type' is missing or not a string")
    cls = _REGISTRY.get(t)
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE,
                            f"unknown message type {_shown(t)!r}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        hint = cls._HINTS[f.name]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in obj or obj[f.name] is None:
            if required and not _optional(hint):
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"{t}: field {f.name!r} is required")
            continue
        kwargs[f.name] = _check(t, f.name, obj[f.name], hint, cls._LIMITS.get(f.name, DEFAULT))
    return cls(**kwargs)


def _shown(s: str, n: int = 64) -> str:
    return s if len(s) <= n else s[:n] + "…"


def _optional(hint: Any) -> bool:
    return _is_union(hint) and type(None) in get_args(hint)


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (typing.Union, types.UnionType)


class _WrongType(ProtocolError):
    """A value of the wrong JSON type: the one refusal a union tries its next option after."""

    def __init__(self, t: str, name: str, what: str):
        super().__init__(ErrorCode.BAD_REQUEST, f"{t}: field {name!r} must be {what}")


def _check(t: str, name: str, value: Any, hint: Any, lim: FieldLimit = DEFAULT) -> Any:
    if _is_union(hint):
        opts = [a for a in get_args(hint) if a is not type(None)]
        for a in opts[:-1]:
            try:
                return _check(t, name, value, a, lim)
            except _WrongType:
                pass  # the next option may fit; any other refusal (too long, bad text) stands
        return _check(t, name, value, opts[-1], lim)
    origin = get_origin(hint)
    if origin is typing.Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"{t}: field {name!r} must be one of {list(allowed)}")
        return value
    if origin is list or hint is list:
        if not isinstance(value, list):
            raise _WrongType(t, name, "a list")
        _check_items(t, name, value, lim)
        (inner,) = get_args(hint) or (Any,)
        return [_check(t, f"{name}[{i}]", v, inner, lim) for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _WrongType(t, name, "an object")
        return _tree(t, name, value, lim)
    if hint is Any:
        return _tree(t, name, value, lim)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _WrongType(t, name, "a number")
        if not math.isfinite(value):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{t}: field {name!r} must be finite")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _WrongType(t, name, "an integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise _WrongType(t, name, "a string")
        return _text(t, name, value, lim.max_chars)
    if hint is bool:
        if not isinstance(value, bool):
            raise _WrongType(t, name, "a boolean")
        return value
    return _tree(t, name, value, lim)


def _text(t: str, name: str, value: str, max_chars: int) -> str:
    """One string of a message: the inbound rule (one place), then the field's length."""
    try:
        value = inbound.clean_text(value, name)
    except ProtocolError as e:
        raise ProtocolError(e.code, f"{t}: {e.message}") from None
    if len(value) > max_chars:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"{t}: field {name!r} is {len(value)} characters; the limit is "
                            f"{max_chars}")
    return value


def _check_items(t: str, name: str, value: list[Any] | dict[Any, Any], lim: FieldLimit) -> None:
    if len(value) > lim.max_items:
        raise ProtocolError(ErrorCode.TOO_LARGE,
                            f"{t}: field {name!r} has {len(value)} entries; the limit is "
                            f"{lim.max_items}")


def _tree(t: str, name: str, value: Any, lim: FieldLimit) -> Any:
    """An untyped value (object field, ``Any``): every nested string and container bounded."""
    if type(value) is str:
        return _text(t, name, value, lim.max_chars)
    if type(value) is dict:
        _check_items(t, name, value, lim)
        return {_text(t, f"{name} (a key)", k, KEY_MAX_CHARS): _tree(t, f"{name}.{k}", v, lim)
                for k, v in value.items()}
    if type(value) is list:
        _check_items(t, name, value, lim)
        return [_tree(t, f"{name}[{i}]", v, lim) for i, v in enumerate(value)]
    if type(value) is float and not math.isfinite(value):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{t}: field {name!r} must be finite")
    return value


def dumps(obj: dict[str, Any]) -> str:
    """Server frames: compact, UTF-8 as is. ``NaN``/``Infinity`` are refused (``ValueError``)
    rather than written as bare ``NaN``, which is not JSON."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# --- the two messages the signaling layer itself owns ------------------------------------

@message("hello")
class Hello(Message):
    token: Annotated[str, MaxChars(4096)]  # a JWT; its claims are bounded by TokenAuthority
    protocol: int = PROTOCOL_VERSION


@message("resume")
class Resume(Message):
    session: str
    last_seq: int


@message("auth")
class Auth(Message):
    """Re-authenticate the live socket with a fresh token of the same identity (same user,
    role and room), before the one given in ``hello`` expires: socket tokens after sign-in
    live at most 10 minutes and the page must not drop its socket to renew them. Answered
    ``ack {expires_at}``; a refused token is an ``error`` and the socket keeps its identity
    (docs/protocol.md, "Re-authenticating")."""

    token: Annotated[str, MaxChars(4096)]


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
    ice_servers: list[dict[str, Any]]
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
class Reauthenticated(Event):
    """The answer to ``auth``: an ``ack`` carrying when the new token expires."""

    TYPE: ClassVar[str] = "ack"
    expires_at: int | None = None


@dataclass
class Pong(Event):
    TYPE: ClassVar[str] = "pong"
    ts: float
