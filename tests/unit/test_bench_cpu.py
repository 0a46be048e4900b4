"""The call set-up benchmark's CPU instruments (docs/performance.md, "Call set-up"):
``benchmarks/cpu_account.py`` names who used the CPU, ``benchmarks/cpu_quota.py`` makes a
slow machine of a fast one. Both are what the slow-machine figures rest on, so both are
checked against a process whose CPU use is known: a child that spins."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

from benchmarks import cpu_account
from benchmarks.cpu_quota import CpuQuota

SPIN = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < {s}: pass\n"


def cpu_set(text: str) -> set[int]:
    """"0-1,3" (the kernel's Cpus_allowed_list) → {0, 1, 3}."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def spin(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SPIN.format(s=seconds)])


def test_cpu_account_charges_a_spinning_child_to_its_cpus_and_kind():
    cpus = os.sched_getaffinity(0)
    before = cpu_account.snapshot()
    child = spin(0.4)
    time.sleep(0.3)  # the child is still alive: its time is read from /proc
    after = cpu_account.snapshot()
    child.wait()
    used = cpu_account.diff(after, before)
    name = os.path.basename(sys.executable)
    mine = {k: v for k, v in used.items() if k[1] == name}
    assert mine, used
    # ~0.3 s of the child's spin, on a machine that may be busy: at least some of it
    assert sum(mine.values()) >= 50e6, mine
    assert all(cpu_set(c) == cpus for c, _ in mine), mine
    rows = cpu_account.table(used, calls=1)
    assert any(k.endswith(f" {name}") and v >= 50 for k, v in rows.items()), rows


SPIN_THREAD = ("import ctypes, threading, time\n"
               "def spin():\n"
               "    ctypes.CDLL(None).prctl(15, b'spinner7', 0, 0, 0)  # PR_SET_NAME: comm\n"
               + "".join("    " + line + "\n" for line in SPIN.format(s=0.4).splitlines())
               + "t = threading.Thread(target=spin, name='spinner7')\n"
               "t.start(); t.join()\n")


def test_cpu_account_by_threads_names_the_thread_that_spun():
    """``threads=True`` splits a process's time by its threads' names, digits dropped: the
    child's spinning thread (named ``spinner7`` with ``prctl(PR_SET_NAME)``, as Chromium
    names its threads) carries the time, not its idle main thread."""
    before = cpu_account.snapshot(threads=True)
    child = subprocess.Popen([sys.executable, "-c", SPIN_THREAD])
    time.sleep(0.3)
    after = cpu_account.snapshot(threads=True)
    child.wait()
    used = cpu_account.diff(after, before)
    name = os.path.basename(sys.executable)
    spinner = sum(v for (_, k), v in used.items() if k == f"{name}/spinner")
    main = sum(v for (_, k), v in used.items() if k.startswith(f"{name}/") and k != f"{name}/spinner")
    assert spinner >= 50e6, used
    assert spinner > 3 * main, used


def test_cpu_quota_holds_a_spinning_child_to_its_fraction():
    """A child spinning for 1 s of wall time in a group of a quarter of one CPU gets about a
    quarter of a second of CPU (without the limit, on a quiet machine, about one second)."""
    quota = CpuQuota(0.25)
    all_cpus = os.sched_getaffinity(0)
    start = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        os.sched_setaffinity(0, {min(all_cpus)})
        quota.enter("test", 1)
        child = spin(1.0)  # inherits the group and the CPU
        child.wait()
    finally:
        quota.close()
        os.sched_setaffinity(0, all_cpus)
    end = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (end.ru_utime + end.ru_stime) - (start.ru_utime + start.ru_stime)
    assert 0.05 <= cpu <= 0.4, cpu
    assert not list(quota.root.glob(f"livedesk-bench-test-{os.getpid()}")), "group left behind"
