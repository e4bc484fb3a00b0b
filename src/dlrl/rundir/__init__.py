"""The run directory: the contract between training, tuning and the report.

<run>/config.yaml     full resolved config (re-runnable with --config)
<run>/env.json        versions, seed, device, git commit, command line
<run>/metrics.csv     one row per epoch / evaluation, rewritten atomically
<run>/checkpoints/    last.pt, best.pt (plain tensors and types: weights_only loadable)
<run>/figures/        PNG figures
<run>/summary.json    headline numbers, with "kind" (what wrote the directory: experiment, search) and
                      "experiment" (its registry name)
<run>/targets.json    the experiment's targets, each with what was measured and whether it was met
<run>/failed.json     only after a run failed unexpectedly: status, error, and traceback.txt beside it
<run>/.lock           while a dlrl process writes the directory (a second one is refused)
"""

from __future__ import annotations

import csv
import io
import json
import math
import operator
import os
import platform
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dlrl.config import Config, ExperimentConfig, config_to_yaml, lookup, read_config_file
from dlrl.errors import OutputError, RunDirError
from dlrl.rundir.failure import (  # noqa: F401  (re-exported: the run-directory contract is one module)
    FAILED_FILE,
    TRACEBACK_FILE,
    cleanup_on_error,
    first_line,
    holds_work,
    mark_failed,
    read_failure,
)
from dlrl.rundir.lock import LOCK_FILE, in_use_error, lock_holder, run_lock  # noqa: F401
from dlrl.utils import atomic_path, atomic_write_text, cannot_write, git_commit
from dlrl.version import __version__


class RunDir:
    """Paths and atomic writers of one run directory."""

    def __init__(self, path: str | Path, keep_figures: bool = False):
        self.path = Path(path)
        # With keep_figures, saved figures stay open here by name (the Python API returns them) instead of
        # being released after writing.
        self.kept_figures: dict[str, Any] | None = {} if keep_figures else None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # paths
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    def sub(self, name: str) -> RunDir:
        """A nested run directory (a section of ``dlrl run``, a fold, a seed)."""
        return RunDir(self.path / name)

    def create(self) -> RunDir:
        for directory in (self.checkpoints, self.figures):
            if directory.exists() and not directory.is_dir():
                raise RunDirError(f"{directory}: is a file, but the run keeps a directory there")
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputError(cannot_write(directory, err)) from None
        return self

    # writers
    def write_config(self, config: Config) -> None:
        atomic_write_text(self.config_path, config_to_yaml(config))

    def write_env(self, seed: int, device: str, extra: dict[str, Any] | None = None) -> None:
        atomic_write_text(
            self.path / "env.json", json.dumps(environment_record(seed, device, extra), indent=2)
        )

    def write_metrics(self, rows: Iterable[dict[str, Any]], name: str = "metrics.csv") -> None:
        """Write all rows (union of their keys as columns) atomically; called after every epoch."""
        rows = list(rows)
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path / name, buffer.getvalue())

    def read_metrics(self, name: str = "metrics.csv") -> list[dict[str, Any]]:
        """The rows of a CSV table of the run ([] if there is none); unreadable: one RunDirError."""
        path = self.path / name
        if not path.exists():
            return []
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except OSError as err:
            raise RunDirError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
        except (UnicodeDecodeError, csv.Error) as err:
            raise RunDirError(f"{path}: cannot read (not a CSV table: {first_line(err)})") from None
        for index, row in enumerate(rows, 1):
            if None in row:  # csv.DictReader puts the fields beyond the header's under the key None
                raise RunDirError(
                    f"{path}: row {index} has more fields than the header; not a table dlrl wrote"
                )
        return [{k: _number(v) for k, v in row.items()} for row in rows]

    def metrics_hook(self, resume: bool = False, name: str = "metrics.csv", **constant: Any):
        """An ``on_epoch_end`` hook that rewrites ``name`` with every epoch's row (plus ``constant`` columns).

        On resume it keeps the rows already written, dropping any from epochs the checkpoint had not reached.
        """
        rows = self.read_metrics(name) if resume else []
        for index, row in enumerate(rows, 1):  # the epochs decide which rows a resumed run keeps
            epoch = row.get("epoch")
            if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int)):
                raise RunDirError(
                    f"{self.path / name}: row {index}: epoch {epoch!r} is not a number; the table is not one "
                    "dlrl wrote (remove it to resume without the rows written so far)"
                )

        def hook(epoch: int, row: dict[str, Any]) -> bool:
            rows[:] = [r for r in rows if (r.get("epoch") or 0) < epoch]
            rows.append({**constant, **row})
            self.write_metrics(rows, name)
            return True

        return hook

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.summary_path, json.dumps(_json_safe(summary), indent=2))

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text(encoding="utf-8"))

    def write_targets(self, targets: list[dict[str, Any]], summary: dict[str, Any]) -> None:
        """targets.json: each target of the experiment with its measured value and verdict (see
        ``evaluate_targets``); the report reads the verdicts instead of knowing the experiments."""
        self.write_json("targets.json", evaluate_targets(targets, summary))

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_text(self.path / name, json.dumps(_json_safe(data), indent=2))

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib Figure as figures/<name>.png atomically and release it."""
        path = self.figures / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        if self.kept_figures is not None:
            self.kept_figures[name] = fig
        else:
            fig.clf()
        return path


OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


def evaluate_targets(targets: list[dict[str, Any]], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target ``{metric, op, value, label, reference}`` plus ``measured`` (the summary's value, None if
    absent) and ``met`` (True/False, None where it cannot be judged: not measured, NaN, not a number)."""
    evaluated = []
    for target in targets:
        metric, op, goal = str(target["metric"]), str(target.get("op", ">=")), target.get("value")
        measured = lookup(summary, metric)
        met: bool | None = None
        is_number = isinstance(measured, int | float) and not isinstance(measured, bool)
        if is_number and op in OPS and isinstance(goal, int | float) and not math.isnan(measured):
            met = bool(OPS[op](measured, goal))
        evaluated.append(
            {
                "metric": metric,
                "op": op,
                "value": goal,
                "label": str(target.get("label", metric)),
                "reference": str(target.get("reference", "")),
                "measured": measured,
                "met": met,
            }
        )
    return evaluated


