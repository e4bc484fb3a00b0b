"""Regression data: the synthetic draw (reproducible, with its gaps), the CSV reader, Dataset and loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlrl.data.regression import (
    GAPS,
    MIN_CSV_ROWS,
    RegressionDataset,
    from_csv,
    gap_grid,
    read_csv,
    sample_x,
    synthetic,
    true_function,
)
from dlrl.errors import DataError


def test_synthetic_is_reproducible_under_a_seed() -> None:
    a = synthetic(300, 0.2, 0.2, 500, seed=3)
    b = synthetic(300, 0.2, 0.2, 500, seed=3)
    c = synthetic(300, 0.2, 0.2, 500, seed=4)
    for part in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.train_x, c.train_x)
    assert (len(a.train_x), len(a.val_x), len(a.test_x)) == (240, 60, 500)


def test_synthetic_points_avoid_the_gaps_and_cover_the_rest() -> None:
    data = synthetic(2000, 0.2, 0.2, 2000, seed=0)
    for x in (data.train_x, data.val_x, data.test_x):
        for lo, hi in GAPS:
            assert not np.any((x > lo) & (x < hi))
    # Both sides of every gap hold data, and points fall in every piece between the gaps.
    edges = [-3.0, *[v for gap in GAPS for v in gap], 3.0]
    for lo, hi in zip(edges[::2], edges[1::2], strict=True):
        assert np.sum((data.train_x >= lo) & (data.train_x <= hi)) > 50


def test_sample_x_is_uniform_outside_the_gaps() -> None:
    x = sample_x(100_000, np.random.default_rng(0), (0.0, 10.0), ((2.0, 4.0),))
    assert x.min() >= 0 and x.max() <= 10 and not np.any((x > 2) & (x < 4))
    # 2 of the 8 units of allowed length lie below the gap.
    assert abs(np.mean(x < 2) - 0.25) < 0.01


def test_noise_has_the_configured_level() -> None:
    data = synthetic(20_000, 0.3, 0.5, 10, seed=1)
    residual = data.train_y - true_function(data.train_x)
    assert abs(residual.std() - 0.3) < 0.01


def test_gap_grid_lies_strictly_inside_the_gaps() -> None:
    grid = gap_grid(50)
    assert len(grid) == 50 * len(GAPS)
    assert all(any(lo < x < hi for lo, hi in GAPS) for x in grid)


def test_standardised_training_part_has_zero_mean_unit_variance() -> None:
    data = synthetic(500, 0.2, 0.2, 100, seed=0)
    train = data.dataset("train")
    assert abs(float(train.x.mean())) < 1e-5 and abs(float(train.y.std(unbiased=False)) - 1) < 1e-4
    np.testing.assert_allclose(
        data.y_scaler.inverse(train.y.numpy().ravel()), data.train_y, rtol=1e-5, atol=1e-5
    )


def test_dataset_items_batches_and_loader() -> None:
    dataset = RegressionDataset(np.arange(10.0), np.arange(10.0) * 2)
    assert len(dataset) == 10
    x, y = dataset[3]
    assert x.shape == (1,) and float(y) == 6.0
    xb, yb = dataset.__getitems__([1, 4])
    assert xb.shape == (2, 1) and yb.ravel().tolist() == [2.0, 8.0]
    loader = dataset.loader(4, shuffle=True, seed=1)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[0] for b in batches]).ravel().sort().values
    assert seen.tolist() == list(range(10))
    assert all(torch.equal(b[1], 2 * b[0]) for b in batches)  # pairs stay aligned after shuffling
    # torch's own DataLoader can use the Dataset too (it batches through __getitems__).
    from torch.utils.data import DataLoader

    first = next(iter(DataLoader(dataset, batch_size=5, collate_fn=lambda b: b)))
    assert first[0].shape == (5, 1)


# --- CSV ----------------------------------------------------------------------------------------------

ROWS = "".join(f"{i / 10},{(i / 10) ** 2}\n" for i in range(20))


def _write(tmp_path: Path, content: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize(
    "content",
    [
        ROWS,
        "x,y\n" + ROWS,
        "\ufeffx,y\n" + ROWS,  # BOM
        ("x,y\n" + ROWS).replace("\n", "\r\n"),  # CRLF
        "\ufeff" + ROWS.replace("\n", "\r\n") + "\r\n\r\n",  # BOM, CRLF, trailing blank lines
        " x , y \n" + ROWS.replace(",", " , "),  # spaces around cells
        '"x","y"\n' + "".join(f'"{i / 10}","{(i / 10) ** 2}"\n' for i in range(20)),  # quoted cells
    ],
    ids=["plain", "header", "bom", "crlf", "bom-crlf-blank", "spaces", "quoted"],
)
def test_csv_accepts_the_usual_variants(tmp_path: Path, content: str) -> None:
    x, y = read_csv(_write(tmp_path, content))
    assert len(x) == 20
    np.testing.assert_allclose(y, x**2)


BAD_CSV = {
    "empty": (b"", "empty"),
    "blank-lines-only": (b"\n\r\n  \n", "empty"),
    "header-only": (b"x,y\n", "header but no data"),
    "non-numeric": (("x,y\n" + ROWS + "1.0,abc\n").encode(), "line 22: not a number: 'abc'"),
    "nan": (("x,y\n1,2\nnan,1\n" + ROWS).encode(), "line 3: NaN or infinite"),
    "inf": ((ROWS + "2.0,inf\n").encode(), "line 21: NaN or infinite"),
    "three-columns": (("x,y\n1,2\n3,4,5\n" + ROWS).encode(), "line 3: expected 2 comma-separated columns"),
    "one-column": (b"1\n2\n3\n", "line 1: expected 2 comma-separated columns (x,y), got 1"),
    "latin-1": ("x,y\n1,2\n3,4\nçà,1\n".encode("latin-1"), "line 4: not UTF-8"),
    "too-few-rows": (b"x,y\n1,2\n3,4\n", f"only 2 data rows; need at least {MIN_CSV_ROWS}"),
    "header-later": ((ROWS + "x,y\n").encode(), "line 21: not a number"),
}


@pytest.mark.parametrize("name", sorted(BAD_CSV))
def test_csv_bad_input_is_a_one_line_data_error(tmp_path: Path, name: str) -> None:
    content, needle = BAD_CSV[name]
    path = _write(tmp_path, content)
    with pytest.raises(DataError) as err:
        read_csv(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and needle in message and "\n" not in message


def test_csv_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_csv(tmp_path)


def test_csv_split_is_disjoint_and_reproducible(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS * 5)
    a = from_csv(path, 0.2, 0.2, seed=0)
    b = from_csv(path, 0.2, 0.2, seed=0)
    assert (len(a.train_x), len(a.val_x), len(a.test_x)) == (60, 20, 20)
    np.testing.assert_array_equal(a.test_x, b.test_x)
    assert not a.is_synthetic and a.source == str(path)


def test_csv_split_that_leaves_no_training_rows(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="leave no training data"):
        from_csv(_write(tmp_path, ROWS[: ROWS.index("1.0,")]), 0.5, 0.5, seed=0)


def _write_pairs(path: Path, xs, ys) -> Path:
    path.write_text("x,y\n" + "".join(f"{float(x)!r},{float(y)!r}\n" for x, y in zip(xs, ys, strict=True)))
    return path


COUNTS = np.arange(30.0)


@pytest.mark.parametrize(
    ("xs", "ys", "needle"),
    [
        ([1e308, -1.7e308, *COUNTS[2:]], COUNTS, "line 2: x value 1e+308 is beyond ±1e+100"),
        (COUNTS, [*COUNTS[:5], -1.7e308, *COUNTS[6:]], "line 7: y value -1.7e+308 is beyond ±1e+100"),
        (COUNTS, np.where(COUNTS % 2 == 0, 1e200, -1e200), "line 2: y value 1e+200"),
        (np.full(30, 2.5), COUNTS, "every x is 2.5 (a constant x column)"),
        (np.full(30, -1.7e308), COUNTS, "x value -1.7e+308 is beyond"),
    ],
)
def test_extreme_or_constant_values_are_refused(tmp_path: Path, xs, ys, needle: str) -> None:
    path = _write_pairs(tmp_path / "extreme.csv", xs, ys)
    with pytest.raises(DataError) as info:
        read_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and needle in message and "\n" not in message


def test_large_and_tiny_values_within_range_work(tmp_path: Path) -> None:
    path = _write_pairs(tmp_path / "ok.csv", np.linspace(-1e-200, 1e-200, 30), np.sin(COUNTS) * 1e100)
    data = from_csv(path, 0.2, 0.2, seed=0)
    for part in ("train", "val", "test"):
        dataset = data.dataset(part)
        assert torch.isfinite(dataset.x).all() and torch.isfinite(dataset.y).all()
    assert 0.5 < float(data.dataset("train").y.std(unbiased=False)) < 2


def test_values_far_outside_the_training_spread_are_refused(tmp_path: Path) -> None:
    """All x but one are equal: when the odd one is held out, standardising by the training part puts it
    1e50 'standard deviations' away (float32 training overflows): refused, whichever seed splits it so."""
    path = _write_pairs(tmp_path / "outlier.csv", [*[5.0] * 29, 1e50], COUNTS)
    refused = 0
    for seed in range(10):
        try:
            data = from_csv(path, 0.2, 0.2, seed=seed)
        except DataError as err:
            refused += 1
            assert str(err).startswith(f"{path}: ") and "x value 1e+50" in str(err)
            assert "training" in str(err)
        else:
            assert 1e50 in data.train_x
    assert 0 < refused < 10


# --- properties: whatever the file holds, the reader returns data or raises a DataError, nothing else ----

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_ANY_FLOAT = st.one_of(st.floats(), st.floats(-1e6, 1e6), st.sampled_from([0.0, 1e100, -1e100, 1e308]))


def _read_or_data_error(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        return read_csv(path)
    except DataError as err:
        assert str(path) in str(err) and "\n" not in str(err)
        return None


@PROPERTY
@given(content=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode)))
def test_any_bytes_give_data_or_a_data_error(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path = tmp_path_factory.mktemp("csv") / "any.csv"
    path.write_bytes(content)
    result = _read_or_data_error(path)
    if result is not None:
        x, y = result
        assert len(x) == len(y) >= MIN_CSV_ROWS and np.isfinite(x).all() and np.isfinite(y).all()


@PROPERTY
@given(rows=st.lists(st.tuples(_ANY_FLOAT, _ANY_FLOAT), max_size=40), seed=st.integers(0, 3))
def test_any_float_pairs_give_usable_data_or_a_data_error(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[float, float]], seed: int
) -> None:
    """Accepted data standardise to finite float32 in every part, and any finite float32 prediction maps
    back to y units with a finite squared error (what the test MSE and the figures compute)."""
    path = tmp_path_factory.mktemp("csv") / "pairs.csv"
    path.write_text("x,y\n" + "".join(f"{x!r},{y!r}\n" for x, y in rows))
    try:
        data = from_csv(path, 0.2, 0.2, seed)
    except DataError as err:
        assert str(path) in str(err) and "\n" not in str(err)
        return
    for part in ("train", "val", "test"):
        dataset = data.dataset(part)
        assert torch.isfinite(dataset.x).all() and torch.isfinite(dataset.y).all()
    extreme = data.y_scaler.inverse(np.array([-3.4e38, 3.4e38]))
    assert np.isfinite((extreme[:, None] - data.test_y[None, :]) ** 2).all()
