"""Whatever escapes every layer (a bug, a failure nobody foresaw) is one "internal error" line naming a file
with the full traceback, exit code 1; -v prints the traceback too. The run directory of a failed run is
removed when it holds nothing to resume, else marked failed: never left looking finished."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reliability_support import REGRESSION, one_error_line, read_summary, results

from dlrl.experiments import regression
from dlrl.report import build_report
from dlrl.rundir import FAILED_FILE, TRACEBACK_FILE


class Boom(RuntimeError):
    pass


def _explode(*args, **kwargs):
    raise Boom("exploded on purpose\nsecond line of the message")


def _internal_line(stderr: str) -> tuple[str, Path]:
    line = one_error_line(stderr)
    match = re.fullmatch(r"dlrl: internal error: Boom: exploded on purpose; full traceback in (\S+)", line)
    assert match, line
    return line, Path(match.group(1))


def test_a_failure_after_checkpoints_marks_the_run_failed_and_keeps_the_traceback(
    tmp_path: Path, cli, monkeypatch, reference_regression
) -> None:
    out = tmp_path / "run"
    monkeypatch.setattr(regression, "evaluate_models", _explode)  # after training: checkpoints exist
    code, _, err = cli("regression", "--out", str(out), *REGRESSION)
    assert code == 1
    _, trace = _internal_line(err)
    assert trace == out / TRACEBACK_FILE
    text = trace.read_text()
    assert text.startswith("Traceback") and "_explode" in text and "second line of the message" in text
    assert "cli/__init__.py" in text  # the whole stack, from the command down
    failed = json.loads((out / FAILED_FILE).read_text())
    assert failed["status"] == "failed" and failed["error"] == "Boom: exploded on purpose"
    assert not (out / "summary.json").exists() and (out / "checkpoints" / "last.pt").is_file()
    assert not (out / ".lock").exists()
    # The report says so.
    html = build_report(out).read_text()
    assert "exploded on purpose" in html and re.search(r"status[^<]*failed|failed", html)

    # Fixed, the run continues from its checkpoint and ends as an uninterrupted run; the mark goes.
    monkeypatch.undo()
    code, _, err = cli("regression", "--out", str(out), "--resume", *REGRESSION)
    assert code == 0, err
    assert results(read_summary(out)) == reference_regression
    assert not (out / FAILED_FILE).exists()


def test_a_failure_before_anything_worth_keeping_removes_the_run(tmp_path: Path, cli, monkeypatch) -> None:
    out = tmp_path / "run"
    monkeypatch.setattr(regression, "build_model", _explode)  # before the first checkpoint
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, _, err = cli("regression", "--out", str(out), *REGRESSION)
    assert code == 1
    _, trace = _internal_line(err)
    assert not out.exists()
    assert trace.parent == tmp_path / "cache" / "dlrl" / "errors"
    assert "_explode" in trace.read_text()


def test_verbose_prints_the_traceback_inline(tmp_path: Path, capsys, monkeypatch) -> None:
    from dlrl.cli import main

    monkeypatch.setattr(regression, "build_model", _explode)
    assert main(["-v", "regression", "--out", str(tmp_path / "run"), *REGRESSION]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "_explode" in err
    assert err.rstrip().splitlines()[-1].startswith("dlrl: internal error: Boom: exploded on purpose; ")


def test_commands_without_a_run_directory_keep_the_traceback_in_the_cache(
    tmp_path: Path, cli, monkeypatch
) -> None:
    import dlrl.report

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(dlrl.report, "build_report", _explode)
    run = tmp_path / "some-run"
    run.mkdir()
    (run / "summary.json").write_text("{}")
    code, _, err = cli("report", str(run))
    assert code == 1
    _, trace = _internal_line(err)
    assert trace.is_file() and trace.is_relative_to(tmp_path / "cache")
    assert sorted(p.name for p in run.iterdir()) == ["summary.json"]  # nothing written into the input


def test_an_unwritable_cache_falls_back_to_the_temporary_directory(tmp_path: Path, cli, monkeypatch) -> None:
    import dlrl.report

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.setattr(dlrl.report, "build_report", _explode)
    code, _, err = cli("report", str(tmp_path))
    assert code == 1
    _, trace = _internal_line(err)
    assert trace.parent == tmp_path / "tmp" and "_explode" in trace.read_text()


def test_dlrl_run_records_a_failed_section_and_marks_its_directory(tmp_path: Path, cli, monkeypatch) -> None:
    out = tmp_path / "run"
    sets = [f"--set=regression.{item}" for item in REGRESSION]
    monkeypatch.setattr(regression, "evaluate_models", _explode)
    code, stdout, _ = cli("run", "--only", "regression", "--out", str(out), *sets)
    assert code == 1 and "failed sections: regression" in stdout
    status = json.loads((out / "sections.json").read_text())["regression"]
    assert status["status"] == "failed" and "exploded on purpose" in status["error"]
    assert json.loads((out / "regression" / FAILED_FILE).read_text())["status"] == "failed"
    assert "_explode" in (out / "regression" / TRACEBACK_FILE).read_text()
    assert not (out / ".lock").exists() and not (out / "regression" / ".lock").exists()
