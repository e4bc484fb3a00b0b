"""Real Ray Tune searches on a tiny regression: one search shared by several checks, and Ctrl-C + --resume.

Ray start-up costs seconds, so these are few and marked slow.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dlrl.cli import main
from dlrl.config import build_config, read_config_file
from dlrl.config.regression import RegressionConfig

from .conftest import TINY_REGRESSION, alive, descendants

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _wait_gone(pids: set[int], seconds: float = 15.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("tune") / "run"
    before = descendants()
    handler = signal.getsignal(signal.SIGINT)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(
            [
                "tune",
                "regression",
                "--out",
                str(out),
                "--num-samples",
                "3",
                "--folds",
                "2",
                "--train-best",
                *TINY_REGRESSION,
            ]
        )
    leftovers = _wait_gone(descendants() - before)
    return {
        "code": code,
        "out": out,
        "stdout": stdout.getvalue(),
        "stderr": stderr.getvalue(),
        "leftovers": leftovers,
        "sigint_restored": signal.getsignal(signal.SIGINT) is handler,
    }


def test_search_runs_quietly_and_leaves_no_process(search):
    assert search["code"] == 0, search["stderr"]
    err = search["stderr"]
    trial_lines = [line for line in err.splitlines() if line.startswith("trial ")]
    assert len(trial_lines) == 3 and all("| best val_mse=" in line for line in trial_lines), err
    for noise in ("Token authentication", "WARNING", "╭", "[I ", "Traceback", "View detailed results"):
        assert noise not in err, err
    assert "Started a local Ray instance" in (search["out"] / "ray.log").read_text()
    assert "best config:" in search["stdout"]
    assert not search["leftovers"]
    assert search["sigint_restored"]  # Ctrl-C after the search (final training) interrupts again


def test_search_writes_trials_best_config_figures_and_summary(search):
    out = search["out"]
    trials = _rows(out / "trials.csv")
    assert len(trials) == 3 and {t["status"] for t in trials} == {"TERMINATED"}
    assert {"val_mse", "val_mse_std", "best_epoch", "optim.lr", "model.hidden_sizes"} <= set(trials[0])
    epochs = _rows(out / "metrics.csv")
    assert {r["trial"] for r in epochs} == {t["trial"] for t in trials}
    assert {"val_mse_fold0", "val_mse_fold1", "val_mse_std"} <= set(epochs[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 3 and summary["folds"] == 2 and summary["ray_start_seconds"] > 0
    best = min(trials, key=lambda t: float(t["val_mse"]))
    assert summary["best_trial"] == best["trial"]
    assert summary["best_metric"] == pytest.approx(float(best["val_mse"]))
    for name in ("metric_vs_params", "learning_curves", "parallel_coordinates"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    # best_config.yaml is an ordinary regression config carrying the best trial's parameters
    config = build_config(RegressionConfig, read_config_file(out / "best_config.yaml"), "best_config.yaml")
    assert config.optim.lr == pytest.approx(float(best["optim.lr"]))
    assert config.model.hidden_sizes == json.loads(best["model.hidden_sizes"])
    assert config.epochs == 4 and config.data.num_points == 120
    # --train-best trained exactly that config on the full training data and tested it once
    assert yaml.safe_load((out / "best" / "config.yaml").read_text()) == config.model_dump(mode="json")
    assert summary["best_test_mse"] == json.loads((out / "best" / "summary.json").read_text())["test_mse"]
    # config.yaml re-runs the search: the experiment config plus a 'tune' section
    stored = yaml.safe_load((out / "config.yaml").read_text())
    assert stored["experiment"] == "regression" and stored["tune"]["folds"] == 2


def _spawn(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dlrl.cli",
        "tune",
        "regression",
        "--out",
        str(out),
        "--num-samples",
        "3",
        "--max-concurrent",
        "1",
        "--scheduler",
        "fifo",
        "--search",
        "random",
        "data.num_points=300",
        "epochs=10",
        "ensemble=0",
        "device=cpu",
        "tune.checkpoint_every=1",
        *extra,
    ]


def test_ctrl_c_stops_cleanly_and_resume_skips_finished_trials(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_spawn(out), stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    assert proc.stderr is not None
    seen: set[int] = set()
    for line in proc.stderr:
        seen |= descendants(proc.pid)
        if line.startswith("trial 1/3"):
            break
    seen |= descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "interrupted; continue with the same command plus --resume" in rest
    assert len(seen) > 3  # Ray's processes were there ...
    assert not _wait_gone(seen)  # ... and are all gone
    first = _rows(out / "trials.csv")
    finished = {t["trial"]: t for t in first if t["status"] == "TERMINATED" and t["epochs"] == "10"}
    assert finished
    stamps = {tid: (out / "search" / f"trial_{tid}" / "result.json").stat().st_mtime_ns for tid in finished}

    code = main(_spawn(out, "--resume")[3:])
    assert code == 0
    trials = _rows(out / "trials.csv")
    assert len(trials) == 3 and all(t["status"] == "TERMINATED" and t["epochs"] == "10" for t in trials)
    for tid, row in finished.items():  # finished trials were not run again
        assert (out / "search" / f"trial_{tid}" / "result.json").stat().st_mtime_ns == stamps[tid]
        assert next(t for t in trials if t["trial"] == tid) == row
