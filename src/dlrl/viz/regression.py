"""Regression figures: data with the fitted curve, weight histograms per layer, hidden activations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from dlrl.viz.common import new_figure


def _shade_gaps(ax, gaps: Sequence[tuple[float, float]], label: bool = True) -> None:
    for i, (lo, hi) in enumerate(gaps):
        ax.axvspan(
            lo,
            hi,
            color="0.85",
            alpha=0.6,
            lw=0,
            label="gap (no training data)" if label and i == 0 else None,
        )


def plot_fit(
    x: np.ndarray,
    y: np.ndarray,
    grid: np.ndarray,
    fit: np.ndarray,
    true_curve: np.ndarray | None = None,
    band: tuple[np.ndarray, np.ndarray] | None = None,
    gaps: Sequence[tuple[float, float]] = (),
    val_x: np.ndarray | None = None,
    val_y: np.ndarray | None = None,
) -> Figure:
    """Training (and validation) points, the fitted curve over ``grid``, the true function if known, and
    the ensemble mean +- 2 sd band (uncertainty of the fit, not of the noise).

    x, y: (N,); grid, fit, true_curve: (G,); band: (mean (G,), sd (G,))."""
    fig = new_figure(8, 4.6)
    ax = fig.subplots()
    _shade_gaps(ax, gaps)
    ax.scatter(x, y, s=5, alpha=0.35, color="tab:blue", lw=0, label=f"training data ({len(x)})")
    if val_x is not None and val_y is not None:
        ax.scatter(
            val_x, val_y, s=5, alpha=0.35, color="tab:orange", lw=0, label=f"validation data ({len(val_x)})"
        )
    if band is not None:
        mean, sd = band
        ax.fill_between(
            grid,
            mean - 2 * sd,
            mean + 2 * sd,
            color="tab:green",
            alpha=0.3,
            lw=0,
            label="ensemble mean ± 2 sd (fit uncertainty)",
        )
    if true_curve is not None:
        ax.plot(grid, true_curve, color="black", ls="--", lw=1.2, label="true function")
    ax.plot(grid, fit, color="tab:red", lw=1.8, label="fitted network")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Data and fitted curve")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_weight_histograms(
    layers: Sequence[tuple[str, np.ndarray, np.ndarray | None]], bins: int = 40
) -> Figure:
    """One panel per layer: histogram of its weights (and biases). layers: (name, weight, bias or None)."""
    fig = new_figure(3.2 * len(layers), 3.0)
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    filled = {"bins": bins, "histtype": "stepfilled"}  # one outline per histogram, not a bar per bin
    for ax, (name, weight, bias) in zip(axes, layers, strict=True):
        weight = np.asarray(weight).ravel()
        ax.hist(weight, **filled, color="tab:blue", alpha=0.8, label=f"weights ({weight.size})")
        if bias is not None:
            bias = np.asarray(bias).ravel()
            ax.hist(bias, **filled, color="tab:orange", alpha=0.7, label=f"biases ({bias.size})")
        ax.set_title(f"{name}: sd {weight.std():.3f}", fontsize=9)
        ax.set_xlabel("value")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("count")
    fig.suptitle("Weight histograms per layer")
    return fig


def plot_activations(
    grid: np.ndarray,
    activations: Sequence[np.ndarray],
    activation: str = "",
    gaps: Sequence[tuple[float, float]] = (),
) -> Figure:
    """Per hidden layer: a heatmap of every unit's output over ``grid`` (units sorted by where they peak)
    and the histogram of all its outputs.

    grid: (G,); activations: one (G, width) array per hidden layer."""
    n = len(activations)
    fig = new_figure(3.6 * n, 6.0)
    axes = fig.subplots(2, n, squeeze=False, height_ratios=[3, 2])
    extent_x = (float(grid[0]), float(grid[-1]))
    for i, values in enumerate(activations):
        values = np.asarray(values)
        order = np.argsort(np.argmax(values, axis=0))  # units ordered by the x where they are largest
        ax = axes[0, i]
        image = ax.imshow(
            values[:, order].T,
            aspect="auto",
            origin="lower",
            cmap="coolwarm",
            extent=(*extent_x, -0.5, values.shape[1] - 0.5),
            interpolation="nearest",
        )
        for lo, hi in gaps:
            ax.axvline(lo, color="black", lw=0.6, ls=":")
            ax.axvline(hi, color="black", lw=0.6, ls=":")
        fig.colorbar(image, ax=ax, fraction=0.05)
        ax.set_title(f"hidden layer {i + 1} ({values.shape[1]} units)", fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylabel("unit (sorted by peak x)")
        hist = axes[1, i]
        hist.hist(values.ravel(), bins=40, histtype="stepfilled", color="tab:purple", alpha=0.85)
        hist.set_xlabel(f"{activation} output" if activation else "activation")
        hist.set_ylabel("count")
    fig.suptitle("Hidden-layer activations over a grid of inputs (dotted: gaps in the training data)")
    return fig
