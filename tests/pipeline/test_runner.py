"""``dlrl run``: tiny real runs of Part 1, a failing section, interrupt and resume, option errors."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlrl.cli import main
from dlrl.progress import format_seconds
from dlrl.rundir import RunDir

# Part 1 without its Ray search section (tests/tune covers the search; Ray would add seconds to each test).
PART1 = "regression,classifier"

# Tiny budgets on top of --quick: every section still trains, evaluates and draws its figures.
TINY = [
    "--set", "regression.epochs=2",
    "--set", "regression.data.num_points=100",
    "--set", "regression.data.test_points=100",
    "--set", "regression.ensemble=0",
    "--set", "regression.model.hidden_sizes=[8]",
    "--set", "classifier.data.limit=300",
    "--set", "classifier.model.hidden_sizes=[16]",
]  # fmt: skip
# For the tests of failures, interrupts and resumes: the same without figures (a second each, unlooked at).
NO_FIGURES = [*TINY, "--set", "regression.figures=false", "--set", "classifier.figures=false"]


def _status(out: Path) -> dict:
    return json.loads((out / "sections.json").read_text())


@contextlib.contextmanager
def failing_at_epoch(
    monkeypatch: pytest.MonkeyPatch, section: str, epoch: int, error: BaseException
) -> Iterator[None]:
    """``error`` raised in ``section`` right after its metrics hook wrote epoch ``epoch``'s row, before
    that epoch's checkpoint: as Ctrl-C (KeyboardInterrupt) or a bug would strike."""
    original = RunDir.metrics_hook

    def failing_hook(self: RunDir, *args, **kwargs):
        hook = original(self, *args, **kwargs)
        if self.path.name != section:
            return hook

        def wrapped(at: int, row: dict) -> bool:
            hook(at, row)
            if at == epoch:
                raise error
            return True

        return wrapped

    with monkeypatch.context() as patch:
        patch.setattr(RunDir, "metrics_hook", failing_hook)
        yield


