"""``dlrl run --tensorboard``: every section's metrics.csv files as TensorBoard scalars."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

from dlrl.errors import DlrlError
from dlrl.rundir import RunDir

GROUP_COLUMNS = ("trial", "run")  # metrics.csv columns naming one of several runs in one file


def check_tensorboard() -> None:
    """Refuse --tensorboard before anything runs if the optional package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise DlrlError(
            "--tensorboard: the 'tensorboard' package is not installed (pip install tensorboard, "
            "or pip install 'dlrl[tensorboard]')"
        )


def log_tensorboard(section_dir: Path, log_dir: Path) -> int:
    """Write every numeric column of the section's metrics.csv files as TensorBoard scalars; returns points.

    Nested run directories (seed-0/metrics.csv, ...) go to their own sub-runs. ``log_dir`` is replaced.
    """
    # why here: tensorboard is optional and torch-heavy; only --tensorboard needs it
    from torch.utils.tensorboard import SummaryWriter

    shutil.rmtree(log_dir, ignore_errors=True)
    points = 0
    for path in sorted(section_dir.rglob("metrics.csv")):
        rows = RunDir(path.parent).read_metrics()
        relative = path.parent.relative_to(section_dir)
        for group, group_rows in _groups(rows).items():
            writer = SummaryWriter(log_dir=str(log_dir / relative / group))
            try:
                points += _write_scalars(writer, group_rows)
            finally:
                writer.close()
    return points


def _groups(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """One metrics.csv may hold every trial of a search or every agent of a DQN section: one TensorBoard
    run per trial / agent ("trial-7"), so their curves do not mix; "" for a file of one run."""
    key = next((k for k in GROUP_COLUMNS if rows and k in rows[0]), None)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(f"{key}-{row[key]}" if key else "", []).append(row)
    return groups


def _write_scalars(writer: Any, rows: list[dict[str, Any]]) -> int:
    step_key = next((k for k in ("step", "epoch", "episode", "iteration") if k in rows[0]), None)
    points = 0
    for index, row in enumerate(rows, 1):
        step = row.get(step_key) if step_key else index
        step = int(step) if isinstance(step, int | float) else index
        for key, value in row.items():
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and key != step_key and key not in GROUP_COLUMNS:
                writer.add_scalar(key, value, step)
                points += 1
    return points
