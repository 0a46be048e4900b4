"""A history search, parsed from query parameters into a typed value, or refused with a
:class:`QueryError` naming the parameter (the HTTP layer answers 400 with it).

Parameters: ``q`` text (every white-space separated part must occur in one message, see
:mod:`gateway.store.terms`), ``user`` viewer id, ``agent`` an agent who handled it,
``room``, ``order`` an order id (the conversations of the viewer who placed it, in its
room), ``since`` / ``until`` bounds on when the conversation was opened (ISO 8601 date or
date-time, UTC unless it says otherwise, or seconds since the epoch), ``limit`` 1–200
(default 50). Every limit is in docs/storage.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from . import terms as T

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ID_CHARS = 128
PARAMS = ("q", "user", "agent", "room", "order", "since", "until", "limit")


class QueryError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    user: str | None = None
    agent: str | None = None
    room: str | None = None
    order: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def parts(self) -> list[str]:
        return T.query_parts(self.q)

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> SearchQuery:
        unknown = sorted(k for k in params if k not in PARAMS)
        if unknown:
            raise QueryError(unknown[0], f"unknown parameter {unknown[0]!r}; use "
                                         f"{', '.join(PARAMS)}")
        q = params.get("q", "")
        if len(q) > T.MAX_QUERY_CHARS:
            raise QueryError("q", f"q is longer than {T.MAX_QUERY_CHARS} characters")
        if q.strip() and not T.query_parts(q):
            raise QueryError("q", "q has no letters or digits to search for")
        if len(T.query_parts(q)) > T.MAX_QUERY_PARTS:
            raise QueryError("q", f"q has more than {T.MAX_QUERY_PARTS} words")
        ids: dict[str, str | None] = {}
        for name in ("user", "agent", "room", "order"):
            v = params.get(name)
            if v is None or v == "":
                ids[name] = None
                continue
            if len(v) > MAX_ID_CHARS or not v.isprintable():
                raise QueryError(name, f"{name} must be at most {MAX_ID_CHARS} printable "
                                       f"characters")
            ids[name] = v
        since = _time("since", params.get("since"))
        until = _time("until", params.get("until"))
        if since is not None and until is not None and since > until:
            raise QueryError("since", "since is after until")
        raw = params.get("limit")
        limit = DEFAULT_LIMIT
        if raw not in (None, ""):
            if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
                raise QueryError("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
            limit = int(raw)
        return cls(q=q.strip(), since=since, until=until, limit=limit, **ids)


def _time(name: str, raw: str | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        v = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(v) or v < 0:
            raise QueryError(name, f"{name} must be a time (ISO 8601 or epoch seconds)")
        return v
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise QueryError(name, f"{name}={raw[:40]!r} is not a time: use ISO 8601 "
                               f"(2026-12-06 or 2026-12-06T08:00:00+08:00) or epoch "
                               f"seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
