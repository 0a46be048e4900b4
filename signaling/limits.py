"""Size limits of message fields, declared on the message classes and enforced at the edge.

Why: a viewer sent a 60,000-character display name and a 55 KB ``client_msg_id``, and both
were stored and fanned out to agents. Every string field of every message now has a maximum
length, and every list or object field a maximum number of entries, *without* anyone having
to remember it for a new message type: :func:`signaling.protocol.decode_frame` applies the
defaults below to every field it decodes, and a class widens or narrows one field by
annotating it::

    @message("message.send")
    class MessageSend(Message):
        text: Annotated[str, MaxChars(4000)]
        client_msg_id: Annotated[str, MaxChars(128)]

A :class:`MaxChars` on a list or object field bounds the strings nested inside it; a
:class:`MaxItems` bounds its entries (at every nesting level). Object keys are bounded by
:data:`KEY_MAX_CHARS`. Over a limit → ``too_large`` naming the field and the limit.
"""

from __future__ import annotations

import functools
import operator
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

DEFAULT_MAX_CHARS = 256
DEFAULT_MAX_ITEMS = 64
KEY_MAX_CHARS = 64
ID_MAX_CHARS = 64  # the correlation ``id`` when it is a string


@dataclass(frozen=True)
class MaxChars:
    """At most ``n`` characters (after NFC normalisation) in this string field, or in every
    string nested in this list/object field."""

    n: int


@dataclass(frozen=True)
class MaxItems:
    """At most ``n`` entries in this list/object field (and in any list/object inside it)."""

    n: int


@dataclass(frozen=True)
class FieldLimit:
    """The limits that apply to one field of one message class."""

    max_chars: int = DEFAULT_MAX_CHARS
    max_items: int = DEFAULT_MAX_ITEMS


DEFAULT = FieldLimit()


def split(hint: Any) -> tuple[Any, FieldLimit]:
    """``(hint without Annotated, its FieldLimit)`` for a hint read with
    ``get_type_hints(cls, include_extras=True)``; ``Annotated`` may sit at the top or inside
    an optional union (``Annotated[str, MaxChars(500)] | None``)."""
    extras: list[Any] = []
    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        return base, _limit(extras)
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = []
        for a in get_args(hint):
            if get_origin(a) is Annotated:
                base, *more = get_args(a)
                extras.extend(more)
                a = base
            args.append(a)
        if extras:
            return functools.reduce(operator.or_, args), _limit(extras)
    return hint, DEFAULT


def _limit(extras: list[Any]) -> FieldLimit:
    chars, items = DEFAULT_MAX_CHARS, DEFAULT_MAX_ITEMS
    for x in extras:
        if isinstance(x, MaxChars):
            chars = x.n
        elif isinstance(x, MaxItems):
            items = x.n
    return FieldLimit(chars, items)


def limits_of(cls: type) -> dict[str, FieldLimit]:
    """Every field's limit for a registered message class (for docs and tests)."""
    return dict(getattr(cls, "_LIMITS", {}))
