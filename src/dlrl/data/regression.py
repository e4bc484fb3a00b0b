"""1-D regression data: a synthetic noisy function with gaps in x, or the user's two-column CSV.

The synthetic training x are drawn from the domain minus the gaps, so a fit must interpolate across them;
the test set is drawn fresh from the same x-distribution, and a noise-free grid inside the gaps measures
how well the fit interpolates (MSE against the true function).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dlrl.data.batching import Batches
from dlrl.errors import DataError

log = logging.getLogger(__name__)

# Synthetic x-distribution: uniform on DOMAIN without the GAPS.
DOMAIN = (-3.0, 3.0)
GAPS = ((-1.7, -0.9), (0.8, 1.5))
# Fewest data rows a CSV may have: enough for non-empty train / validation / test parts.
MIN_CSV_ROWS = 10
# Largest |value| a CSV may hold: the spread (and so any float32 prediction mapped back to y units,
# |z| < 3.4e38 times the std) stays below ~1e139, so squared errors and their sums stay finite in float64.
MAX_CSV_ABS = 1e100
# Largest |standardised value| in any part: float32 training squares it (3.4e38 overflows), with room to sum.
MAX_STANDARDISED = 1e15


def true_function(x: np.ndarray) -> np.ndarray:
    """The noise-free synthetic target: a trend, a slow and a faster wave that decays away from 0."""
    x = np.asarray(x, dtype=np.float64)
    return 0.4 * x + np.sin(2.0 * x) + 0.3 * np.cos(5.0 * x) * np.exp(-0.5 * x**2)


def sample_x(
    n: int,
    rng: np.random.Generator,
    domain: tuple[float, float] = DOMAIN,
    gaps: tuple[tuple[float, float], ...] = GAPS,
) -> np.ndarray:
    """``n`` points uniform on ``domain`` minus ``gaps`` (gaps sorted, inside the domain)."""
    lo, hi = domain
    pieces, start = [], lo
    for gap_lo, gap_hi in gaps:
        pieces.append((start, gap_lo))
        start = gap_hi
    pieces.append((start, hi))
    lengths = np.array([b - a for a, b in pieces])
    # Inverse CDF of the piecewise-uniform distribution: u in [0, total) maps into the pieces.
    u = rng.uniform(0.0, lengths.sum(), size=n)
    edges = np.concatenate([[0.0], np.cumsum(lengths)])
    piece = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, len(pieces) - 1)
    starts = np.array([a for a, _ in pieces])
    return starts[piece] + (u - edges[piece])


def gap_grid(points_per_gap: int = 200, gaps: tuple[tuple[float, float], ...] = GAPS) -> np.ndarray:
    """Evenly spaced x strictly inside each gap (for the interpolation error)."""
    grids = [np.linspace(a, b, points_per_gap + 2)[1:-1] for a, b in gaps]
    return np.concatenate(grids) if grids else np.zeros(0)


@dataclass
class Standardizer:
    """Affine map to zero mean / unit variance, fitted on the training part only."""

    mean: float
    std: float

    @classmethod
    def fit(cls, values: np.ndarray) -> Standardizer:
        std = float(np.std(values))
        return cls(float(np.mean(values)), std if std > 0 else 1.0)

    def forward(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean


@dataclass
class RegressionData:
    """Raw (unscaled) float64 arrays of shape (N,) for each part, plus scalers fitted on the training part."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str  # "synthetic" or the CSV path
    noise_std: float | None = None  # known for synthetic data
    true_fn: Callable[[np.ndarray], np.ndarray] | None = None
    gaps: tuple[tuple[float, float], ...] = ()
    x_scaler: Standardizer = field(init=False)
    y_scaler: Standardizer = field(init=False)

    def __post_init__(self) -> None:
        self.x_scaler = Standardizer.fit(self.train_x)
        self.y_scaler = Standardizer.fit(self.train_y)

    @property
    def is_synthetic(self) -> bool:
        return self.true_fn is not None

    def dataset(self, part: str) -> RegressionDataset:
        """The standardised ``train`` / ``val`` / ``test`` part as a RegressionDataset."""
        x, y = getattr(self, f"{part}_x"), getattr(self, f"{part}_y")
        return RegressionDataset(self.x_scaler.forward(x), self.y_scaler.forward(y))


