"""Who and what a log line is about: the ids a log formatter adds to every line.

Why context variables and not arguments: a line deep in the support plane or the Redis
backend knows nothing of the socket or HTTP request it serves, yet an operator reading it
needs the node, session, user, conversation, call and request it belongs to. The edge that
learns an id sets it once (the WebSocket handler: node, session, user, request_id per frame;
the HTTP middleware: node, request_id; the support plane: conversation; the media plane:
call) and every line logged further down that task, or in tasks it starts (asyncio copies
the context into a new task), carries it. Nothing here formats or emits anything:
``gateway/logs.py`` reads :func:`current` when it writes a line.

Only ids, never text a person wrote and never a token: ids are what the fields are for, and
whatever is bound here ends up in every line of the task.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

FIELDS = ("node", "session", "user", "conversation", "call", "request_id")
MAX_ID_CHARS = 128  # an id longer than this is cut (a request id comes from the client)

_VARS: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"livedesk_{name}", default=None) for name in FIELDS}


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_ID_CHARS]


def bind(**ids: object) -> None:
    """Set ids for the rest of the current task (and the tasks it starts from now on).
    Unknown names raise ``TypeError``: a misspelt field would otherwise vanish silently."""
    for name, value in ids.items():
        var = _VARS.get(name)
        if var is None:
            raise TypeError(f"unknown log context field {name!r}; known: {', '.join(FIELDS)}")
        var.set(_clean(value))


class bound:
    """Set ids for the ``with`` block only (one WebSocket frame, a resource's start),
    restoring what was there before. A class, not a generator: it runs for every frame."""

    __slots__ = ("_ids", "_tokens")

    def __init__(self, **ids: object) -> None:
        for name in ids:
            if name not in _VARS:
                raise TypeError(
                    f"unknown log context field {name!r}; known: {', '.join(FIELDS)}")
        self._ids = ids
        self._tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []

    def __enter__(self) -> None:
        self._tokens = [(_VARS[n], _VARS[n].set(_clean(v))) for n, v in self._ids.items()]

    def __exit__(self, *exc: object) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)
        self._tokens = []


def current() -> dict[str, str]:
    """The ids known in this context (unset ones left out)."""
    out: dict[str, str] = {}
    for name, var in _VARS.items():
        value = var.get()
        if value is not None:
            out[name] = value
    return out
