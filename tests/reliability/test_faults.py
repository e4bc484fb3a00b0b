"""A full disk or an unwritable directory in the middle of a run (OSError ENOSPC / EACCES injected into the
write path): one line, exit code 1, every file left behind still trustworthy (the previous checkpoint and
summary intact, no half-written file under a final name), and --resume continues once space is back."""

from __future__ import annotations

import csv
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from reliability_support import REGRESSION, one_error_line, read_summary, results

from dlrl.rundir import FAILED_FILE
from dlrl.train.checkpoint import load_checkpoint

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
EACCES = PermissionError(errno.EACCES, os.strerror(errno.EACCES))


class Faults:
    """Counts the writes of a run under ``root`` (each atomic write ends in an os.replace) and makes the
    ``fail_at``-th one (and with ``persist`` every later one: the disk stays full) raise ``error``."""

    def __init__(
        self, root: Path, fail_at: int | None = None, error: OSError = ENOSPC, persist: bool = False
    ):
        self.root, self.fail_at, self.error, self.persist = root, fail_at, error, persist
        self.writes: list[str] = []
        self.original = os.replace

    def replace(self, src, dst, *args, **kwargs):
        if Path(dst).is_relative_to(self.root):
            self.writes.append(Path(dst).relative_to(self.root).as_posix())
            n = len(self.writes)
            if self.fail_at is not None and (n == self.fail_at or (self.persist and n > self.fail_at)):
                raise self.error
        return self.original(src, dst, *args, **kwargs)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Faults]:
    def install(root: Path, **kwargs) -> Faults:
        injected = Faults(root, **kwargs)
        monkeypatch.setattr(os, "replace", injected.replace)
        return injected

    return install


