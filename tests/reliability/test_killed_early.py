"""A run killed in its first moments, after it took RUN/.lock and before it wrote config.yaml, leaves a
directory holding only that stale lock (found by bench/resume_sweep.py's kill points). --resume starts it
afresh, as it does for a run killed before it wrote anything, and a new run may use the directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import REGRESSION, one_error_line, read_summary, results

from dlrl.rundir import LOCK_FILE


def _stale_lock(run: Path) -> Path:
    run.mkdir(parents=True)
    (run / LOCK_FILE).write_text("pid 999999 on elsewhere since yesterday\n")
    return run


@pytest.mark.parametrize("resume", [True, False], ids=["resume", "fresh"])
def test_an_experiment_killed_before_its_config_continues(
    tmp_path: Path, cli, reference_regression, resume
) -> None:
    run = _stale_lock(tmp_path / "run")
    code, _, err = cli("regression", "--out", str(run), *(["--resume"] if resume else []), *REGRESSION)
    assert code == 0, err
    assert results(read_summary(run)) == reference_regression and not (run / LOCK_FILE).exists()


def test_a_search_killed_before_its_config_continues(tmp_path: Path, cli, monkeypatch) -> None:
    """Checked up to the point where Ray would start (the search itself is not this test's)."""
    from dlrl.tuning import search

    def stop_before_ray(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(search, "_fit_tuner", stop_before_ray)
    for resume in (["--resume"], []):
        run = _stale_lock(tmp_path / f"run{len(resume)}")
        code, _, err = cli("tune", "regression", "--quick", "--out", str(run), *resume)
        assert code == 130, one_error_line(err)  # got as far as starting Ray
        assert (run / "config.yaml").is_file()


def test_an_empty_directory_is_not_a_run_to_refuse(tmp_path: Path, cli, monkeypatch) -> None:
    from dlrl.tuning import search

    monkeypatch.setattr(search, "_fit_tuner", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    (tmp_path / "empty").mkdir()
    code, _, err = cli("tune", "regression", "--quick", "--out", str(tmp_path / "empty"), "--resume")
    assert code == 130, err
