"""No token in the server's output, checked over the whole run (issue 17, "the server's
output contains no token after the whole suite's browser tests").

Every ``livedesk serve`` a test starts writes its output to a file registered here
(:func:`watch`: ``tests/e2e/serve_process.py``, ``tests/cluster/nodes.py``), and every log
record an in-process gateway emits passes :class:`TokenSpotter` on the root logger. When
the session ends, ``tests/conftest.py`` reads every registered file and fails the run
(exit status 1, the offending lines shown with the token cut) if a JWT or a shop secret
line appears anywhere. A single test file could only vouch for the flows it drives itself;
this sees every flow every test drove: sign-in, embed, anonymous viewers, OIDC, restarts.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

# three base64url parts, the first a JSON object's start ("{" encodes to "eyJ")
JWT = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*")

_files: list[Path] = []
_hits: list[str] = []


def watch(path: Path) -> Path:
    """Register a server's output file to be scanned when the session ends."""
    if path not in _files:
        _files.append(path)
    return path


def redact(line: str) -> str:
    return JWT.sub(lambda m: m.group(0)[:12] + "…(cut)", line)


class TokenSpotter(logging.Handler):
    """Remembers (in ``sink``) every in-process log record whose text holds a JWT."""

    def __init__(self, sink: list[str] | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.sink = _hits if sink is None else sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot format is not ours to judge
            return
        if record.exc_text:
            text += "\n" + record.exc_text
        if JWT.search(text):
            self.sink.append(f"log {record.name}: {redact(text)[:300]}")


def scan(paths: list[Path]) -> tuple[list[str], int]:
    """The lines of ``paths`` that hold a token, and how many files were read."""
    out: list[str] = []
    read = 0
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue  # a test removed its own output: nothing left to read
        read += 1
        for n, line in enumerate(text.splitlines(), 1):
            if JWT.search(line):
                out.append(f"{path}:{n}: {redact(line)[:300]}")
    return out, read


def findings() -> tuple[list[str], int]:
    """Every line with a token (in-process records, then the watched files), and how many
    files were read."""
    lines, read = scan(_files)
    return [*_hits, *lines], read