def _number(value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def _json_safe(value: Any) -> Any:
    """Make numpy scalars, tuples, paths and NaN/inf JSON-friendly (NaN -> null)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if getattr(value, "ndim", 0) > 0 and hasattr(value, "tolist"):  # numpy arrays, tensors
        return _json_safe(value.tolist())
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def environment_record(seed: int, device: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions, machine, seed and command line: what is needed to re-run and to compare runs."""
    import numpy
    import torch  # only when a run starts: the CLI imports rundir for --help, which must stay fast

    record = {
        "dlrl": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "seed": seed,
        "git_commit": git_commit(),
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    record.update(extra or {})
    return record


# ------------------------------------------------------------------ choosing a run directory

DEFAULT_RUNS_ROOT = Path("runs")


def new_run_path(experiment: str, root: Path = DEFAULT_RUNS_ROOT) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{experiment}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{experiment}-{stamp}-{suffix}"
    return path


def fresh_run_path(name: str, out: str | Path | None, root: Path = DEFAULT_RUNS_ROOT) -> Path:
    """``out``, or a new runs/<name>-<timestamp>; refused if it already holds anything (a run to --resume)."""
    path = Path(out) if out else new_run_path(name, root)
    if holds_anything(path):
        holder = lock_holder(path)
        if holder:
            raise in_use_error(path, holder)
        raise RunDirError(f"--out {path}: directory exists and is not empty (use --resume to continue it)")
    return path


def holds_anything(path: Path) -> bool:
    """Whether ``path`` is a directory holding anything but a lock file (a run killed in its first moments
    leaves only that)."""
    return path.is_dir() and any(p.name != LOCK_FILE for p in path.iterdir())


def latest_run_path(
    experiment: str, root: Path = DEFAULT_RUNS_ROOT, marker: str = "config.yaml"
) -> Path | None:
    """The newest ``<experiment>-<timestamp>[-N]`` directory under ``root`` holding ``marker``."""
    pattern = re.compile(rf"{re.escape(experiment)}-(\d{{8}}-\d{{6}})(?:-(\d+))?")
    candidates = []
    for path in root.glob(f"{experiment}-*"):
        match = pattern.fullmatch(path.name)
        if match and (path / marker).is_file():
            candidates.append((match.group(1), int(match.group(2) or 1), path))
    return max(candidates)[2] if candidates else None


# Keys that may change between an interrupted run and its resumption: where it runs, not what it computes.
RESUME_FREE_KEYS = ("device", "threads")


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """'key: a in the run, b now' for the first leaf where two nested dicts differ, else None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            diff = first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    return None if a == b else f"{prefix.rstrip('.')}: {a!r} in the run, {b!r} now"


def choose_run_dir(
    entry_name: str,
    config: ExperimentConfig,
    out: str | Path | None,
    resume: bool,
    root: Path = DEFAULT_RUNS_ROOT,
) -> tuple[RunDir, bool]:
    """(run_dir, created): a new directory, or with ``resume`` the given/latest one, checked to match."""
    if resume:
        path = Path(out) if out else latest_run_path(entry_name, root)
        if path is None:
            raise RunDirError(f"--resume: no earlier '{entry_name}' run under {root}/; pass --out RUN_DIR")
        holder = lock_holder(path)
        if holder:
            raise in_use_error(path, holder)
        if not (path / "config.yaml").is_file():
            if holds_anything(path):
                raise RunDirError(f"--resume: {path} is not a dlrl run directory (no config.yaml)")
            return RunDir(path), not path.exists()  # killed before it wrote anything: start afresh
        stored = read_config_file(path / "config.yaml")
        current = config.settled_like(stored)
        if stored.get("experiment") != current.get("experiment"):
            raise RunDirError(
                f"--resume: {path} is a '{stored.get('experiment')}' run, not '{current.get('experiment')}'"
            )
        for key in RESUME_FREE_KEYS:
            stored.pop(key, None)
            current.pop(key, None)
        diff = first_difference(stored, current)
        if diff:
            raise RunDirError(
                f"--resume: config differs from the interrupted run in {path} ({diff}); resume with the same "
                f"options, or --config {path / 'config.yaml'}"
            )
        return RunDir(path), False
    return RunDir(fresh_run_path(entry_name, out, root)), True
