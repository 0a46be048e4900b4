"""Typed REST request bodies: one declaration for the rule and for the OpenAPI schema.

Before, handlers read ``body.get("user")`` by hand and the Markdown tables said what they
accepted; the two drifted. A request class here declares each field's type, whether it is
required and its limits (:class:`Chars`, :class:`AtLeast`, :class:`Items`);
:func:`parse` checks a parsed JSON object against it (each refusal a ``bad_request`` naming
the field; unknown fields are ignored, as before) and :mod:`gateway.specs.openapi` writes the
schema from the same declaration.

The auth plane's ``login`` and ``token`` handlers parse with these. The order and notice
bodies are still checked by the support plane (``room_service._parse_order``,
``notices.NoticeService.post``), which knows nothing of HTTP: their classes here describe
those rules, and ``tests/unit/test_rest_bodies.py`` holds both to the same cases.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    ClassVar,
    Literal,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)

from signaling import ErrorCode, ProtocolError

from .auth.admin import MAX_LIST_ITEMS, MAX_NAME_CHARS, MAX_SKILL_CHARS
from .auth.issuers import STAFF_ROLES
from .auth.signin import MAX_USER_CHARS
from .embed_api import MAX_ROOM_CHARS
from .support.notices import MAX_LIST, NOTICE_KINDS


@dataclass(frozen=True)
class Chars:
    """A string of ``min``–``max`` characters (``max`` None: only the body size bounds it)."""

    min: int = 1
    max: int | None = None


@dataclass(frozen=True)
class AtLeast:
    n: int


@dataclass(frozen=True)
class Items:
    """A list of ``min``–``max`` non-empty strings, each at most ``max_chars`` long and, if
    ``among`` is given, one of those."""

    max: int
    max_chars: int | None = None
    among: tuple[str, ...] | None = None
    min: int = 0


@dataclass(frozen=True)
class FieldSpec:
    hint: Any  # without Annotated and without None
    required: bool
    chars: Chars | None = None
    at_least: AtLeast | None = None
    items: Items | None = None

    def json_limits(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.chars is not None:
            out["minLength"] = self.chars.min
            if self.chars.max is not None:
                out["maxLength"] = self.chars.max
        if self.at_least is not None:
            out["minimum"] = self.at_least.n
        if self.items is not None:
            out["maxItems"] = self.items.max
            if self.items.min:
                out["minItems"] = self.items.min
            item: dict[str, Any] = {"type": "string", "minLength": 1}
            if self.items.max_chars is not None:
                item["maxLength"] = self.items.max_chars
            if self.items.among is not None:
                item["enum"] = list(self.items.among)
            out["items"] = item
        return out


# --- the bodies -----------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginRequest:
    """``POST /api/auth/login``: a wrong password and an unknown user get the same 401."""

    user: Annotated[str, Chars(1, MAX_USER_CHARS)]
    password: str


@dataclass(frozen=True)
class TokenRequest:
    """``POST /api/auth/token``: optionally pick one of the account's roles and rooms."""

    role: Annotated[str, Chars(1, 32)] | None = None
    room: Annotated[str, Chars(1, 256)] | None = None


@dataclass(frozen=True)
class AnonymousRequest:
    """``POST /api/embed/anonymous``: the room the widget is on and, if the room has several,
    the shop (``embed_api``: room 1–256, shop 1–32 characters)."""

    room: Annotated[str, Chars(1, 256)]
    shop: Annotated[str, Chars(1, 32)] | None = None


@dataclass(frozen=True)
class OrderRequest:
    """``POST /api/rooms/{room}/orders``: idempotent by ``order_id`` (a repeat answers the
    first outcome)."""

    order_id: Annotated[str, Chars(1)]
    user: Annotated[str, Chars(1)]
    sku: Annotated[str, Chars(1)]
    qty: Annotated[int, AtLeast(1)]


@dataclass(frozen=True)
class NoticeRequest:
    """``POST /api/rooms/{room}/notices``: a notice to the viewers it affects; all but an
    ``announcement`` name ``skus`` or ``orders``."""

    kind: Literal["logistics_delay", "restock", "announcement"]
    text: Annotated[str, Chars(1, 1000)]
    skus: Annotated[list[str], Items(MAX_LIST)] | None = None
    orders: Annotated[list[str], Items(MAX_LIST)] | None = None


@dataclass(frozen=True)
class NewUserRequest:
    """``POST /api/admin/users``: parsed by ``gateway.auth.admin.new_account_from`` (one rule
    with the ``livedesk user add`` CLI) and checked by ``add_user`` (the user id's pattern, a
    host needs a room, the password's strength); unknown fields are refused."""

    CLOSED: ClassVar[bool] = True
    user: Annotated[str, Chars(1, 128)]
    roles: Annotated[list[str], Items(MAX_LIST_ITEMS, 32, STAFF_ROLES, min=1)]
    password: str
    name: Annotated[str, Chars(0, MAX_NAME_CHARS)] | None = None
    rooms: Annotated[list[str], Items(MAX_LIST_ITEMS, MAX_ROOM_CHARS)] | None = None
    capacity: int | None = None
    max_compensation: float | None = None
    skills: Annotated[list[str], Items(MAX_LIST_ITEMS, MAX_SKILL_CHARS)] | None = None


