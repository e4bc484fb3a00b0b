"""Bad input to `dlrl tune`: one line, exit code 2, no run directory, no process left, Ray never started."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import yaml

from dlrl.cli import main
from dlrl.experiments.search import resolve_search

from .conftest import TINY_REGRESSION, alive, descendants


def _fails(capsys, tmp_path, *argv: str) -> str:
    out = tmp_path / "run"
    before = descendants()
    code = main(["tune", *argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlrl") and ": error: " in lines[0], err
    assert not out.exists()
    assert not alive(descendants() - before)
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nosuch"], "unknown experiment 'nosuch' (choose from regression, classifier"),
        (
            ["regression", "tune.space.optim.lr.low=0"],
            "tune.space.optim.lr: loguniform needs positive bounds, got low=0",
        ),
        (["regression", "tune.space.optim.lr.high=1e-4"], "empty range"),
        (["regression", "tune.space.optim.lrr={type: uniform, low: 0, high: 1}"], "did you mean 'optim.lr'"),
        (["regression", "--folds", "1"], "--folds 1: K-fold cross validation needs at least 2 folds"),
        (
            ["regression", "--folds", "200", *TINY_REGRESSION],
            "--folds 200: more folds than the 120 training samples",
        ),
        (
            ["regression", "--address", "127.0.0.1:1", *TINY_REGRESSION],
            "--address 127.0.0.1:1: cannot reach a Ray",
        ),
        (["regression", "--address", "nowhere", *TINY_REGRESSION], "expected HOST:PORT"),
        (
            ["regression", "--cpus-per-trial", "512", *TINY_REGRESSION],
            "--cpus-per-trial 512: this machine has",
        ),
        (["regression", "--metric", "val_accuracy"], "--metric val_accuracy: regression reports val_mse"),
        (["regression", "--search", "bayes"], "invalid choice: 'bayes'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message):
    assert message in _fails(capsys, tmp_path, *argv)


def test_bad_storage_is_refused_before_ray_starts(capsys, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert "--storage /nonexistent/dlrl: no such directory" in _fails(
        capsys, tmp_path, "regression", *TINY_REGRESSION, "--storage", "/nonexistent/dlrl"
    )
    assert f"--storage {a_file}: not a directory" in _fails(
        capsys, tmp_path, "regression", *TINY_REGRESSION, "--storage", str(a_file)
    )
    assert "--storage file:///nonexistent/dlrl: no such directory" in _fails(
        capsys, tmp_path, "regression", *TINY_REGRESSION, "--storage", "file:///nonexistent/dlrl"
    )
    assert "--storage nosuch://bucket/x: not a URI pyarrow can open" in _fails(
        capsys, tmp_path, "regression", *TINY_REGRESSION, "--storage", "nosuch://bucket/x"
    )
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    target = read_only if os.geteuid() != 0 else Path("/proc/self")  # root writes anywhere but /proc
    line = _fails(capsys, tmp_path, "regression", *TINY_REGRESSION, "--storage", str(target))
    assert f"--storage {target}: not writable" in line
    assert list(read_only.iterdir()) == []  # the probe file is gone


def test_an_address_that_is_not_ray_fails_in_seconds(capsys, tmp_path):
    with socket.socket() as silent:  # listens, never answers: Ray's own client would retry for 40 s
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.perf_counter()
        line = _fails(capsys, tmp_path, "regression", *TINY_REGRESSION, "--address", address)
    assert f"--address {address}: something listens there but it is not a Ray cluster" in line
    assert time.perf_counter() - started < 15


def test_ray_address_from_the_environment(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    assert "RAY_ADDRESS=127.0.0.1:1: cannot reach a Ray cluster" in _fails(
        capsys, tmp_path, "regression", *TINY_REGRESSION
    )


def test_resume_refuses_another_experiment_or_other_settings(capsys, tmp_path):
    run = tmp_path / "search"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(resolve_search("regression", quick=True).as_dict()))
    before = descendants()
    assert main(["tune", "classifier", "--quick", "--resume", "--out", str(run)]) == 2
    assert "is a search of 'regression', not 'classifier'" in capsys.readouterr().err
    assert main(["tune", "regression", "--quick", "--resume", "--out", str(run), "--folds", "4"]) == 2
    assert "settings differ from the interrupted search" in capsys.readouterr().err
    assert main(["tune", "regression", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "is not a dlrl run directory" in capsys.readouterr().err
    assert (run / "config.yaml").is_file() and sorted(p.name for p in run.iterdir()) == ["config.yaml"]
    assert not alive(descendants() - before)
