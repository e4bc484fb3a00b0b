"""Fabricated run directories: every shape of content the report must render, without training anything."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imsave

from dlrl.rundir import RunDir

# The regression experiment's target, as the run writes it into targets.json beside the summary.
REGRESSION_TARGETS = [
    {
        "metric": "test_mse_over_noise_var",
        "op": "<=",
        "value": 1.10,
        "label": "synthetic data: test MSE at most 1.10 x the noise variance",
        "reference": "1.0 x the noise variance is the best any model can do",
    }
]


def png(path: Path, width: int = 40, height: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    imsave(path, rng.random((height, width, 3)))
    return path


def write_section(
    path: Path,
    experiment: str,
    summary: dict,
    figures: tuple[str, ...] = ("curves",),
    targets: list[dict] | None = None,
) -> Path:
    """An experiment's run directory; ``targets`` (default: the regression's) evaluated into targets.json."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(f"experiment: {experiment}\nseed: 0\nepochs: 3\n")
    (path / "env.json").write_text(json.dumps({"seed": 0, "device": "cpu", "torch": "2.x"}))
    (path / "metrics.csv").write_text("epoch,train_loss,val_loss\n1,0.9,1.0\n2,0.5,0.6\n3,0.25,0.3\n")
    summary = {"kind": "experiment", "experiment": experiment, **summary}
    (path / "summary.json").write_text(json.dumps(summary))
    RunDir(path).write_targets(REGRESSION_TARGETS if targets is None else targets, summary)
    for name in figures:
        png(path / "figures" / f"{name}.png")
    return path


def fabricated_run(root: Path) -> Path:
    """A 'dlrl run' directory: sections done (with nested content), failed, skipped and never started."""
    root.mkdir(parents=True)
    done = write_section(
        root / "regression",
        "regression",
        {
            "test_mse_over_noise_var": 1.05,
            "parameters": 8513,
            "sample_data": False,
            "hidden": [64, 64],
            "per_class": {"a": 0.5, "b": 0.75},
            "by_noise": {"gaussian": {"0.1": 30.0, "0.3": 22.5}, "salt": {"0.1": 28.0, "0.3": 20.0}},
            "folds": [{"fold": 1, "val_loss": 0.25}, {"fold": 2, "val_loss": 0.5}],
            "_internal": "hidden",
        },
        figures=("fit", "learning_curves"),
    )
    png(done / "figures" / "seed-1" / "episode.png", 120, 20)  # a nested figure folder, a wide figure
    nested = write_section(
        done / "seed-2", "regression", {"seed_score": 0.875}, figures=("nested",), targets=[]
    )
    (nested / "figures" / "captions.json").write_text(json.dumps({"nested": "A caption from captions.json"}))
    (done / "tables").mkdir()
    (done / "tables" / "search.csv").write_text("lr,val_loss\n0.001,0.5\n0.01,0.25\n")
    (done / "notes.md").write_text("# About\nSome *notes* <b>here</b>.\n\n- first point\n- second point\n")

    missed = write_section(root / "regression2", "regression", {"test_mse_over_noise_var": 1.5}, figures=())
    assert missed.exists()
    statuses = {
        "regression": {"status": "done", "experiment": "regression", "seconds": 12.5, "cpu_seconds": 20.0},
        "regression2": {"status": "done", "experiment": "regression", "seconds": 3.0},
        "classifier": {
            "status": "failed",
            "experiment": "classifier",
            "error": "RuntimeError: <script>boom</script> went wrong",
            "traceback": "Traceback (most recent call last):\n  File 'x.py'\nRuntimeError: boom",
            "seconds": 1.0,
        },
        "dqn": {"status": "skipped", "experiment": "dqn"},
    }
    (root / "sections.json").write_text(json.dumps(statuses))
    (root / "run.json").write_text(
        json.dumps(
            {
                "kind": "run",
                "profile": "quick",
                "seed": 0,
                "sections": ["regression", "regression2", "classifier", "dqn", "vae"],
                "parts": {"regression": "part1", "classifier": "part1", "dqn": "part3", "vae": "part2"},
                "seconds": 42.0,
            }
        )
    )
    (root / "env.json").write_text(
        json.dumps({"python": "3.11", "cpu_count": 2, "seed": 0, "packages": {"torch": "2.13.0"}})
    )
    return root


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    return fabricated_run(tmp_path / "run")


@pytest.fixture
def make_png() -> Callable[..., Path]:
    return png


@pytest.fixture
def make_section() -> Callable[..., Path]:
    return write_section
