"""The default number of torch threads: the CPUs this process may really use, less the load on them.

torch starts with one thread per CPU it sees. On a shared machine (a notebook server, Binder, CI)
some of those CPUs are busy with other work, or the process may use fewer of them than it sees
(a CPU affinity mask, a cgroup CPU quota), and a training step whose threads wait for each other
then runs many times slower than on one thread. So the engine asks :func:`choose_num_threads`
before a fit, which never goes above torch's own default and lowers it when

- the affinity mask (``os.sched_getaffinity``) or the cgroup CPU quota (v2 ``cpu.max``, v1
  ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) leaves fewer CPUs, or
- the one-minute load average (``os.getloadavg``), less this process's own share of it and scaled
  to the usable CPUs, says that other work already occupies some of them.

It prints one line when it lowers the count (once per new count). An explicit ``num_threads``, or
``OMP_NUM_THREADS`` in the environment, is the user's choice and is used as given. Measurements
are in ``docs/threads.md`` (``python benchmarks/bench_threads.py``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuBudget", "choose_num_threads", "cgroup_cpu_limit", "policy_threads", "read_cpu_budget"]

#: The load average's time constant (seconds): the kernel's one-minute average.
_LOAD_WINDOW = 60.0


@dataclass(frozen=True)
class CpuBudget:
    """What the thread policy reads about the machine.

    Parameters
    ----------
    affinity : CPUs in this process's affinity mask.
    quota : the cgroup CPU quota in CPUs (e.g. 1.5), or None when there is none.
    online : CPUs of the machine; the load average counts work on all of them.
    load : the one-minute load average, or None where the system has none.
    own_load : this process's own part of that load (see :class:`_OwnLoad`).
    """

    affinity: int
    quota: float | None
    online: int
    load: float | None
    own_load: float = 0.0

    @property
    def usable(self) -> int:
        """CPUs this process may keep busy: the affinity mask, capped by a whole-CPU quota (>= 1)."""
        cpus = self.affinity if self.quota is None else min(self.affinity, math.floor(self.quota))
        return max(1, cpus)

    @property
    def others(self) -> float:
        """The load of other work that falls on the usable CPUs (spread evenly over the machine)."""
        if self.load is None:
            return 0.0
        return max(0.0, self.load - self.own_load) * self.usable / max(self.online, self.usable)


def policy_threads(budget: CpuBudget, torch_default: int) -> int:
    """The thread count for ``budget``: the usable CPUs not taken by other work, rounded, in [1, default].

    One thread per free CPU: a thread that has to share its CPU stalls the others at every
    synchronisation, which costs more than the thread brings.
    """
    ceiling = max(1, min(budget.usable, int(torch_default)))
    free = budget.usable - budget.others
    return int(min(ceiling, max(1, math.floor(free + 0.5))))


def _parse_cpu_max(text: str) -> float | None:
    quota, _, period = text.strip().partition(" ")
    if quota == "max" or not period:
        return None
    return int(quota) / int(period)


def _parse_cfs(quota_text: str, period_text: str) -> float | None:
    quota, period = int(quota_text.strip()), int(period_text.strip())
    return None if quota <= 0 or period <= 0 else quota / period


def _up_to(folder: Path, top: Path) -> list[Path]:
    """``folder`` and its parents up to and including ``top`` (just ``top`` when outside it)."""
    chain = [folder]
    while folder != top and top in folder.parents:
        folder = folder.parent
        chain.append(folder)
    return chain if top in chain else [top]


def cgroup_cpu_limit(
    root: str | os.PathLike = "/sys/fs/cgroup", proc_cgroup: str | os.PathLike = "/proc/self/cgroup"
) -> float | None:
    """The tightest cgroup CPU quota over this process's cgroup and its parents, in CPUs (None: none).

    Reads cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``). In a
    container the path in ``/proc/self/cgroup`` may not exist under the mount; the mount's own
    files (the container's cgroup) are read then.
    """
    root = Path(root)
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        _, controllers, rel = (line.split(":", 2) + ["", ""])[:3]
        rel = rel.strip().lstrip("/")
        if controllers == "":  # v2: the unified hierarchy, at the root or beside v1 ("hybrid")
            mounts = [m for m in (root, root / "unified") if (m / "cgroup.controllers").is_file()]
        elif "cpu" in controllers.split(","):
            mounts = [m for m in (root / "cpu,cpuacct", root / "cpuacct,cpu", root / "cpu") if m.is_dir()]
        else:
            continue
        for mount in mounts[:1]:  # the first mount found is this controller's
            for folder in _up_to(mount / rel, mount):
                try:
                    if controllers == "":
                        limit = _parse_cpu_max((folder / "cpu.max").read_text())
                    else:
                        limit = _parse_cfs(
                            (folder / "cpu.cfs_quota_us").read_text(), (folder / "cpu.cfs_period_us").read_text()
                        )
                except (OSError, ValueError):
                    continue
                if limit is not None:
                    limits.append(limit)
    return min(limits) if limits else None


class _OwnLoad:
    """This process's share of the load average, estimated from its own CPU time.

    The kernel's one-minute load is an exponential average of the runnable tasks; this keeps the
    same average of this process's CPU use (CPU seconds per second, all threads), updated at each
    call. Without it a second fit right after a first one would read the first one's threads as
    other work and lower its own count.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wall, self._cpu = time.monotonic(), time.process_time()
        self._average = 0.0

    def update(self) -> float:
        with self._lock:
            wall, cpu = time.monotonic(), time.process_time()
            elapsed = wall - self._wall
            if elapsed > 0:
                rate = max(0.0, cpu - self._cpu) / elapsed
                keep = math.exp(-elapsed / _LOAD_WINDOW)
                self._average = self._average * keep + rate * (1.0 - keep)
                self._wall, self._cpu = wall, cpu
            return self._average


_own_load = _OwnLoad()


def read_cpu_budget() -> CpuBudget:
    """Read the affinity mask, the cgroup quota, the CPU count and the load of this machine now."""
    online = os.cpu_count() or 1
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        affinity = online
    try:
        load: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        load = None
    return CpuBudget(affinity=affinity, quota=cgroup_cpu_limit(), online=online, load=load, own_load=_own_load.update())


_announced: set[tuple[int, int]] = set()


def _describe(budget: CpuBudget, threads: int, torch_default: int) -> str:
    why = []
    if budget.usable < torch_default:
        limits = [f"an affinity mask of {budget.affinity}"] if budget.affinity < budget.online else []
        if budget.quota is not None:
            limits.append(f"a cgroup quota of {budget.quota:g}")
        source = " and ".join(limits) or f"the machine has {budget.online}"
        why.append(f"this process may use {budget.usable} CPUs ({source})")
    if budget.others >= 0.5:
        why.append(
            f"other work takes {min(budget.others, budget.usable):.1f} of {budget.usable} usable CPUs "
            f"(load average {budget.load:.2f})"
        )
    return (
        f"torch threads: {threads} instead of {torch_default}: {'; '.join(why)}. "
        "Pass num_threads= to choose the count yourself."
    )


def choose_num_threads(
    requested: int | None = None,
    *,
    torch_default: int | None = None,
    budget: CpuBudget | None = None,
    log: Callable[[str], None] | None = print,
) -> int:
    """The torch thread count for a fit: ``requested`` when given, else the policy's count.

    Parameters
    ----------
    requested : an explicit count (``num_threads``); returned as it is.
    torch_default : the count to lower from (default: ``torch.get_num_threads()`` now).
    budget : the machine as read by :func:`read_cpu_budget` (tests pass their own).
    log : called with one line when the policy lowers the count (once per new count and default);
        None keeps quiet.

    Returns
    -------
    int
        The number of threads, at least 1 and at most ``torch_default`` unless requested.
    """
    if requested is not None:
        return int(requested)
    if torch_default is None:
        import torch

        torch_default = torch.get_num_threads()
    torch_default = max(1, int(torch_default))
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return torch_default  # the user set torch's default for this process
    budget = budget if budget is not None else read_cpu_budget()
    threads = policy_threads(budget, torch_default)
    if threads < torch_default and log is not None and (threads, torch_default) not in _announced:
        _announced.add((threads, torch_default))
        log(_describe(budget, threads, torch_default))
    return threads
