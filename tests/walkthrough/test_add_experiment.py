"""The "Add an experiment" walkthrough of the README: a toy experiment registered here goes through the CLI,
the Python API, a real Ray Tune search and the report, with no change to dlrl itself."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import pytest

import dlrl
from dlrl.cli import main
from dlrl.experiments import EXPERIMENTS

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def toy():
    """The toy module imported by a plain name, importable by Ray's worker processes too."""
    sys.path.insert(0, str(HERE))
    old_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), old_path]))
    module = importlib.import_module("toy_experiment")
    module.register_toy()
    yield module
    EXPERIMENTS.pop("toy", None)
    sys.path.remove(str(HERE))
    if old_path is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old_path


def test_cli_and_report(toy, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    assert main(["toy", "--quick", "--out", str(out), "epochs=30"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "experiment" and summary["experiment"] == "toy"
    assert summary["slope"] == pytest.approx(2.0, abs=0.2)
    targets = json.loads((out / "targets.json").read_text())
    assert targets[0]["met"] is True and targets[0]["measured"] == summary["test_mse"]
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "test MSE at most twice the noise variance" in html and "learning_curves" in html
    assert main(["toy", "--help"]) == 0 and "Noisy points of y = 2x + 1" in capsys.readouterr().out


def test_api(toy, tmp_path: Path) -> None:
    result = dlrl.experiment("toy", quick=True, out=tmp_path / "api", optim={"lr": 0.1})
    assert result.config.optim.lr == 0.1 and result.summary["epochs_run"] == 20
    assert set(result.figures) == {"learning_curves"}
    with pytest.raises(dlrl.ConfigError, match="unknown key 'pointz'"):
        dlrl.experiment("toy", out=tmp_path / "bad", pointz=3)
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_tune_search_with_the_callers_ray(toy, tmp_path: Path) -> None:
    """A search in a process that had started Ray itself (as a notebook may): dlrl uses that Ray and leaves it
    running; an address is refused then. (dlrl starting its own Ray: tests/tuning/test_search_ray.py.)"""
    import ray

    settings = {
        "num_samples": 2,
        "folds": 2,
        "scheduler": "fifo",
        "max_concurrent": 1,
        "space": {"optim.lr": {"type": "loguniform", "low": 0.01, "high": 0.2}},
    }
    from dlrl.tuning.raysession import NO_PRESTARTED_WORKERS  # as dlrl's own Ray: seconds of CPU less

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        _system_config=NO_PRESTARTED_WORKERS,
    )
    try:
        search = dlrl.tune("toy", quick=True, out=tmp_path / "search", search=settings, epochs=4)
        assert ray.is_initialized()
        already = r"^--address 127\.0\.0\.1:1: this process is already connected to a Ray"
        with pytest.raises(dlrl.DlrlError, match=already):
            dlrl.tune("toy", quick=True, out=tmp_path / "other", search=settings, address="127.0.0.1:1")
        assert not (tmp_path / "other").exists()
    finally:
        ray.shutdown()
    assert search["kind"] == "search" and search["trials"] == 2 and search["trials_failed"] == 0
    assert search["ray_address"].startswith("this process's Ray (")
    assert 0.01 <= search.best_config.optim.lr <= 0.2
    assert len(search.trials) == 2
