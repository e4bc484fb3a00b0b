"""Figures of a search: arrays in, matplotlib Figure out (no file I/O, no pyplot state)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from dlrl.viz.common import new_figure


def _is_numeric(values: Sequence[object]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _wide_positive(values: np.ndarray) -> bool:
    """Positive values spanning more than a factor of 5: clearer on a log axis."""
    finite = values[np.isfinite(values)]
    return len(finite) > 1 and bool(finite.min() > 0) and finite.max() / finite.min() > 5


def _label(value: object) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _positions(values: Sequence[object], log: bool) -> tuple[np.ndarray, list[str] | None]:
    """Numeric values as they are (log10 if ``log``); categories as 0, 1, 2, ... with their labels."""
    if _is_numeric(values):
        array = np.asarray(values, dtype=float)
        return (np.log10(array) if log else array), None
    labels = list(dict.fromkeys(_label(v) for v in values))
    return np.array([labels.index(_label(v)) for v in values], dtype=float), labels


def plot_metric_vs_params(
    values: dict[str, Sequence[object]],
    scores: Sequence[float],
    metric: str,
    best_index: int,
    log_scale: set[str] = frozenset(),
) -> Figure:  # type: ignore[assignment]
    """One panel per hyperparameter: each trial's best mean ``metric`` against its value; the best in red."""
    names = list(values)
    ncols = min(3, max(1, len(names)))
    nrows = -(-len(names) // ncols)
    fig = new_figure(3.6 * ncols, 2.9 * nrows)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    scores = np.asarray(scores, dtype=float)
    for ax, name in zip(axes, names, strict=False):
        column = list(values[name])
        numeric = _is_numeric(column)
        x, labels = _positions(column, False)
        if labels is not None:  # spread categories a little so that points do not hide each other
            x = x + np.linspace(-0.12, 0.12, len(x)) if len(x) > 1 else x
        ax.scatter(x, scores, s=22, alpha=0.75)
        ax.scatter([x[best_index]], [scores[best_index]], s=60, color="tab:red", zorder=3, label="best")
        if numeric and name in log_scale:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log axis overlap
        if _wide_positive(scores):
            ax.set_yscale("log")
        if labels is not None:
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=7)
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.axis("off")
    fig.suptitle(f"{metric} (mean over folds, best epoch) vs each hyperparameter")
    return fig


def plot_learning_curves(
    curves: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float]]], metric: str, folds: int
) -> Figure:
    """``curves``: trial -> (epochs, mean metric over folds, spread over folds); bands are ± one spread."""
    fig = new_figure(6.4, 4.0)
    ax = fig.subplots()
    for name, (epochs, mean, spread) in curves.items():
        epochs_a, mean_a, spread_a = (np.asarray(v, dtype=float) for v in (epochs, mean, spread))
        (line,) = ax.plot(epochs_a, mean_a, marker="o", markersize=2.5, label=name)
        ax.fill_between(epochs_a, mean_a - spread_a, mean_a + spread_a, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (mean over {folds} folds)")
    ax.set_title(f"Learning curves of the best {len(curves)} trials (band: ± std over folds)")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7)
    return fig


def plot_parallel_coordinates(
    values: dict[str, Sequence[object]],
    scores: Sequence[float],
    metric: str,
    mode: str,
    log_scale: set[str] = frozenset(),
) -> Figure:  # type: ignore[assignment]
    """One vertical axis per hyperparameter (scaled to [0, 1]) plus the metric; a line per trial, coloured by
    the metric (bright = better)."""
    names = [*values, metric]
    scores = np.asarray(scores, dtype=float)
    columns, ticks = [], []  # ticks: per axis, (height in [0, 1], text)
    for name in values:
        x, labels = _positions(list(values[name]), name in log_scale)
        low, high = float(np.min(x)), float(np.max(x))
        span = high - low or 1.0
        columns.append((x - low) / span)
        if labels is not None:
            ticks.append([((i - low) / span, label) for i, label in enumerate(labels)])
        else:
            shown = (10**low, 10**high) if name in log_scale else (low, high)
            ticks.append([(0.0, f"{shown[0]:.3g}"), (1.0, f"{shown[1]:.3g}")])
    log_metric = _wide_positive(scores)
    shown = np.log10(scores) if log_metric else scores
    low, high = float(np.min(shown)), float(np.max(shown))
    span = high - low or 1.0
    columns.append((shown - low) / span)
    ends = (10**low, 10**high) if log_metric else (low, high)
    ticks.append([(0.0, f"{ends[0]:.3g}"), (1.0, f"{ends[1]:.3g}")])
    matrix = np.stack(columns, axis=1)  # (trials, axes)
    quality = (shown - low) / span
    quality = 1 - quality if mode == "min" else quality
    fig = new_figure(max(6.0, 1.5 * len(names)), 4.2)
    ax = fig.subplots()
    cmap = colormaps["viridis"]
    for row, q in sorted(zip(matrix, quality, strict=True), key=lambda item: item[1]):
        ax.plot(range(len(names)), row, color=cmap(q), alpha=0.8, linewidth=1.0 + 1.5 * q)
    for i, axis_ticks in enumerate(ticks):
        ax.axvline(i, color="0.6", linewidth=0.8)
        for y, text in axis_ticks:
            ax.text(i + 0.04, y, text, fontsize=6.5, va="center")
    ax.set_xticks(
        range(len(names)),
        [n.rpartition(".")[2] if i < len(values) else n for i, n in enumerate(names)],
        fontsize=8,
    )
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.15)
    ax.set_title(f"Parallel coordinates (colour: {metric}, bright = better)")
    return fig
