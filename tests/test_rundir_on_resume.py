"""A run directory as --resume finds it: a metrics.csv that is a directory, bytes that are not text, a NUL,
an epoch that is not a number; a file where checkpoints/ or figures/ should be (found by
tests/fuzz/test_fuzz_rundirs.py: IsADirectoryError, a TypeError comparing the text 'x' with an epoch,
FileExistsError). Each is one RunDirError naming the file; a missing metrics.csv starts the table afresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlrl.errors import RunDirError
from dlrl.rundir import RunDir


def _hook_after(run: Path, content: bytes | None) -> RunDir:
    run_dir = RunDir(run)
    run.mkdir(exist_ok=True)
    path = run / "metrics.csv"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return run_dir


@pytest.mark.parametrize(
    "content, detail",
    [
        (None, "cannot read"),
        (b"epoch,loss\n\xff\xfe1,2\n", "cannot read"),
        (b"epoch,loss\n\x001,2\n", "row 1: epoch"),
        (b"epoch,loss\nx,0.5\n", "row 1: epoch 'x' is not a number"),
        (b"epoch,loss\n1,0.5\n2.5,0.4\n", "row 2: epoch 2.5 is not a number"),
        (b"1,2\nepoch,loss,lr\n1,0.5,0.1\n", "row 1 has more fields than the header"),  # found by the fuzzer
    ],
    ids=["directory", "not-utf8", "nul", "text-epoch", "fraction-epoch", "short-header"],
)
def test_a_metrics_table_dlrl_did_not_write_is_one_error(tmp_path: Path, content, detail: str) -> None:
    run_dir = _hook_after(tmp_path / "run", content)
    with pytest.raises(RunDirError) as info:
        run_dir.metrics_hook(resume=True)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'run' / 'metrics.csv'}: ") and detail in message, message
    assert "\n" not in message


def test_rows_without_an_epoch_and_a_missing_file_are_fine(tmp_path: Path) -> None:
    run_dir = _hook_after(tmp_path / "run", b"labels,mode,accuracy\n20,frozen,0.5\n")  # finetune's table
    run_dir.metrics_hook(resume=True)
    (tmp_path / "run" / "metrics.csv").unlink()
    hook = run_dir.metrics_hook(resume=True)
    hook(1, {"loss": 1.0})
    assert run_dir.read_metrics() == [{"loss": 1.0}]


@pytest.mark.parametrize("name", ["checkpoints", "figures"])
def test_a_file_where_a_run_directory_needs_a_directory_is_one_error(tmp_path: Path, name: str) -> None:
    """Found by tests/fuzz/test_fuzz_rundirs.py: --resume of a run whose checkpoints/ had become a file
    ended in FileExistsError."""
    run = tmp_path / "run"
    run.mkdir()
    (run / name).write_text("a file")
    with pytest.raises(RunDirError) as info:
        RunDir(run).create()
    assert str(info.value) == f"{run / name}: is a file, but the run keeps a directory there"
