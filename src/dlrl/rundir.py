"""The run directory: the contract between training, tuning and the report.

<run>/config.yaml     full resolved config (re-runnable with --config)
<run>/env.json        versions, seed, device, git commit, command line
<run>/metrics.csv     one row per epoch / evaluation, rewritten atomically
<run>/checkpoints/    last.pt, best.pt (plain tensors and types: weights_only loadable)
<run>/figures/        PNG figures
<run>/summary.json    headline numbers
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dlrl.config import Config, config_to_yaml
from dlrl.utils import atomic_path, atomic_write_text


class RunDir:
    """Paths and atomic writers of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

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
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        self.figures.mkdir(parents=True, exist_ok=True)
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
        path = self.path / name
        if not path.exists():
            return []
        with path.open(newline="", encoding="utf-8") as handle:
            return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]

    def metrics_hook(self, resume: bool = False, name: str = "metrics.csv", **constant: Any):
        """An ``on_epoch_end`` hook that rewrites ``name`` with every epoch's row (plus ``constant`` columns).

        On resume it keeps the rows already written, dropping any from epochs the checkpoint had not reached.
        """
        rows = self.read_metrics(name) if resume else []

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

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_text(self.path / name, json.dumps(_json_safe(data), indent=2))

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib Figure as figures/<name>.png atomically and release it."""
        path = self.figures / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        fig.clf()
        return path


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


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_record(seed: int, device: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions, machine, seed and command line: what is needed to re-run and to compare runs."""
    import numpy
    import torch

    import dlrl

    record = {
        "dlrl": dlrl.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "seed": seed,
        "git_commit": _git_commit(),
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    record.update(extra or {})
    return record