@dataclass(frozen=True)
class UserChangeRequest:
    """``PATCH /api/admin/users/{user}``: any of the three (at least one), parsed by
    ``gateway.auth.admin.change_from``; unknown fields are refused."""

    CLOSED: ClassVar[bool] = True
    MIN_FIELDS: ClassVar[int] = 1
    disabled: bool | None = None
    roles: Annotated[list[str], Items(MAX_LIST_ITEMS, 32, STAFF_ROLES, min=1)] | None = None
    password: str | None = None


REQUESTS: dict[str, type] = {c.__name__: c for c in (
    LoginRequest, TokenRequest, AnonymousRequest, OrderRequest, NoticeRequest, NewUserRequest,
    UserChangeRequest)}
# the notice kinds are the support plane's (one source); the Literal above must list them
assert get_args(get_type_hints(NoticeRequest)["kind"]) == NOTICE_KINDS, NOTICE_KINDS


def spec_of(cls: type, name: str) -> FieldSpec:
    hint = get_type_hints(cls, include_extras=True)[name]
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    required = f.default is dataclasses.MISSING
    if get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in get_args(hint) if a is not type(None)]
    extras: tuple[Any, ...] = ()
    if get_origin(hint) is Annotated:
        hint, *rest = get_args(hint)
        extras = tuple(rest)

    def one(kind: type) -> Any:
        return next((e for e in extras if isinstance(e, kind)), None)

    return FieldSpec(hint, required, one(Chars), one(AtLeast), one(Items))


_T = TypeVar("_T")


def parse(cls: type[_T], body: dict[str, Any]) -> _T:
    """``cls`` built from ``body`` (a parsed JSON object), or ``ProtocolError(bad_request)``
    naming the first field at fault."""
    if getattr(cls, "CLOSED", False):
        unknown = sorted(set(body) - {f.name for f in dataclasses.fields(cls)})  # type: ignore[arg-type]
        if unknown:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown field(s) {unknown[:5]}")
    least = getattr(cls, "MIN_FIELDS", 0)
    if sum(body.get(f.name) is not None for f in dataclasses.fields(cls)) < least:  # type: ignore[arg-type]
        names = ", ".join(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"send at least {least} of {names}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec = spec_of(cls, f.name)
        v = body.get(f.name)
        if v is None:
            if spec.required:
                raise ProtocolError(ErrorCode.BAD_REQUEST, _wants(f.name, spec))
            continue
        kwargs[f.name] = _check(f.name, v, spec)
    return cls(**kwargs)


def _check(name: str, v: Any, spec: FieldSpec) -> Any:
    ok: bool
    if spec.hint is str:
        ok = type(v) is str and (spec.chars is None or (
            len(v) >= spec.chars.min and (spec.chars.max is None or len(v) <= spec.chars.max)))
    elif spec.hint is int:
        ok = type(v) is int and (spec.at_least is None or v >= spec.at_least.n)
    elif spec.hint is float:
        ok = type(v) in (int, float)
    elif spec.hint is bool:
        ok = type(v) is bool
    elif get_origin(spec.hint) is Literal:
        ok = type(v) is str and v in get_args(spec.hint)
    elif get_origin(spec.hint) is list:
        it = spec.items or Items(max=len(v) if type(v) is list else 0)
        ok = (type(v) is list and it.min <= len(v) <= it.max
              and all(type(x) is str and x and (it.max_chars is None or len(x) <= it.max_chars)
                      and (it.among is None or x in it.among) for x in v))
    else:  # pragma: no cover (a new field type needs its rule here and in the schema)
        raise TypeError(f"no rule for {spec.hint!r}")
    if not ok:
        raise ProtocolError(ErrorCode.BAD_REQUEST, _wants(name, spec))
    return v


def _wants(name: str, spec: FieldSpec) -> str:
    """The refusal's words (the same as the hand-written checks said before)."""
    if spec.hint is str:
        if spec.chars is None:
            return f"{name!r} must be a string"
        hi = "" if spec.chars.max is None else f"–{spec.chars.max}"
        return f"{name!r} must be a string of {spec.chars.min}{hi} characters"
    if spec.hint is int:
        return (f"{name!r} must be an integer ≥ {spec.at_least.n}" if spec.at_least
                else f"{name!r} must be an integer")
    if spec.hint in (float, bool):
        return f"{name!r} must be a {'number' if spec.hint is float else 'boolean'}"
    if get_origin(spec.hint) is Literal:
        return f"{name!r} must be one of {list(get_args(spec.hint))}"
    return f"{name!r} must be a list of up to {spec.items.max if spec.items else '?'} " \
           f"non-empty strings"
