"""Choosing the run directory: new, refused, or resumed only when the config matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlrl.errors import DataError, DlrlError
from dlrl.experiments import EXPERIMENTS
from dlrl.experiments.runner import resolve_config
from dlrl.rundir import RunDir, choose_run_dir, cleanup_on_error, latest_run_path, new_run_path

CLASSIFIER = EXPERIMENTS["classifier"]


def _config(*overrides: str):
    return resolve_config(CLASSIFIER, None, list(overrides))


def _stored_run(path: Path, *overrides: str) -> Path:
    RunDir(path).create().write_config(_config(*overrides))
    return path


def test_new_run_paths_are_unique(tmp_path: Path) -> None:
    first = new_run_path("classifier", tmp_path)
    first.mkdir()
    second = new_run_path("classifier", tmp_path)
    assert second != first and second.name.startswith(first.name)


def test_fresh_run(tmp_path: Path) -> None:
    run, created = choose_run_dir("classifier", _config(), tmp_path / "new", resume=False)
    assert run.path == tmp_path / "new" and created
    (tmp_path / "empty").mkdir()
    run, _ = choose_run_dir("classifier", _config(), tmp_path / "empty", resume=False)
    assert run.path == tmp_path / "empty"


def test_non_empty_out_is_refused(tmp_path: Path) -> None:
    _stored_run(tmp_path / "r")
    with pytest.raises(DlrlError, match="not empty"):
        choose_run_dir("classifier", _config(), tmp_path / "r", resume=False)


def test_resume_matching_config(tmp_path: Path) -> None:
    _stored_run(tmp_path / "r", "epochs=3")
    run, created = choose_run_dir("classifier", _config("epochs=3"), tmp_path / "r", resume=True)
    assert run.path == tmp_path / "r" and not created
    # Where it runs may change on resume; what it computes may not.
    choose_run_dir("classifier", _config("epochs=3", "device=cpu", "threads=1"), tmp_path / "r", resume=True)


def test_resume_different_config_names_the_key(tmp_path: Path) -> None:
    _stored_run(tmp_path / "r", "optim.lr=0.01")
    with pytest.raises(DlrlError, match=r"optim\.lr: 0\.01 in the run, 0\.0003 now"):
        choose_run_dir("classifier", _config("optim.lr=3e-4"), tmp_path / "r", resume=True)


def test_resume_another_experiments_run(tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.mkdir()
    (path / "config.yaml").write_text("experiment: regression\nepochs: 3\n")
    with pytest.raises(DlrlError, match="is a 'regression' run, not 'classifier'"):
        choose_run_dir("classifier", _config(), path, resume=True)


def test_resume_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("x")
    with pytest.raises(DlrlError, match="not a dlrl run directory"):
        choose_run_dir("classifier", _config(), tmp_path / "r", resume=True)
    run, created = choose_run_dir("classifier", _config(), tmp_path / "fresh", resume=True)
    assert created and run.path == tmp_path / "fresh"  # nothing to resume yet: start it


def test_resume_latest(tmp_path: Path) -> None:
    with pytest.raises(DlrlError, match="no earlier 'classifier' run"):
        choose_run_dir("classifier", _config(), None, resume=True, root=tmp_path)
    _stored_run(tmp_path / "classifier-20260101-120000")
    _stored_run(tmp_path / "classifier-20260101-120000-2")
    _stored_run(tmp_path / "classifier-20251231-235959-10")
    _stored_run(tmp_path / "classifier-extra-20270101-000000")  # another experiment's name prefix
    (tmp_path / "classifier-20990101-000000").mkdir()  # no config.yaml: never started
    assert latest_run_path("classifier", tmp_path) == tmp_path / "classifier-20260101-120000-2"
    run, _ = choose_run_dir("classifier", _config(), None, resume=True, root=tmp_path)
    assert run.path == tmp_path / "classifier-20260101-120000-2"


def test_cleanup_on_error_removes_only_what_it_created(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "new")
    with pytest.raises(DataError), cleanup_on_error(run, created=True):
        run.create()
        raise DataError("bad file")
    assert not run.path.exists()

    kept = RunDir(tmp_path / "resumed").create()
    with pytest.raises(DataError), cleanup_on_error(kept, created=False):
        raise DataError("bad file")
    assert kept.path.exists()

    with pytest.raises(KeyboardInterrupt), cleanup_on_error(run, created=True):
        run.create()
        raise KeyboardInterrupt  # an interrupted run stays, to be resumed
    assert run.path.exists()
