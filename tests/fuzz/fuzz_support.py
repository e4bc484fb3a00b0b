"""Helpers of the fuzz tests (conftest.py puts this folder on sys.path): how many examples a property gets
(DLRL_FUZZ=1, as `make fuzz` sets, multiplies them), the count of inputs tried, and the one check every
input must pass: success, or one DlrlError line naming the problem, and no file written outside the run
directory."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from hypothesis import HealthCheck, settings

from dlrl.errors import DlrlError

T = TypeVar("T")

FUZZ = os.environ.get("DLRL_FUZZ", "") not in ("", "0")
SCALE = int(os.environ.get("DLRL_FUZZ_SCALE", "40")) if FUZZ else 1

# Inputs each property tried in this session (printed at the end of the session).
TRIED: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()


def fuzz_settings(examples: int) -> settings:
    """``examples`` per property in the normal suite, SCALE times as many under `make fuzz`."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,  # nothing written into the repository
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


def tried(reader: str) -> None:
    """Count one generated input of ``reader`` (once per example, however many calls it makes)."""
    TRIED[reader] += 1


def outcome(reader: str, call: Callable[[], T]) -> T | DlrlError:
    """``call()``'s result, or the DlrlError it raised, checked to be one line; anything else propagates
    (and fails the property)."""
    try:
        result = call()
    except DlrlError as err:
        message = str(err)
        assert message and "\n" not in message and "Traceback" not in message, repr(message)
        OUTCOMES[f"{reader}: {type(err).__name__}"] += 1
        return err
    OUTCOMES[f"{reader}: ok"] += 1
    return result


def snapshot(roots: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``roots``: compared before and after to find unexpected writes."""
    files = {}
    for root in roots:
        if root.exists():
            for path in root.rglob("*"):
                if path.is_file() or path.is_symlink():
                    try:
                        stat = path.lstat()
                    except OSError:
                        continue
                    files[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return files


def written_outside(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], allowed: Path
) -> list[str]:
    """Files created or changed between two snapshots that are not under ``allowed``."""
    return sorted(
        path
        for path, stat in after.items()
        if before.get(path) != stat and not Path(path).is_relative_to(allowed)
    )


def summary_line() -> str:
    total = sum(TRIED.values())
    readers = ", ".join(f"{name} {count}" for name, count in sorted(TRIED.items()))
    return f"fuzz: {total} generated inputs ({readers})"


def outcome_lines() -> list[str]:
    return [f"  {key}: {count}" for key, count in sorted(OUTCOMES.items())]