class RegressionDataset(Dataset):
    """Pairs (x, y) as float32 tensors of shape (N, 1).

    ``__getitem__`` serves one pair (for torch's DataLoader); ``__getitems__`` and ``loader`` serve whole
    batches by indexing, which is what training uses.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray):
        if len(x) != len(y):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        self.x = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, 1)
        self.y = torch.as_tensor(np.asarray(y, dtype=np.float32)).reshape(-1, 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.x[index], self.y[index]

    def loader(
        self, batch_size: int, shuffle: bool = False, seed: int = 0, extra: tuple[torch.Tensor, ...] = ()
    ) -> Batches:
        """Mini-batches (x, y, *extra) by indexing, reshuffled per epoch from (seed, epoch)."""
        return Batches(self.x, self.y, *extra, batch_size=batch_size, shuffle=shuffle, seed=seed)


def synthetic(
    num_points: int, noise_std: float, val_fraction: float, test_points: int, seed: int
) -> RegressionData:
    """Train + validation from ``num_points`` noisy samples; a fresh test set from the same distribution."""
    rng = np.random.default_rng(seed)
    x = sample_x(num_points, rng)
    y = true_function(x) + rng.normal(0.0, noise_std, size=num_points)
    num_val = max(1, round(val_fraction * num_points))
    test_x = sample_x(test_points, rng)
    test_y = true_function(test_x) + rng.normal(0.0, noise_std, size=test_points)
    return RegressionData(
        x[num_val:],
        y[num_val:],
        x[:num_val],
        y[:num_val],
        test_x,
        test_y,
        "synthetic",
        noise_std,
        true_function,
        GAPS,
    )


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x}); save the file as UTF-8"
        ) from None


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a two-column x,y CSV (header optional, UTF-8 with or without BOM, LF or CRLF).

    Blank lines are skipped. Every problem is a DataError naming the file and, where it applies, the line.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: CSV file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a CSV file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read CSV file ({err.strerror})") from None
    text = _decode(path, raw)
    if not text.strip():
        raise DataError(f"{path}: CSV file is empty (expected two columns x,y)")
    xs: list[float] = []
    ys: list[float] = []
    header_seen = False
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cells = [c.strip().strip('"').strip() for c in line.split(",")]  # spreadsheets may quote cells
        if len(cells) != 2:
            raise DataError(
                f"{path}: line {number}: expected 2 comma-separated columns (x,y), got {len(cells)}"
            )
        values = []
        for cell in cells:
            try:
                values.append(float(cell))
            except ValueError:
                values.append(None)
        if None in values:
            if not xs and not header_seen and all(v is None for v in values):
                header_seen = True  # the first row names the columns
                continue
            bad = cells[values.index(None)]
            raise DataError(f"{path}: line {number}: not a number: {bad[:40]!r}")
        if not all(math.isfinite(v) for v in values):
            raise DataError(f"{path}: line {number}: NaN or infinite value ({line.strip()[:40]})")
        for name, value in zip("xy", values, strict=True):
            if abs(value) > MAX_CSV_ABS:
                raise DataError(
                    f"{path}: line {number}: {name} value {value!r} is beyond ±{MAX_CSV_ABS:g} (squared "
                    f"errors in these units overflow float64); rescale the column"
                )
        xs.append(values[0])
        ys.append(values[1])
    if not xs:
        raise DataError(f"{path}: CSV file has a header but no data rows")
    if len(xs) < MIN_CSV_ROWS:
        raise DataError(f"{path}: only {len(xs)} data rows; need at least {MIN_CSV_ROWS}")
    if min(xs) == max(xs):
        raise DataError(f"{path}: every x is {xs[0]!r} (a constant x column): nothing to fit y against")
    return np.array(xs), np.array(ys)


def from_csv(path: str | Path, val_fraction: float, test_fraction: float, seed: int) -> RegressionData:
    """The CSV's rows split reproducibly into train / validation / test."""
    x, y = read_csv(path)
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    num_val = max(1, round(val_fraction * n))
    num_test = max(1, round(test_fraction * n))
    if num_val + num_test >= n:
        raise DataError(
            f"{path}: {n} rows leave no training data with val_fraction={val_fraction}, "
            f"test_fraction={test_fraction}"
        )
    val, test, train = order[:num_val], order[num_val : num_val + num_test], order[num_val + num_test :]
    data = RegressionData(x[train], y[train], x[val], y[val], x[test], y[test], str(path))
    for name, values, scaler in (("x", x, data.x_scaler), ("y", y, data.y_scaler)):
        with np.errstate(over="ignore", invalid="ignore"):
            standardised = np.abs(scaler.forward(values))
        if not np.all(standardised <= MAX_STANDARDISED):  # also catches inf / NaN
            worst = float(values[np.argmax(np.nan_to_num(standardised, nan=np.inf))])
            train = getattr(data, f"train_{name}")
            raise DataError(
                f"{path}: {name} value {worst!r} is too far from the training rows' {name} values for "
                f"float32 training (their mean {scaler.mean:.6g}, std {float(np.std(train)):.6g}; more than "
                f"{MAX_STANDARDISED:g} stds); those (almost) all agree: remove the outlying rows"
            )
    return data
