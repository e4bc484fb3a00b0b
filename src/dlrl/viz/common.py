"""Figures shared by several experiments: learning curves and image grids."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
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
    """Grid of grey images; images: (N, H, W) or (N, 1, H, W) in [0, 1].

    One mosaic in one Axes, not an Axes per image: a grid of 30 images drew in 0.25 s instead of 0.71 s, and
    the runs of the test suite draw dozens of grids.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images[:, 0]
    n, h, w = images.shape
    nrows = max(1, -(-n // ncols))
    gap_x = max(1, round(w * 0.1))
    gap_y = max(1, round(h * (0.3 if titles is not None else 0.1)))  # room for a title above each image
    step_x, step_y = w + gap_x, h + gap_y
    mosaic = np.full((nrows * step_y, ncols * step_x - gap_x), np.nan, dtype=np.float32)
    for i in range(n):
        row, col = divmod(i, ncols)
        mosaic[row * step_y + gap_y : (row + 1) * step_y, col * step_x : col * step_x + w] = images[i]
    inches_per_pixel = cell / step_x  # each column is `cell` inches wide
    fig = new_figure(cell * ncols, inches_per_pixel * mosaic.shape[0] + (0.4 if title else 0))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["gray"].with_extremes(bad="white")  # the gaps
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    for i in range(n if titles is not None else 0):
        row, col = divmod(i, ncols)
        x, y = col * step_x + w / 2, row * step_y + gap_y - 0.5
        ax.text(x, y, titles[i], fontsize=7, ha="center", va="bottom")  # type: ignore[index]
    for row, label in enumerate((row_labels or [])[:nrows]):
        y = row * step_y + gap_y + h / 2
        ax.text(-gap_x, y, label, fontsize=8, rotation=90, ha="right", va="center")
    if title:
        fig.suptitle(title)
    return fig
