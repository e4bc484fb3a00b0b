"""One dlrl process per run directory: a second one pointed at the same --out is refused with one line.

RUN/.lock is an flock, released when its holder exits however it exits: a killed holder's lock is taken
over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from reliability_support import dlrl_process, kill, one_error_line, wait_for

from dlrl.errors import RunDirError
from dlrl.rundir import LOCK_FILE, lock_holder, run_lock

# A regression run long enough (tens of seconds) to be caught while it trains.
LONG = ["data.num_points=200", "model.hidden_sizes=[8]", "epochs=2000", "ensemble=0", "figures=false"]
LONG += ["device=cpu", "threads=1"]


def test_a_second_lock_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with run_lock(run):
        assert (run / LOCK_FILE).read_text().startswith(f"pid {os.getpid()} on ")
        assert lock_holder(run).startswith(f"pid {os.getpid()}")
        with pytest.raises(RunDirError, match=rf"{run}: in use by another dlrl process \(pid {os.getpid()}"):
            with run_lock(run):
                pass
        (run / "config.yaml").write_text("experiment: x\n")
    assert not (run / LOCK_FILE).exists() and lock_holder(run) is None
    with pytest.raises(RunDirError, match="not empty"):  # a fresh run never writes over another
        with run_lock(run, fresh=True):
            pass
    assert (run / "config.yaml").is_file()


def test_a_stale_lock_file_is_taken_over_and_an_unused_directory_removed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text("pid 999999 on elsewhere since yesterday\n")  # its holder is gone
    assert lock_holder(run) is None
    with run_lock(run):
        assert (run / LOCK_FILE).read_text().startswith(f"pid {os.getpid()}")
    assert run.exists()  # there before: kept
    with run_lock(tmp_path / "new"):
        pass
    assert not (tmp_path / "new").exists()  # made for nothing: removed


def test_a_second_process_on_the_same_out_is_refused_until_the_first_is_gone(tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    first = dlrl_process("regression", "--out", str(out), *LONG)
    try:
        wait_for(lambda: (out / "checkpoints" / "last.pt").is_file(), process=first)
        for extra in (["--resume"], []):
            code, _, err = cli("regression", "--out", str(out), *extra, *LONG)
            assert code == 2
            line = one_error_line(err)
            assert line.startswith(f"dlrl: error: {out}: in use by another dlrl process (pid {first.pid} on ")
            assert line.endswith("; wait for it to end or choose another --out")
        code, _, err = cli("run", "--resume", "--out", str(out))  # not a `dlrl run` directory anyway
        assert code == 2
    finally:
        kill(first)
    # Killed: the lock file stays behind with the dead pid; the next process takes it over.
    assert f"pid {first.pid} " in (out / LOCK_FILE).read_text()
    resumed = dlrl_process("regression", "--out", str(out), "--resume", *LONG)
    try:
        wait_for(lambda: f"pid {resumed.pid} " in _read(out / LOCK_FILE), process=resumed)
    finally:
        kill(resumed)


def test_dlrl_run_holds_its_directory(tmp_path: Path, cli) -> None:
    out = tmp_path / "run"
    sets = [f"--set=regression.{item}" for item in LONG]
    first = dlrl_process("run", "--only", "regression", "--out", str(out), *sets)
    try:
        wait_for(lambda: (out / "regression" / "checkpoints" / "last.pt").is_file(), process=first)
        code, _, err = cli("run", "--resume", "--out", str(out))
        assert code == 2
        assert one_error_line(err).startswith(
            f"dlrl: error: {out}: in use by another dlrl process (pid {first.pid}"
        )
        code, _, err = cli("regression", "--resume", "--out", str(out / "regression"), *LONG)
        assert code == 2 and "in use by another dlrl process" in one_error_line(err)
    finally:
        kill(first)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@pytest.mark.parametrize(
    "command",
    [["tune", "regression", "--quick"], ["run", "--quick", "--only", "regression"], ["regression"]],
    ids=["tune", "run", "experiment"],
)
def test_every_command_that_writes_a_run_refuses_a_held_directory(tmp_path: Path, cli, command) -> None:
    out = tmp_path / "held"
    with run_lock(out):  # as another process's would be: this process holds it
        for extra in ([], ["--resume"]):
            code, _, err = cli(*command, "--out", str(out), *extra)
            line = one_error_line(err)
            assert code == 2, line
            if extra and command[0] != "regression":  # not (yet) a run of that kind: says so first
                continue
            assert f"{out}: in use by another dlrl process (pid {os.getpid()}" in line
    assert not out.exists()