@pytest.fixture(scope="module")
def write_order(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every file a tiny regression run writes, in order (one entry per write)."""
    from dlrl.cli import main

    out = tmp_path_factory.mktemp("count") / "run"
    counter = Faults(out)
    original, os.replace = os.replace, counter.replace
    try:
        assert main(["-q", "regression", "--out", str(out), *REGRESSION]) == 0
    finally:
        os.replace = original
    return counter.writes


def assert_trustworthy(run: Path) -> None:
    """Every file under a final name reads back; no temporary file is left behind."""
    for path in run.rglob("*"):
        if not path.is_file():
            continue
        assert not path.name.endswith(".tmp"), path
        if path.suffix == ".pt":
            load_checkpoint(path, required=("model",))
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            assert all(None not in row for row in rows), path


def test_the_write_order_covers_checkpoints_metrics_and_results(write_order: list[str]) -> None:
    assert write_order[0] == "config.yaml" and write_order[-1] == "summary.json"  # summary: finished
    assert write_order.count("checkpoints/last.pt") == 6 and "summary.json" in write_order


def test_disk_full_at_a_checkpoint_keeps_the_previous_one_and_resume_finishes(
    tmp_path: Path, cli, faults, write_order, reference_regression
) -> None:
    out = tmp_path / "run"
    fourth = [i for i, name in enumerate(write_order, 1) if name == "checkpoints/last.pt"][3]
    faults(out, fail_at=fourth)
    code, _, err = cli("regression", "--out", str(out), *REGRESSION)
    assert code == 1
    line = one_error_line(err)
    assert line == (
        f"dlrl: error: cannot write {out / 'checkpoints' / 'last.pt'} (No space left on device); "
        "continue with the same command plus --resume"
    )
    assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 3  # the previous one, intact
    assert_trustworthy(out)
    assert not (out / "summary.json").exists()
    assert json.loads((out / FAILED_FILE).read_text())["error"].startswith("OutputError: cannot write ")
    code, _, err = cli("regression", "--out", str(out), "--resume", *REGRESSION)
    assert code == 0, err
    assert results(read_summary(out)) == reference_regression and not (out / FAILED_FILE).exists()


def test_disk_full_at_the_summary_of_a_resumed_run_keeps_the_previous_summary(
    tmp_path: Path, cli, faults, reference_regression
) -> None:
    out = tmp_path / "run"
    assert cli("regression", "--out", str(out), *REGRESSION)[0] == 0
    before = (out / "summary.json").read_bytes()
    injected = faults(out, fail_at=1, error=ENOSPC, persist=True)  # the disk is full from now on
    code, _, err = cli("regression", "--out", str(out), "--resume", *REGRESSION)
    assert code == 1 and "No space left on device" in one_error_line(err)
    assert injected.writes  # it tried
    assert (out / "summary.json").read_bytes() == before
    assert_trustworthy(out)
    os.replace = injected.original  # space is back
    assert cli("regression", "--out", str(out), "--resume", *REGRESSION)[0] == 0
    assert results(read_summary(out)) == reference_regression


@pytest.mark.parametrize("error", [ENOSPC, EACCES], ids=["ENOSPC", "EACCES"])
@pytest.mark.parametrize("at", [0.0, 0.1, 0.3, 0.5, 0.75, 0.9, 1.0])
def test_a_failed_write_anywhere_is_one_line_and_resume_recovers(
    tmp_path: Path, cli, faults, write_order, reference_regression, at: float, error: OSError
) -> None:
    out = tmp_path / "run"
    fail_at = 1 + round(at * (len(write_order) - 1))
    injected = faults(out, fail_at=fail_at, error=error, persist=True)
    code, _, err = cli("regression", "--out", str(out), *REGRESSION)
    assert code == 1, err
    assert os.strerror(error.errno) in one_error_line(err)
    os.replace = injected.original
    if not out.exists():  # failed before anything worth keeping: removed, a fresh run starts over
        assert fail_at <= write_order.index("checkpoints/last.pt") + 1
        code, _, err = cli("regression", "--out", str(out), *REGRESSION)
    else:
        assert_trustworthy(out)
        assert not (out / "summary.json").exists()  # written last: never there unless the run finished
        code, _, err = cli("regression", "--out", str(out), "--resume", *REGRESSION)
    assert code == 0, err
    assert results(read_summary(out)) == reference_regression
    assert_trustworthy(out)


def test_an_unwritable_out_is_one_line_and_leaves_nothing(tmp_path: Path, cli, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "run"))

    monkeypatch.setattr(Path, "mkdir", refuse)
    code, _, err = cli("regression", "--out", str(tmp_path / "run"), *REGRESSION)
    assert code == 1
    assert one_error_line(err).startswith(f"dlrl: error: cannot write {tmp_path / 'run' / '.lock'} (")
    monkeypatch.undo()
    assert not (tmp_path / "run").exists()


def test_a_full_disk_in_torch_save_itself_is_an_output_error(tmp_path: Path, monkeypatch) -> None:
    from dlrl.errors import OutputError
    from dlrl.train.checkpoint import save_checkpoint

    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "epoch": 1})
    real_save = torch.save

    def half_then_full(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", half_then_full)
    with pytest.raises(OutputError, match=r"cannot write .*last\.pt \(No space left on device\)"):
        save_checkpoint(path, {"model": {"w": torch.ones(3)}, "epoch": 2})
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(path)["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_dlrl_run_on_a_full_disk_is_one_line_and_resume_finishes(
    tmp_path: Path, cli, faults, reference_regression
) -> None:
    out = tmp_path / "run"
    sets = [f"--set=regression.{item}" for item in REGRESSION]
    injected = faults(out, fail_at=12, error=ENOSPC, persist=True)  # inside the regression section
    code, _, err = cli("run", "--only", "regression", "--out", str(out), *sets)
    assert code == 1
    assert "No space left on device" in one_error_line(err)
    assert any(name.startswith("regression/checkpoints/") for name in injected.writes)
    assert_trustworthy(out)
    os.replace = injected.original
    code, _, err = cli("run", "--resume", "--out", str(out))
    assert code == 0, err
    assert results(read_summary(out / "regression")) == reference_regression
    assert json.loads((out / "sections.json").read_text())["regression"]["status"] == "done"
