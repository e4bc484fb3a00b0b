"""The command line, in-process: help, one-line errors with exit code 2, no output left behind, interrupts."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from dlrl.cli import build_parser, main
from dlrl.cli import data as data_cli
from dlrl.data import download, sources
from dlrl.data.sources import SPLIT_FILES, DatasetSpec

# figures=false: no test here looks at them (tests/experiments/test_classifier.py does)
TINY = [
    "figures=false",
    "data.limit=200",
    "epochs=2",
    "model.hidden_sizes=[16]",
    "batch_size=64",
    "device=cpu",
]


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("dlrl: error:")]
    assert len(lines) == 1, err
    assert err.rstrip("\n").splitlines()[-1] == lines[0]  # the error is the last thing printed
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny finished classifier run on the shipped sample, shared by the tests below (copy to modify)."""
    out = tmp_path_factory.mktemp("runs") / "classifier"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLRL_NO_DOWNLOAD", "1")
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        assert main(["-q", "classify", "--out", str(out), *TINY]) == 0
    return out


# --- help --------------------------------------------------------------------------------------------


def _subcommands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def test_help(capsys: pytest.CaptureFixture) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("classify", "regression", "data", "evaluate", "run"):
        assert name in out


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(capsys: pytest.CaptureFixture, command: str) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"dlrl {command}" in out and len(out.splitlines()) > 3


def test_experiment_help_lists_config_keys(capsys: pytest.CaptureFixture) -> None:
    assert main(["classify", "--help"]) == 0
    out = capsys.readouterr().out
    assert "optim.lr=" in out and "--resume" in out and "--config" in out and "--quick" in out


def test_usage_error_is_one_line(capsys: pytest.CaptureFixture) -> None:
    code, out, err = _run(capsys, "classify", "--no-such-flag")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "--no-such-flag" in err


# --- bad input to an experiment: exit 2, one line, nothing written ----------------------------------


@pytest.mark.parametrize(
    ("config_text", "args", "needles"),
    [
        ("epochs: -1\n", [], ["epochs"]),
        ("optim:\n  lerning_rate: 0.1\n", [], ["optim.lerning_rate"]),
        ("epochs: [1\n", [], ["cannot parse YAML"]),
        ("experiment: regression\n", [], ["config for 'regression'"]),
        (None, ["optim.lrr=1"], ["optim.lrr", "did you mean 'optim.lr'"]),
        (None, ["epochs"], ["expected key=value"]),
    ],
)
def test_bad_config_exit_2_nothing_written(capsys, tmp_path: Path, config_text, args, needles) -> None:
    argv = ["classify", "--out", str(tmp_path / "run"), *args]
    if config_text is not None:
        (tmp_path / "c.yaml").write_text(config_text)
        argv += ["--config", str(tmp_path / "c.yaml")]
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    _one_error_line(err, *needles)
    if config_text is not None:
        assert str(tmp_path / "c.yaml") in err
    assert not (tmp_path / "run").exists()


def test_bad_data_removes_the_run_directory(capsys, tmp_path: Path) -> None:
    data = tmp_path / "data" / "mnist"
    data.mkdir(parents=True)
    for stem in SPLIT_FILES.values():
        (data / f"{stem}.gz").write_bytes(b"\x1f\x8b broken")
    code, _, err = _run(
        capsys, "classify", "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data"), *TINY
    )
    assert code == 2
    _one_error_line(err, str(data))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["classify", "autoencoder"])
def test_incomplete_data_dir_is_refused(capsys, tmp_path: Path, monkeypatch, command: str) -> None:
    """A --data-dir with only the train files: one line naming it and the missing files, exit 2, no run
    directory, nothing created in the data dir (not even with downloads on), no other data used."""
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train-images", "train-labels"):
        test_name = SPLIT_FILES["test" + split[split.index("-") :]]
        shutil.copy(sources.SAMPLE_DIR / f"{test_name}.gz", data / f"{SPLIT_FILES[split]}.gz")
    monkeypatch.setenv("DLRL_NO_DOWNLOAD", "0")
    monkeypatch.setenv("DLRL_MIRROR_MNIST", "http://127.0.0.1:9/")  # nothing listens on the discard port
    before = sorted(p.name for p in data.iterdir())
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, command, "--quick", "--data-dir", str(data), "--out", str(out))
    assert code == 2 and stdout == ""
    assert len(err.splitlines()) == 1
    _one_error_line(err, f"--data-dir {data}", "incomplete mnist", "t10k-images-idx3-ubyte")
    assert not out.exists()
    assert sorted(p.name for p in data.iterdir()) == before


