"""A real Ray Tune search on a tiny regression, shared by every check here: started as `dlrl tune` in a
subprocess, stopped with Ctrl-C after its first trial, then resumed in-process with --train-best.

Ray start-up costs seconds, so this is the only search of the tune tests; marked slow.
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

from .conftest import alive, descendants

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# Three trials one at a time, a checkpoint every epoch: Ctrl-C after the first leaves the rest to resume.
ARGS = [
    "tune",
    "regression",
    "--num-samples",
    "3",
    "--folds",
    "2",
    "--max-concurrent",
    "1",
    "data.num_points=300",
    "data.test_points=200",
    "epochs=10",
    "ensemble=0",
    "device=cpu",
    "tune.checkpoint_every=1",
    "figures=false",  # of the best config's training: the search's own figures are drawn all the same
]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _wait_gone(pids: set[int], seconds: float = 15.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


def _is_ray_worker(command: str) -> bool:
    """A Ray worker process, by its command line: while it starts, then as Ray renames it (ray::IDLE, ray::
    ImplicitFunc.train ...); Ray's own agents (ray::DashboardAgent, ray::RuntimeEnvAgent) are not workers."""
    name = command.split(" ", 1)[0]
    return "default_worker.py" in command or (name.startswith("ray::") and not name.endswith("Agent"))


def _interrupted_search(out: Path) -> dict:
    """Run the search in a subprocess and press Ctrl-C (SIGINT to its process group) after trial 1."""
    command = [sys.executable, "-m", "dlrl.cli", *ARGS, "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    assert proc.stderr is not None
    commands: dict[int, str] = {}  # every process seen below dlrl, with its command line when first seen

    def look() -> None:
        for pid in descendants(proc.pid) - commands.keys():
            with contextlib.suppress(OSError):
                commands[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    for line in proc.stderr:
        look()
        if line.startswith("trial 1/3"):
            break
    look()
    seen = set(commands)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    rest = proc.stderr.read()
    code = proc.wait(timeout=90)
    trials = _rows(out / "trials.csv")
    finished = {t["trial"]: t for t in trials if t["status"] == "TERMINATED"}
    stamps = {tid: (out / "search" / f"trial_{tid}" / "result.json").stat().st_mtime_ns for tid in finished}
    return {
        "code": code,
        "stderr": rest,
        "processes": seen,
        "ray_workers": [c for c in commands.values() if _is_ray_worker(c)],
        "leftovers": _wait_gone(seen),
        "finished": finished,
        "stamps": stamps,
    }


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("tune") / "run"
    interrupted = _interrupted_search(out)
    before = descendants()
    handler = signal.getsignal(signal.SIGINT)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([*ARGS, "--out", str(out), "--resume", "--train-best"])
    return {
        "interrupted": interrupted,
        "code": code,
        "out": out,
        "stdout": stdout.getvalue(),
        "stderr": stderr.getvalue(),
        "leftovers": _wait_gone(descendants() - before),
        "sigint_restored": signal.getsignal(signal.SIGINT) is handler,
    }


def test_ctrl_c_stops_cleanly_and_leaves_no_process(search):
    first = search["interrupted"]
    assert first["code"] == 130, first["stderr"]
    assert "interrupted; continue with the same command plus --resume" in first["stderr"]
    assert len(first["processes"]) > 3  # Ray's processes were there ...
    assert not first["leftovers"]  # ... and are all gone
    assert first["finished"]  # trial 1 at least
    # One trial at a time, stopped at most a trial later: no idle workers started beside the trials'
    assert 1 <= len(first["ray_workers"]) <= 2, first["ray_workers"]


def test_resume_finishes_the_search_without_rerunning_finished_trials(search):
    assert search["code"] == 0, search["stderr"]
    out = search["out"]
    trials = _rows(out / "trials.csv")
    assert len(trials) == 3 and {t["status"] for t in trials} == {"TERMINATED"}
    assert all(int(t["epochs"]) <= 10 for t in trials)  # a resumed trial's repeated epochs count once
    for tid, row in search["interrupted"]["finished"].items():
        assert (out / "search" / f"trial_{tid}" / "result.json").stat().st_mtime_ns == search["interrupted"][
            "stamps"
        ][tid]
        assert next(t for t in trials if t["trial"] == tid) == row


def test_search_runs_quietly_and_leaves_no_process(search):
    err = search["stderr"]
    trial_lines = [line for line in err.splitlines() if line.startswith("trial ")]
    assert trial_lines and all("| best val_mse=" in line for line in trial_lines), err
    assert trial_lines[-1].startswith("trial 3/3"), err  # counted across the interruption
    for noise in ("Token authentication", "WARNING", "╭", "[I ", "Traceback", "View detailed results"):
        assert noise not in err, err
    assert "Started a local Ray instance" in (search["out"] / "ray.log").read_text()
    assert "best config:" in search["stdout"]
    assert not search["leftovers"]
    assert search["sigint_restored"]  # Ctrl-C after the search (final training) interrupts again


def test_search_writes_trials_best_config_figures_and_summary(search):
    out = search["out"]
    trials = _rows(out / "trials.csv")
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
    assert config.epochs == 10 and config.data.num_points == 300
    # --train-best trained exactly that config on the full training data and tested it once
    assert yaml.safe_load((out / "best" / "config.yaml").read_text()) == config.model_dump(mode="json")
    assert summary["best_test_mse"] == json.loads((out / "best" / "summary.json").read_text())["test_mse"]
    # config.yaml re-runs the search: the experiment config plus a 'tune' section
    stored = yaml.safe_load((out / "config.yaml").read_text())
    assert stored["experiment"] == "regression" and stored["tune"]["folds"] == 2