def test_tiny_part1_run_writes_report_and_tensorboard(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(
        ["run", "--quick", "--only", PART1, "--out", str(out), "--tensorboard", *TINY,
         "--set", "classifier.epochs=1"]
    )  # fmt: skip
    assert code == 0
    status = _status(out)
    assert {name: s["status"] for name, s in status.items() if s["status"] != "skipped"} == {
        "regression": "done",
        "classifier": "done",
    }
    assert all(s["status"] == "skipped" for n, s in status.items() if n not in ("regression", "classifier"))
    for name in ("regression", "classifier"):
        assert status[name]["seconds"] > 0 and status[name]["cpu_seconds"] >= 0
    info = json.loads((out / "run.json").read_text())
    assert next(iter(info.items())) == ("kind", "run")  # what the directory is, for the report
    assert info["profile"] == "quick" and info["selected"] == ["regression", "classifier"]
    assert info["sets"]["classifier"] == ["data.limit=300", "model.hidden_sizes=[16]", "epochs=1"]
    env = json.loads((out / "env.json").read_text())
    assert env["profile"] == "quick" and "torch" in env["packages"] and env["cpu_count"] >= 1
    # --set reached the section's config
    assert "limit: 300" in (out / "classifier" / "config.yaml").read_text()

    html = (out / "report.html").read_text()
    for name in ("regression", "classifier"):
        assert f'id="sec-{name}"' in html
    # report.html is written after run.json's last write, so it carries the run's final total time, as
    # `dlrl report` rebuilds it (it was written before the final save, a second short at times)
    assert (out / "report.html").stat().st_mtime_ns >= (out / "run.json").stat().st_mtime_ns
    total = info["seconds"]
    assert f"<td><code>total time</code></td><td>{format_seconds(total)} ({total:.0f} s)" in html
    figures = sorted((out / "regression" / "figures").glob("*.png")) + sorted(
        (out / "classifier" / "figures").glob("*.png")
    )
    assert figures and html.count("<img ") == len(figures)
    assert "http://" not in html and "https://" not in html  # nothing to fetch: works offline
    assert "test_mse_over_noise_var" in html  # the regression target beside its measured value
    targets = json.loads((out / "regression" / "targets.json").read_text())
    assert targets[0]["label"] in html and targets[0]["met"] in (True, False)

    # TensorBoard: every numeric metrics.csv column of each section, readable back
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard" / "classifier"))
    events.Reload()
    assert {"train_loss", "val_accuracy"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train_loss")] == [1]


def test_failed_section_is_recorded_and_the_rest_still_runs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(
        ["run", "--quick", "--only", PART1, "--out", str(out), *NO_FIGURES, "--set", "classifier.epochs=1",
         "--set", "regression.data.csv=" + str(tmp_path / "missing.csv")]
    )  # fmt: skip
    assert code == 1
    status = _status(out)
    assert status["regression"]["status"] == "failed"
    assert "missing.csv" in status["regression"]["error"]
    assert status["classifier"]["status"] == "done"
    assert "failed sections: regression" in capsys.readouterr().out
    html = (out / "report.html").read_text()
    assert "missing.csv" in html and "did not finish" in html


def test_interrupt_then_resume_skips_finished_and_continues(tmp_path: Path, caplog, monkeypatch) -> None:
    out = tmp_path / "run"
    args = ["run", "--quick", "--only", PART1, "--out", str(out), *NO_FIGURES, "--set", "classifier.epochs=3"]

    # Ctrl-C while the classifier's second epoch ends (before its checkpoint is written)
    with failing_at_epoch(monkeypatch, "classifier", 2, KeyboardInterrupt()):
        assert main(args) == 130
    status = _status(out)
    assert status["regression"]["status"] == "done"
    assert status["classifier"]["status"] == "interrupted"
    assert "interrupted" in (out / "report.html").read_text()  # a partial report exists
    regression_summary = out / "regression" / "summary.json"
    stamp = regression_summary.stat().st_mtime_ns
    assert not (out / "classifier" / "summary.json").exists()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dlrl"):
        assert main(["run", "--resume", "--out", str(out)]) == 0  # profile and --set come from run.json
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "regression: done earlier, skipped" in messages
    assert "resuming from epoch 2 of 3" in messages
    assert regression_summary.stat().st_mtime_ns == stamp  # not retrained
    status = _status(out)
    assert status["classifier"]["status"] == "done"
    rows = (out / "classifier" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]
    assert json.loads((out / "run.json").read_text())["resumed"]
    assert 'class="badge interrupted"' not in (out / "report.html").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "classifier.epochs"], "expected SECTION.KEY=VALUE"),
        (["--set", "nosuch.epochs=1"], "unknown section 'nosuch'"),
        (["--set", "classifier.nosuch=1"], "section 'classifier': overrides: unknown key 'nosuch'"),
        (["--set", "classifier.epochs=-1"], "section 'classifier'"),
        (["--only", "part9"], "--only: unknown section 'part9'"),
        (["--only", "part1", "--skip", "part1"], "leave no section to run"),
    ],
)
def test_bad_options_fail_before_anything_is_written(tmp_path: Path, capsys, extra, message) -> None:
    out = tmp_path / "run"
    assert main(["run", "--quick", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlrl: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_resume_errors(tmp_path: Path, capsys) -> None:
    assert main(["run", "--resume", "--out", str(tmp_path / "nothing")]) == 2
    assert "not a 'dlrl run' directory" in capsys.readouterr().err
    done = tmp_path / "done"
    done.mkdir()
    (done / "sections.json").write_text("{}")
    (done / "run.json").write_text(json.dumps({"profile": "quick", "seed": 0, "sets": {}}))
    assert main(["run", "--resume", "--out", str(done), "--seed", "3"]) == 2
    assert "--seed 0, not 3" in capsys.readouterr().err
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "file").write_text("x")
    assert main(["run", "--out", str(existing)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_resume_retries_a_failed_section_from_its_checkpoint_or_afresh(
    tmp_path: Path, caplog, monkeypatch
) -> None:
    out = tmp_path / "run"

    # A bug striking after the regression's first epoch (its checkpoint is written by then)
    with failing_at_epoch(monkeypatch, "regression", 2, RuntimeError("plotting bug")):
        assert main(["run", "--quick", "--only", "regression", "--out", str(out), *NO_FIGURES]) == 1
    status = _status(out)["regression"]
    assert status["status"] == "failed" and status["error"] == "RuntimeError: plotting bug"
    assert "plotting bug" in status["traceback"]
    assert (out / "regression" / "checkpoints" / "last.pt").exists()

    with caplog.at_level(logging.INFO, logger="dlrl"):
        assert main(["run", "--resume", "--out", str(out)]) == 0
    assert "resuming from epoch 2 of 2" in caplog.text
    assert _status(out)["regression"]["status"] == "done"

    # Failed again, and meanwhile its config changed (say a fix changed a default): it starts afresh.
    statuses = _status(out)
    statuses["regression"]["status"] = "failed"
    (out / "sections.json").write_text(json.dumps(statuses))
    config = out / "regression" / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 2", "epochs: 3"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dlrl"):
        assert main(["run", "--resume", "--out", str(out)]) == 0
    assert "failed last time and cannot be continued" in caplog.text
    assert "resuming" not in caplog.text
    assert "epochs: 2" in config.read_text()


def test_quick_run_leaves_out_the_full_profile_sections(tmp_path: Path, capsys) -> None:
    """`dlrl run --quick` never picks lunarlander by its part (it ran in `make run` before), and says so
    when nothing else is left, before anything is written."""
    out = tmp_path / "run"
    assert main(["run", "--quick", "--only", "part3", "--skip", "dqn", "--out", str(out)]) == 2
    assert "--only/--skip leave no section to run" in capsys.readouterr().err
    assert not out.exists()
