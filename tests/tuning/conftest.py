"""Helpers of the tune tests: process trees from /proc (no psutil), tiny regression settings."""

from __future__ import annotations

import os
from pathlib import Path

# A regression small enough that a Ray trial is dominated by process start-up, not training.
TINY_REGRESSION = ["data.num_points=120", "data.test_points=200", "epochs=4", "ensemble=0", "device=cpu"]


def descendants(pid: int | None = None) -> set[int]:
    """Pids of every live process below ``pid`` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids of ``pids`` that still run (zombies count as gone)."""
    result = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            result.add(pid)
    return result
