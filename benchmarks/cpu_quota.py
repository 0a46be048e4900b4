"""A slower machine on a fast one: CPU bandwidth limits for a benchmark's process trees.

Why: a benchmark's ratio can hold on one machine kind and not on another whose CPUs are a
third as fast (issue 21's call set-up: 1.14 on an Intel Xeon, 1.68–1.82 on a slower AMD
EPYC, the same code). DevTools' CPU throttling slows only a page's main thread, and slowed
both paths' pages alike without moving the ratio; what differs on a slow machine is every
process — the browsers' other processes, the gateway, the harness — competing for the same
slow CPUs. A CFS bandwidth limit of ``fraction`` of each CPU with a 1 ms period gives every
process in the group ``fraction`` of the CPU time it would have, in slices short enough
that it behaves like a slower CPU rather than a stalling one.

Linux only, needs a writable cgroup v1 ``cpu`` controller (``/sys/fs/cgroup/cpu``) or a
cgroup v2 hierarchy with ``cpu`` enabled; :class:`CpuQuota` says clearly when it has
neither. Children inherit the group of the process that starts them, so a caller enters a
group and then starts what should run in it (as with CPU affinity,
``benchmarks/call_setup.py`` ``Devices``).
"""

from __future__ import annotations

import os
from pathlib import Path

PERIOD_US = 1000
"""The bandwidth period (the kernel's minimum): short, so a throttled process waits at most
~1 ms for its next slice, as on a slower CPU, instead of 100 ms at the default."""


class CpuQuota:
    """Groups named ``livedesk-bench-<name>-<pid>``, each limited to ``fraction`` of the
    CPUs it is given; :meth:`enter` moves this process (and so what it starts next) into
    one, :meth:`close` moves it back and removes the groups once empty."""

    def __init__(self, fraction: float) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"a CPU fraction is in (0, 1], not {fraction}")
        self.fraction = fraction
        self.v1 = Path("/sys/fs/cgroup/cpu")
        self.v2 = Path("/sys/fs/cgroup")
        if (self.v1 / "cpu.cfs_quota_us").exists():
            self.root, self.version = self.v1, 1
        elif "cpu" in _read(self.v2 / "cgroup.subtree_control").split():
            self.root, self.version = self.v2, 2
        else:
            raise RuntimeError("--cpu-quota needs a writable cgroup cpu controller "
                               "(/sys/fs/cgroup/cpu or cgroup v2 with cpu enabled)")
        self._groups: list[Path] = []
        self._sweep()

    def _sweep(self) -> None:
        """Remove the empty groups of runs that ended without :meth:`close` (killed)."""
        for group in self.root.glob("livedesk-bench-*"):
            pid = group.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                try:
                    group.rmdir()
                except OSError:
                    pass  # still holds a process: left alone

    def enter(self, name: str, ncpus: int) -> None:
        group = self.root / f"livedesk-bench-{name}-{os.getpid()}"
        if not group.exists():
            group.mkdir()
            self._groups.append(group)
            quota = max(1000, int(self.fraction * PERIOD_US * ncpus))  # the kernel's floor
            period = max(PERIOD_US, int(quota / (self.fraction * ncpus)))
            if self.version == 1:
                (group / "cpu.cfs_period_us").write_text(str(period))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (group / "cpu.max").write_text(f"{quota} {period}")
        (group / "cgroup.procs").write_text(str(os.getpid()))

    def close(self) -> None:
        """Back to the root group; groups whose processes are gone are removed (a group
        still holding a process is left, and says so)."""
        (self.root / "cgroup.procs").write_text(str(os.getpid()))
        for group in self._groups:
            try:
                group.rmdir()
            except OSError as e:
                print(f"cpu_quota: {group} not removed: {e}")
        self._groups.clear()

    def describe(self) -> dict:
        return {"cpu_quota": self.fraction, "cpu_quota_period_us": PERIOD_US}


def _read(p: Path) -> str:
    try:
        return p.read_text()
    except OSError:
        return ""
