"""Who used the CPU: the CPU time of every process this benchmark started, by kind.

Why: a ratio of two paths says how much longer one took, not what for. On a slow machine
(``benchmarks/cpu_quota.py``) the call set-up's gateway path took twice the direct one, and
the pages' timelines only said that every step waited; what the steps waited for is CPU
used by someone else. :func:`snapshot` reads every thread's time on CPU
(``/proc/<pid>/task/<tid>/schedstat``, nanoseconds) of this process's descendants — the
browsers' processes, the gateway, Playwright's drivers — and names each by what it is
(Chromium's ``--type``, a utility's service) and by the CPUs it may run on (the benchmark's
"devices"), so two snapshots around a call say which device's which process used how much.

With ``threads``, each process kind is split by its threads' names (``/proc/.../comm``,
digits dropped: ``renderer/chromium`` — a process's main thread carries the program's
name —, ``renderer/Compositor``, ``renderer/WebRTC_W_and_N``…): a renderer's
time is its page's main thread, its compositor and WebRTC's encoder and network threads, and
only the split says which one a page change moved.

Linux only (``/proc``); a process that ends between two snapshots is missing from the
second (its time is not counted, never negative).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

Key = tuple[str, str]  # (CPUs allowed, e.g. "0" or "1"; kind, e.g. "renderer")


def snapshot(root: int | None = None, threads: bool = False) -> Counter[Key]:
    """CPU nanoseconds so far of every descendant of ``root`` (default: this process) and of
    ``root`` itself, summed by (CPUs allowed, kind), or by (CPUs allowed, kind/thread name)
    with ``threads``."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        pid = int(stat.parent.name)
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    out: Counter[Key] = Counter()
    todo = [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        key = (_cpus(pid), "harness" if pid == root else _kind(pid))
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                ns = int(task.read_text().split()[0])
                out[(key[0], f"{key[1]}/{_thread(task.parent)}") if threads else key] += ns
            except (OSError, ValueError, IndexError):
                pass
    return out


def diff(after: Counter[Key], before: Counter[Key]) -> Counter[Key]:
    return Counter({k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)})


def table(total: Counter[Key], calls: int, floor_ms: float = 2.0) -> dict[str, float]:
    """``{"cpu0 renderer": ms per call, ...}``, largest first, entries under ``floor_ms`` left out."""
    rows = sorted(total.items(), key=lambda kv: -kv[1])
    return {f"cpu{c} {k}": round(v / calls / 1e6, 1) for (c, k), v in rows
            if calls and v / calls / 1e6 >= floor_ms}


def _thread(task: Path) -> str:
    """A thread's name without its number (Chromium's pools name threads ``…Worker3``)."""
    try:
        return re.sub(r"[0-9]+", "", (task / "comm").read_text().strip()) or "?"
    except OSError:
        return "gone"


def _cpus(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _kind(pid: int) -> str:
    try:
        # Chromium's children rewrite their command line into one space-separated string
        cmd = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").split()
    except OSError:
        return "gone"
    if not cmd:
        return "?"
    line = " ".join(cmd)
    if "chrom" in cmd[0]:
        kind = next((a[7:] for a in cmd if a.startswith("--type=")), "browser")
        if kind == "utility":
            sub = next((a.split("=", 1)[1] for a in cmd if a.startswith("--utility-sub-type=")), "")
            return "utility:" + sub.rsplit(".", 1)[-1]
        return kind
    if "gateway" in line:
        return "gateway"
    if "node" in cmd[0] or "playwright" in line:
        return "playwright-driver"
    return Path(cmd[0]).name
