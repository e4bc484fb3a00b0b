"""Figures shared by several experiments: learning curves and image grids."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A Figure not registered with pyplot (no global state, no GUI backend needed)."""
    return Figure(figsize=(width, height), layout="constrained")


def plot_curves(
    history: Sequence[dict[str, float]],
    groups: dict[str, Sequence[str]],
    x: str = "epoch",
    log_y: Sequence[str] = (),
) -> Figure:
    """One panel per group title, one line per metric name present in ``history``."""
    fig = new_figure(4.2 * len(groups), 3.4)
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    xs = [row.get(x) for row in history]
    for ax, (title, names) in zip(axes, groups.items(), strict=True):
        for name in names:
            ys = [row.get(name) for row in history]
            if any(y is not None for y in ys):
                ax.plot(xs, [np.nan if y is None else y for y in ys], marker="o", markersize=3, label=name)
        ax.set_title(title)
        ax.set_xlabel(x)
        if title in log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    return fig


def image_grid(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    cell: float = 1.1,
) -> Figure:
    """Grid of grey images; images: (N, H, W) or (N, 1, H, W) in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0]
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig = new_figure(cell * ncols, cell * nrows + (0.4 if title else 0))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < n:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
        else:
            ax.axis("off")
        if row_labels is not None and i % ncols == 0 and i // ncols < len(row_labels):
            ax.set_ylabel(row_labels[i // ncols], fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
