"""Reading aiortc's (and aioice's) source to tell whether a hook the gateway relies on is
still there.

Each patch in this package writes around an aiortc internal. Rather than trust a version
number, its check reads the installed source for the lines the patch mirrors or replaces,
and names what is gone; the patch then stays off (or refuses to start) and its guard test
fails with that name. Reading source is slow (``inspect`` tokenizes whole modules), so the
checks cache their answer once per process.
"""

from __future__ import annotations

import inspect


def source_of(fn) -> str:
    """The source of ``fn``, or ``""`` when it has none to show (a builtin, a C method)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""