def test_data_dir_without_the_dataset_is_refused(capsys, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    code, _, err = _run(
        capsys, "classify", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *TINY
    )
    assert code == 2 and len(err.splitlines()) == 1
    _one_error_line(err, f"--data-dir {tmp_path / 'data'}", "no local copy of mnist")
    assert not (tmp_path / "run").exists()
    assert list((tmp_path / "data").iterdir()) == []


def test_out_existing_non_empty_without_resume(capsys, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = _run(capsys, "classify", "--out", str(out), *TINY)
    assert code == 2
    _one_error_line(err, "--out", "not empty", "--resume")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_config_yaml_of_a_run_reproduces_it(finished_run: Path, capsys, tmp_path: Path) -> None:
    from dlrl.config import read_config_file

    code, _, _ = _run(
        capsys, "classify", "--config", str(finished_run / "config.yaml"), "--out", str(tmp_path / "again")
    )
    assert code == 0
    assert read_config_file(tmp_path / "again" / "config.yaml") == read_config_file(
        finished_run / "config.yaml"
    )
    assert (tmp_path / "again" / "metrics.csv").read_text().split("\n")[1].split(",")[:5] == (
        finished_run / "metrics.csv"
    ).read_text().split("\n")[1].split(",")[:5]


def test_resume_with_a_different_config(finished_run: Path, capsys, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    code, _, err = _run(capsys, "classify", "--out", str(run), "--resume", *TINY[:-2], "batch_size=32")
    assert code == 2
    _one_error_line(err, "batch_size", "64 in the run, 32 now")
    assert run.exists() and (run / "checkpoints" / "last.pt").exists()  # an existing run is never removed


def test_resume_of_a_finished_run_keeps_its_results(finished_run: Path, capsys, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    code, _, _ = _run(capsys, "classify", "--out", str(run), "--resume", *TINY)
    assert code == 0
    assert (run / "metrics.csv").read_text() == (finished_run / "metrics.csv").read_text()


def test_killed_run_resumes_to_the_same_result(
    finished_run: Path, capsys, tmp_path: Path, interrupt_at_epoch
) -> None:
    run = tmp_path / "run"
    with interrupt_at_epoch(2):  # epoch 2's row reaches metrics.csv, its checkpoint does not
        assert _run(capsys, "classify", "--out", str(run), *TINY)[0] == 130
    assert not (run / "summary.json").exists()
    code, _, err = _run(capsys, "classify", "--out", str(run), "--resume", *TINY)
    assert code == 0, err

    def rows(path: Path) -> list[list[str]]:  # all columns but the wall time
        lines = (path / "metrics.csv").read_text().splitlines()
        return [line.split(",")[:-1] for line in lines]

    assert rows(run) == rows(finished_run)
    import json

    ours, theirs = (json.loads((p / "summary.json").read_text()) for p in (run, finished_run))
    assert ours["test_accuracy"] == theirs["test_accuracy"] and ours["test_loss"] == theirs["test_loss"]


def test_interrupt_exits_130_and_keeps_the_run(capsys, tmp_path: Path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("dlrl.experiments.classifier.load_images", interrupted)
    code, _, err = _run(capsys, "classify", "--out", str(tmp_path / "run"), *TINY)
    assert code == 130
    assert err.strip().splitlines()[-1] == "dlrl: interrupted; continue with the same command plus --resume"
    assert (tmp_path / "run" / "config.yaml").exists()  # kept, so that --resume can continue it


def test_bugs_keep_their_traceback(tmp_path: Path, monkeypatch, capsys) -> None:
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug, not bad input")

    monkeypatch.setattr("dlrl.experiments.classifier.load_images", bug)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, _, err = _run(capsys, "classify", "--out", str(tmp_path / "run"), *TINY)
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        "dlrl: internal error: ZeroDivisionError: a bug, not bad input; full traceback in "
    )
    trace = Path(line.rpartition(" in ")[2])
    assert "ZeroDivisionError" in trace.read_text() and "def bug" not in line
    assert not (tmp_path / "run").exists()  # nothing in it worth resuming


# --- evaluate ----------------------------------------------------------------------------------------


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_evaluate_refuses_a_pickle_payload(finished_run: Path, capsys, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    marker = tmp_path / "pwned"
    torch.save({"model": _Payload(marker)}, run / "checkpoints" / "last.pt")  # the one the classifier tests
    code, _, err = _run(capsys, "evaluate", str(run))
    assert code == 2
    _one_error_line(err, "last.pt", "refused")
    assert not marker.exists()


# Valid weights-only PyTorch files that are not dlrl checkpoints, and what the error says.
FOREIGN_CHECKPOINTS = {
    "bare-state-dict": (lambda: torch.nn.Linear(2, 2).state_dict(), "missing model"),
    "other-dict": (lambda: {"foo": torch.zeros(1)}, "missing model"),
    "model-is-a-list": (lambda: {"model": [torch.zeros(1)]}, "model is a list"),
}


@pytest.mark.parametrize(
    "damage", ["random", "truncated", "other-architecture", *sorted(FOREIGN_CHECKPOINTS)]
)
def test_evaluate_bad_checkpoints(finished_run: Path, capsys, tmp_path: Path, damage: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    tested = run / "checkpoints" / "last.pt"
    needle = "last.pt"
    if damage == "random":
        tested.write_bytes(os.urandom(2048))
    elif damage == "truncated":
        tested.write_bytes(tested.read_bytes()[:-100])
    elif damage == "other-architecture":
        torch.save({"model": torch.nn.Linear(3, 3).state_dict()}, tested)
    else:
        make, detail = FOREIGN_CHECKPOINTS[damage]
        torch.save(make(), tested)
        needle = f"{tested}: not a dlrl checkpoint ({detail}"
    code, _, err = _run(capsys, "evaluate", str(run))
    assert code == 2
    _one_error_line(err, needle)


@pytest.mark.parametrize("damage", sorted(FOREIGN_CHECKPOINTS))
def test_resume_from_a_foreign_last_checkpoint(
    finished_run: Path, capsys, tmp_path: Path, damage: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    torch.save(FOREIGN_CHECKPOINTS[damage][0](), run / "checkpoints" / "last.pt")
    code, _, err = _run(capsys, "classify", "--out", str(run), "--resume", *TINY)
    assert code == 2
    _one_error_line(err, f"{run / 'checkpoints' / 'last.pt'}: not a dlrl checkpoint (missing ")
    assert (run / "config.yaml").exists()  # an existing run is never removed


def test_evaluate_not_a_run(capsys, tmp_path: Path) -> None:
    code, _, err = _run(capsys, "evaluate", str(tmp_path))
    assert code == 2
    _one_error_line(err, "not a dlrl run directory")


# --- data --------------------------------------------------------------------------------------------


def test_data_choices_are_the_known_datasets() -> None:
    assert data_cli.DATASET_CHOICES == tuple(sources.DATASETS)


def test_data_info(capsys, tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "data", "info", "mnist")
    assert code == 0
    assert "falls back to the shipped 10,000-image sample" in out
    assert str(sources.cache_dir() / "mnist") in out


def test_data_info_with_an_unusable_data_dir(capsys, tmp_path: Path) -> None:
    """info reports what a run with this --data-dir would refuse (no fallback), and exits 0."""
    code, out, _ = _run(capsys, "data", "info", "mnist", "--data-dir", str(tmp_path))
    assert code == 0
    assert f"--data-dir {tmp_path}: no local copy of mnist" in out and "falls back" not in out
    assert f"searched: {tmp_path / 'mnist'}, {tmp_path}\n" in out  # only the explicit directory
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    code, out, _ = _run(capsys, "data", "info", "mnist", "--data-dir", str(tmp_path))
    assert code == 0 and "incomplete mnist" in out and "t10k-labels-idx1-ubyte" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_data_verify_shipped_sample(capsys) -> None:
    code, out, _ = _run(capsys, "data", "verify", "mnist")
    assert code == 0
    assert "10000 images, checksum ok" in out and "10000 labels, checksum ok" in out


def _sample_copy(target: Path) -> Path:
    """A full-looking mnist directory: the sample test files, also standing in as the train files."""
    target.mkdir(parents=True)
    for split, stem in SPLIT_FILES.items():
        shutil.copy(
            sources.SAMPLE_DIR / f"{SPLIT_FILES['test' + split[split.index('-') :]]}.gz",
            target / f"{stem}.gz",
        )
    return target


def test_data_verify_copy_and_corrupted_copy(capsys, tmp_path: Path) -> None:
    directory = _sample_copy(tmp_path / "mnist")
    code, out, _ = _run(capsys, "data", "verify", "mnist", "--data-dir", str(tmp_path))
    assert code == 0 and "checksum ok" in out

    images = directory / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(images.read_bytes()))
    raw[5000] ^= 0xFF  # one pixel: still a valid IDX file, but not the official one
    images.write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    code, _, err = _run(capsys, "data", "verify", "mnist", "--data-dir", str(tmp_path))
    assert code == 2
    _one_error_line(err, str(images), "mismatch")

    images.write_bytes(images.read_bytes()[:-1000])
    code, _, err = _run(capsys, "data", "verify", "mnist", "--data-dir", str(tmp_path))
    assert code == 2
    _one_error_line(err, str(images))


def test_data_verify_missing_dataset(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(
        sources.DATASETS,
        "fashion-mnist",
        DatasetSpec("fashion-mnist", tuple("0123456789"), (), {}, system_dirs=()),
    )
    code, _, err = _run(capsys, "data", "verify", "fashion-mnist", "--data-dir", str(tmp_path))
    assert code == 2
    _one_error_line(err, "fashion-mnist", "no local copy")


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bytes]]:
    """A local mirror serving the sample as "mnist" (spec md5s patched to match); yields name -> bytes."""
    served: dict[str, bytes] = {}
    for split, stem in SPLIT_FILES.items():
        test_name = SPLIT_FILES["test" + split[split.index("-") :]]
        served[f"{stem}.gz"] = (sources.SAMPLE_DIR / f"{test_name}.gz").read_bytes()
    md5 = {split: hashlib.md5(served[f"{stem}.gz"]).hexdigest() for split, stem in SPLIT_FILES.items()}
    monkeypatch.setitem(sources.DATASETS, "mnist", DatasetSpec("mnist", tuple("0123456789"), (), md5))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    monkeypatch.setenv("DLRL_MIRROR_MNIST", f"http://127.0.0.1:{httpd.server_address[1]}/")
    yield served
    httpd.shutdown()
    httpd.server_close()


def test_data_fetch_into_data_dir(mirror, capsys, tmp_path: Path) -> None:
    code, out, err = _run(capsys, "data", "fetch", "mnist", "--data-dir", str(tmp_path / "d"))
    assert code == 0, err
    target = tmp_path / "d" / "mnist"
    assert sorted(p.name for p in target.iterdir()) == sorted(mirror)
    assert "downloaded and verified" in out and "100%" in err
    code, out, _ = _run(capsys, "data", "verify", "mnist", "--data-dir", str(tmp_path / "d"))
    assert code == 0 and str(target) in out


def test_data_fetch_completes_an_incomplete_data_dir(mirror, capsys, tmp_path: Path) -> None:
    target = tmp_path / "d" / "mnist"
    target.mkdir(parents=True)
    (target / "train-images-idx3-ubyte.gz").write_bytes(mirror["train-images-idx3-ubyte.gz"])
    code, _, err = _run(
        capsys, "classify", "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "run"), *TINY
    )
    assert code == 2
    _one_error_line(err, "incomplete mnist")
    code, _, err = _run(capsys, "data", "fetch", "mnist", "--data-dir", str(tmp_path / "d"))
    assert code == 0, err
    assert sorted(p.name for p in target.iterdir()) == sorted(mirror)


def test_data_fetch_wrong_files(mirror, capsys, tmp_path: Path, monkeypatch) -> None:
    for name in mirror:
        mirror[name] = b"\x1f\x8b" + b"garbage" * 100
    monkeypatch.setattr(download.time, "sleep", lambda seconds: None)  # skip the retry backoff
    code, _, err = _run(capsys, "data", "fetch", "mnist", "--data-dir", str(tmp_path / "d"))
    assert code == 2
    _one_error_line(err, "checksum mismatch", "train-images-idx3-ubyte.gz")
    assert list((tmp_path / "d" / "mnist").iterdir()) == []


def test_help_does_not_import_torch() -> None:
    """`dlrl --help` stays fast: building the parser imports no torch, ray, gymnasium or matplotlib."""
    import subprocess
    import sys

    code = (
        "import sys; from dlrl.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'ray', 'gymnasium', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
