"""The gateway's log output: JSON lines for machines, or text for a developer's terminal.

Why JSON lines with the standard library (no ``structlog``): every module already logs
through ``logging``; a formatter on the root handler turns each record into one JSON object
per line, with the ids of :mod:`signaling.logctx` (node, session, user, conversation, call,
request_id) and the current span's ``trace_id``/``span_id`` (:mod:`signaling.tracing`)
added wherever they are known, so a log shipper can join a line to its conversation and to
its trace without parsing prose. The text format keeps the old one-line layout and appends
the same ids as ``key=value``.

Fields of a JSON line (docs/operations.md#log-fields): ``ts`` (UTC, ISO 8601 with
milliseconds), ``level``, ``logger``, ``message``; the context ids present; ``trace_id``,
``span_id`` inside a recorded span; ``exc`` with the traceback of ``log.exception``. A
record's own ``extra`` fields are not copied: only the documented ones are emitted.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO

from signaling import logctx, tracing

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def context_fields(node: str | None = None) -> dict[str, str]:
    """The ids of the current context plus trace ids; ``node`` fills in for lines logged
    outside any node's context (start-up, one process = one node)."""
    fields = logctx.current()
    if node is not None and "node" not in fields:
        fields = {"node": node, **fields}
    ids = tracing.current_ids()
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside the message are escaped)."""

    def __init__(self, node: str | None = None) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, object] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(context_fields(self.node))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The development layout, with the context ids appended as ``key=value``."""

    def __init__(self, node: str | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = context_fields(None)  # the node is the same on every line of a process
        if not fields:
            return line
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        head, nl, rest = line.partition("\n")  # after the message, before a traceback
        return f"{head} [{extra}]{nl}{rest}"


def format_for(given: str | None, dev: bool) -> str:
    """The log format ``livedesk serve`` uses: the one asked for (``--log-format`` or
    ``LIVEDESK_LOG_FORMAT``), else text for a developer (``--dev``) and JSON lines for
    everyone else (a shipper parses them). Raises ``ValueError`` for an unknown one."""
    fmt = given or ("text" if dev else "json")
    if fmt not in FORMATS:
        raise ValueError(f"--log-format/LIVEDESK_LOG_FORMAT must be text or json, not {fmt!r}")
    return fmt


def formatter(fmt: str, node: str | None = None) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(node)
    if fmt == "text":
        return TextFormatter(node)
    raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def setup_logging(fmt: str, level: str, node: str | None = None,
                  stream: IO[str] | None = None) -> logging.Handler:
    """The root logger's one handler (replacing any ``basicConfig`` made before): ``fmt``
    is ``text`` or ``json``, ``level`` a level name. Returns the handler."""
    fmt_obj = formatter(fmt, node)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "livedesk", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(fmt_obj)
    handler.livedesk = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aioice").setLevel(logging.WARNING)
    return handler
