"""Processes that tests start die with the test run.

pytest-timeout ends a hung run with ``os._exit`` and a killed CI job takes no cleanup path:
without this, every gateway node, redis-server and coturn a test had started lived on as an
orphan (dozens were found on a shared machine, each holding a port and CPU). The kernel's
parent-death signal kills the child whenever the process that started it ends, however it ends.
"""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for ``subprocess.Popen`` / ``asyncio.create_subprocess_exec``: SIGKILL
    this child when its parent exits. Linux only (a no-op elsewhere). Start children from the
    main thread: the signal follows the *thread* that forked."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
