"""CPU accounting the load benchmarks share: how busy a core was, and a process tree's CPU time.

A load benchmark pins the server to one core and its load generator to the other; these figures prove which of
the two set the pace (a saturated client core means the figure is the generator's, not the server's).
"""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path

__all__ = ["CLIENT_BOUND", "busy", "children_cpu", "core_times", "cpu_name", "machine", "tree_cpu"]

CLIENT_BOUND = 0.9  # a point whose client core was busier than this measured the load generator, not the server


def core_times() -> dict[int, tuple[int, int]]:
    """``core -> (busy ticks, total ticks)`` since boot, from /proc/stat."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            name, *values = line.split()
            numbers = [int(v) for v in values]
            idle = numbers[3] + numbers[4]
            times[int(name[3:])] = (sum(numbers[:8]) - idle, sum(numbers[:8]))
    return times


def busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The busy share of a core between two :func:`core_times` readings (0..1)."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (children, grandchildren, ...), whichever of its threads forked them."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by ``pid`` and its descendants."""
    total = 0
    for current in (pid, *descendants(pid)):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of the children this process has waited for (a load generator run with subprocess.run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_name() -> str:
    """The processor's model name (for the result files), from /proc/cpuinfo, else what Python knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(load_before: float) -> dict[str, object]:
    """What a result file says of the machine it ran on: processor, cores, platform, Python, the load average
    (1 minute) before the run and now."""
    return {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
