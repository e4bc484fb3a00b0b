"""Progress of a multi-stage job: one line per stage with elapsed time and an ETA a person can trust.

The ETA starts from a table of expected seconds per stage and is refined as stages finish: the ratio of
actual to expected time of the finished stages scales what is left (a slow, busy machine is slow for
every stage). Lines go through ``logging``; the CLI decides where they are shown.

Per-batch bars (``progress_bar``) show on a terminal and in a Jupyter notebook (tqdm.auto draws a widget
there), and never in logs or pipes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where stderr is no terminal but a widget can be drawn)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def progress_bar(items: Iterable[Any], label: str | None) -> Iterable[Any]:
    """``items`` with a transient progress bar labelled ``label`` on a terminal or in a notebook; ``items``
    itself where no one watches (label None, logs, pipes, tests)."""
    if label is None or not (sys.stderr.isatty() or in_notebook()):
        return items
    from tqdm.auto import tqdm  # only when a bar is drawn: tqdm.auto imports ipywidgets if present

    total = len(items) if hasattr(items, "__len__") else None
    return tqdm(items, desc=label, leave=False, total=total, dynamic_ncols=True)


def format_seconds(seconds: float | None) -> str:
    """``75`` -> ``'1:15'``, ``3725`` -> ``'1:02:05'``; None -> ``'?'``."""
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class StageProgress:
    """Elapsed time and ETA over named stages with expected durations (seconds).

    expected: stage name -> expected seconds, in the order the stages run.
    clock: a monotonic clock (seconds); tests pass a fake one.
    """

    # The speed ratio is clamped so one odd stage cannot make the ETA absurd.
    MIN_RATIO, MAX_RATIO = 0.25, 4.0

    def __init__(self, expected: dict[str, float], clock: Callable[[], float] = time.perf_counter):
        self.expected = dict(expected)
        self.clock = clock
        self.started = clock()
        self.finished: dict[str, float] = {}  # stage -> actual seconds (only stages run in this session)
        self.skipped: set[str] = set()
        self.current: str | None = None
        self.current_started = self.started

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def ratio(self) -> float:
        """Actual / expected time of the stages finished so far (1.0 before any finished)."""
        expected = sum(self.expected[name] for name in self.finished)
        if expected <= 0:
            return 1.0
        ratio = sum(self.finished.values()) / expected
        return min(self.MAX_RATIO, max(self.MIN_RATIO, ratio))

    def eta(self) -> float:
        """Seconds until every stage is done, by the refined expectation."""
        remaining = [name for name in self.expected if name not in self.finished and name not in self.skipped]
        total = 0.0
        for name in remaining:
            expected = self.expected[name] * self.ratio
            if name == self.current:
                # A stage running over its expectation still has a little left, never negative.
                expected = max(expected - (self.clock() - self.current_started), 0.1 * expected)
            total += expected
        return total

    def _position(self, name: str) -> str:
        names = list(self.expected)
        return f"[{names.index(name) + 1}/{len(names)}]" if name in names else "[?]"

    def start(self, name: str) -> str:
        self.current = name
        self.current_started = self.clock()
        return self._line(name, "started")

    def skip(self, name: str, reason: str) -> str:
        self.skipped.add(name)
        return self._line(name, reason)

    def finish(self, name: str, status: str = "done") -> str:
        """Mark ``name`` finished (its seconds land in ``finished[name]``); returns the line to show."""
        self.finished[name] = self.clock() - self.current_started
        self.current = None
        return self._line(name, f"{status} in {format_seconds(self.finished[name])}")

    def _line(self, name: str, what: str) -> str:
        return (
            f"{self._position(name)} {name}: {what}  "
            f"(elapsed {format_seconds(self.elapsed)}, ETA {format_seconds(self.eta())})"
        )
