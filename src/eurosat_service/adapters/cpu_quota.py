"""How many CPUs this process may really use: the affinity mask, capped by a cgroup CPU quota.

``os.cpu_count()`` reports the host's CPUs; a container limited to 0.25 vCPU (ECS Fargate) or to
two CPUs sees every core of the host there, and a torch thread per host core would only contend.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _cgroup_quota(root: Path) -> float | None:
    try:
        v2 = root / "cpu.max"  # "max 100000" or "25000 100000"
        if v2.is_file():
            limit, period = v2.read_text().split()[:2]
            return None if limit == "max" else int(limit) / int(period)
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def threads_per_worker(threads: int, workers: int) -> int:
    """``threads`` if set (> 0), else this process's CPUs shared among ``workers``."""
    return threads if threads > 0 else max(1, available_cpus() // max(1, workers))
