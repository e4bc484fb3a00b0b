"""The run directory: atomic writers, metrics rows across a resume, JSON-safe summaries, env record."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from dlrl.config import read_config_file
from dlrl.config.classifier import ClassifierConfig
from dlrl.rundir import RunDir
from dlrl.utils import atomic_path, atomic_write_text


def test_layout_and_config(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r").create()
    assert run.checkpoints.is_dir() and run.figures.is_dir()
    cfg = ClassifierConfig(epochs=3)
    run.write_config(cfg)
    assert ClassifierConfig.model_validate(read_config_file(run.config_path)) == cfg
    run.write_env(seed=5, device="cpu", extra={"experiment": "classifier"})
    env = json.loads((run.path / "env.json").read_text())
    assert env["seed"] == 5 and env["torch"] == torch.__version__ and env["experiment"] == "classifier"


def test_metrics_hook_keeps_rows_before_the_resumed_epoch(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    hook = run.metrics_hook()
    for epoch in (1, 2, 3):
        hook(epoch, {"epoch": epoch, "loss": 1.0 / epoch})
    # The process died after writing epoch 3's row but before its checkpoint: resume redoes epoch 3.
    resumed = run.metrics_hook(resume=True)
    resumed(3, {"epoch": 3, "loss": 0.3, "lr": 0.1})
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[2]["loss"] == 0.3 and rows[2]["lr"] == 0.1 and rows[0]["lr"] is None
    assert run.metrics_hook()(1, {"epoch": 1}) is True  # never stops training


def test_summary_is_json_safe(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.write_summary(
        {
            "acc": np.float32(0.5),
            "n": np.int64(3),
            "t": torch.tensor(2.0),
            "bad": math.nan,
            "arr": np.arange(3),
            "tensor": torch.tensor([1.5, 2.5]),
            "path": tmp_path,
            "table": {"a": (1, 2)},
        }
    )
    summary = run.read_summary()
    assert summary == {
        "acc": 0.5,
        "n": 3,
        "t": 2.0,
        "bad": None,
        "arr": [0, 1, 2],
        "tensor": [1.5, 2.5],
        "path": str(tmp_path),
        "table": {"a": [1, 2]},
    }


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_has_the_usual_permissions(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    atomic_write_text(path, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_save_figure(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    path = RunDir(tmp_path).create().save_figure(fig, "line")
    assert path == tmp_path / "figures" / "line.png" and path.read_bytes()[:4] == b"\x89PNG"
