"""The regression experiment end to end, in-process: figures and summary, bad CSVs, determinism, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlrl.cli import main
from dlrl.data.regression import MIN_CSV_ROWS

# A few seconds per run: small data, a small net, a few epochs.
TINY = [
    "data.num_points=200",
    "data.test_points=400",
    "model.hidden_sizes=[8,8]",
    "epochs=6",
    "ensemble=2",
    "batch_size=32",
    "device=cpu",
]
FIGURES = {"fit", "weight_histograms", "activations", "learning_curves"}


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(["-q", "regression", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "regression"
    assert main(["-q", "regression", "--out", str(out), *TINY]) == 0
    return out


def test_tiny_run_writes_figures_summary_and_checkpoints(tiny_run: Path) -> None:
    assert {p.stem for p in (tiny_run / "figures").glob("*.png")} == FIGURES
    summary = json.loads((tiny_run / "summary.json").read_text())
    for key in (
        "test_mse",
        "test_mse_over_noise_var",
        "noise_var",
        "test_mse_vs_true",
        "gap_mse_vs_true",
        "ensemble_test_mse",
        "gap_band_coverage",
        "best_val_mse",
        "epochs_run",
        "parameters",
    ):
        assert key in summary, key
    assert summary["test_points"] == 400 and summary["train_points"] == 160
    assert summary["test_mse_over_noise_var"] == pytest.approx(summary["test_mse"] / 0.04)
    assert summary["parameters"] == (1 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    assert (tiny_run / "checkpoints" / "best.pt").exists()
    assert (tiny_run / "checkpoints" / "ensemble" / "best.pt").exists()
    assert len((tiny_run / "metrics.csv").read_text().splitlines()) == 1 + 6


@pytest.mark.parametrize("which", ["best.pt", "ensemble/best.pt"])
@pytest.mark.parametrize("foreign", ["bare-state-dict", "model-is-a-list"])
def test_evaluate_refuses_a_foreign_checkpoint(
    tiny_run: Path, capsys, tmp_path: Path, which: str, foreign: str
) -> None:
    import shutil

    import torch

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    path = run / "checkpoints" / which
    torch.save(
        torch.nn.Linear(2, 2).state_dict() if foreign == "bare-state-dict" else {"model": [torch.zeros(1)]},
        path,
    )
    assert main(["-q", "evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dlrl: error: {path}: not a dlrl checkpoint (") and err.count("\n") == 1, err


def test_same_seed_gives_identical_metrics(tiny_run: Path, tmp_path: Path) -> None:
    assert main(["-q", "regression", "--out", str(tmp_path / "again"), *TINY, "figures=false"]) == 0
    assert not list((tmp_path / "again" / "figures").glob("*.png"))
    ours, theirs = (json.loads((p / "summary.json").read_text()) for p in (tmp_path / "again", tiny_run))
    for key in ("test_mse", "best_val_mse", "ensemble_test_mse", "gap_mse_vs_true", "best_epoch"):
        assert ours[key] == theirs[key], key


def test_killed_run_resumes_to_the_same_result(
    tiny_run: Path, tmp_path: Path, capsys, interrupt_at_epoch
) -> None:
    run = tmp_path / "run"
    with interrupt_at_epoch(3):  # killed after epoch 3's row, before its checkpoint
        assert _run(capsys, "--out", str(run), *TINY, "figures=false")[0] == 130
    assert not (run / "summary.json").exists()
    code, _, err = _run(capsys, "--out", str(run), "--resume", *TINY, "figures=false")
    assert code == 0, err
    ours, theirs = (json.loads((p / "summary.json").read_text()) for p in (run, tiny_run))
    for key in ("test_mse", "best_val_mse", "ensemble_test_mse", "best_epoch", "epochs_run"):
        assert ours[key] == theirs[key], key


def test_csv_run(tmp_path: Path, capsys) -> None:
    rows = "".join(f"{i / 50:.3f},{(i / 50) ** 3 - i / 50:.4f}\r\n" for i in range(-100, 100))
    path = tmp_path / "cubic.csv"
    path.write_bytes(("\ufeffx,y\r\n" + rows).encode())
    out = tmp_path / "out"
    code, _, err = _run(capsys, "--csv", str(path), "--out", str(out), *TINY[2:], "figures=false")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data_source"] == str(path) and "test_mse_over_noise_var" not in summary
    assert summary["train_points"] + summary["val_points"] + summary["test_points"] == 200
    assert summary["test_mse"] > 0 and "gap_mse_vs_true" not in summary


BAD_FILES: dict[str, tuple[bytes | None, str]] = {
    "missing": (None, "not found"),
    "empty": (b"", "empty"),
    "header-only": (b"\xef\xbb\xbfx,y\r\n", "header but no data"),
    "non-numeric": (b"x,y\n1,2\n3,four\n", "line 3: not a number"),
    "nan": (b"x,y\r\n1,2\r\nNaN,3\r\n", "line 3: NaN or infinite"),
    "inf": (b"1,2\n2,-inf\n", "line 2: NaN or infinite"),
    "three-columns": (b"x,y,z\n1,2,3\n", "line 1: expected 2 comma-separated columns"),
    "latin-1": ("x,y\n1,2\n\u00e9t\u00e9,3\n".encode("latin-1"), "line 3: not UTF-8"),
    "too-few-rows": (b"1,2\n2,3\n3,4\n", f"need at least {MIN_CSV_ROWS}"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_csv_is_one_line_exit_2_and_leaves_nothing(name: str, tmp_path: Path, capsys) -> None:
    content, needle = BAD_FILES[name]
    path = tmp_path / f"{name}.csv"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, "--csv", str(path), "--out", str(out))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dlrl: error: {path}: ") and needle in lines[0], err
    assert not out.exists()
    assert stdout == ""


def _csv(xs: list[float], ys: list[float]) -> bytes:
    return ("x,y\n" + "".join(f"{x!r},{y!r}\n" for x, y in zip(xs, ys, strict=True))).encode()


_ROWS = [float(i) for i in range(30)]
EXTREME_FILES: dict[str, tuple[bytes, str]] = {
    # Issue 14: finite values near the float64 limit ended in 'ValueError: arange: cannot compute length'.
    "near-float64-limit": (_csv([1e308, -1.7e308, *_ROWS[2:]], _ROWS), "line 2: x value 1e+308 is beyond"),
    "huge-y-spread": (_csv(_ROWS, [(-1) ** i * 1.7e308 for i in range(30)]), "line 2: y value 1.7e+308"),
    "constant-x": (_csv([2.5] * 30, _ROWS), "every x is 2.5 (a constant x column)"),
}


@pytest.mark.parametrize("name", sorted(EXTREME_FILES))
def test_extreme_csv_is_one_line_exit_2_and_leaves_nothing(name: str, tmp_path: Path, capsys) -> None:
    content, needle = EXTREME_FILES[name]
    path = tmp_path / f"{name}.csv"
    path.write_bytes(content)
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, "--quick", "--csv", str(path), "--out", str(out), *TINY[2:])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dlrl: error: {path}: ") and needle in lines[0], err
    assert not out.exists()
    assert stdout == ""


def test_bad_regression_config_values(tmp_path: Path, capsys) -> None:
    for override, needle in (
        ("model.hidden_sizes=[8,0]", "model.hidden_sizes.1"),
        ("ensemble=-1", "ensemble"),
        ("model.activation=sigmoid", "model.activation"),
    ):
        code, _, err = _run(capsys, "--out", str(tmp_path / "out"), override)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()
