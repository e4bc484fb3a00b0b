"""Latent-space figures: 2-D embeddings (t-SNE, PCA) of encodings coloured by class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from dlrl.viz.common import new_figure


def plot_embedding(
    points: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    title: str,
    axis_labels: tuple[str, str] = ("dim 1", "dim 2"),
) -> Figure:
    """Scatter of points (N, 2) coloured by integer labels (N,), one legend entry per class."""
    points = np.asarray(points)
    labels = np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
        raise ValueError(f"expected points (N, 2) and labels (N,), got {points.shape} and {labels.shape}")
    fig = new_figure(6.4, 5.4)
    ax = fig.subplots()
    colours = [f"C{i % 10}" if i < 10 else None for i in range(len(class_names))]
    for index, name in enumerate(class_names):
        chosen = labels == index
        if chosen.any():
            ax.scatter(
                points[chosen, 0],
                points[chosen, 1],
                s=3,
                alpha=0.6,
                color=colours[index],
                label=name,
                rasterized=True,
            )
    ax.set_title(title)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.legend(fontsize=7, markerscale=4, loc="best", frameon=True)
    return fig
