"""AutoEncoder figures: image rows (original / reconstructed, noisy / denoised / clean), PSNR by noise level,
the VAE's decoded manifold, CV fold curves and the fine-tuning accuracy plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from dlrl.viz.common import image_grid, new_figure


def plot_image_rows(rows: Mapping[str, np.ndarray], title: str | None = None) -> Figure:
    """One row of images per entry; rows: label -> (N, 1, H, W) or (N, H, W) in [0, 1], same N each."""
    arrays = [
        np.asarray(images).reshape(len(images), *np.asarray(images).shape[-2:]) for images in rows.values()
    ]
    widths = {len(a) for a in arrays}
    if len(widths) != 1:
        raise ValueError(f"every row needs the same number of images, got {sorted(widths)}")
    ncols = widths.pop()
    return image_grid(np.concatenate(arrays), ncols=ncols, row_labels=list(rows), title=title)


def plot_psnr_curves(
    levels: Sequence[float],
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    trained: tuple[str, float] | None = None,
) -> Figure:
    """PSNR (dB) vs noise level, a panel per noise kind; curves: kind -> {"noisy": [..], "denoised": [..]}."""
    fig = new_figure(4.0 * len(curves), 3.4)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (kind, series) in zip(axes, curves.items(), strict=True):
        for name, values in series.items():
            ax.plot(levels, values, marker="o", markersize=3, label=name)
        if trained is not None and trained[0] == kind:
            ax.axvline(trained[1], color="grey", linestyle=":", label="trained level")
        ax.set_title(f"{kind} noise")
        ax.set_xlabel("sigma" if kind == "gaussian" else "probability")
        ax.set_ylabel("PSNR vs clean (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_manifold(images: np.ndarray, z_values: np.ndarray, title: str) -> Figure:
    """Decoded images on a grid of (z1, z2): images (n*n, 1, H, W) row-major with z2 decreasing downwards."""
    images = np.asarray(images)
    n = len(z_values)
    h, w = images.shape[-2:]
    canvas = images.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(n * h, n * w)
    fig = new_figure(7, 7)
    ax = fig.subplots()
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    ticks = np.arange(n) * w + w / 2
    ax.set_xticks(ticks, [f"{v:.1f}" for v in z_values], fontsize=7)
    ax.set_yticks(ticks, [f"{v:.1f}" for v in z_values[::-1]], fontsize=7)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title)
    return fig


def plot_fold_curves(
    fold_histories: Sequence[Sequence[Mapping[str, float]]], metric: str = "val_loss"
) -> Figure:
    """Validation metric per epoch, one line per CV fold."""
    fig = new_figure(5.5, 3.6)
    ax = fig.subplots()
    for index, history in enumerate(fold_histories, 1):
        ax.plot(
            [r["epoch"] for r in history],
            [r.get(metric, np.nan) for r in history],
            marker="o",
            markersize=3,
            label=f"fold {index}",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"K-fold cross validation ({len(fold_histories)} folds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_accuracy_vs_labels(
    label_counts: Sequence[int],
    accuracy: Mapping[str, Sequence[float]],
    title: str = "Test accuracy vs labelled training images",
) -> Figure:
    """Accuracy (fraction) per mode (line) against the number of labels (log x)."""
    fig = new_figure(6, 4)
    ax = fig.subplots()
    for mode, values in accuracy.items():
        ax.plot(label_counts, np.asarray(values) * 100, marker="o", label=mode)
        for x, y in zip(label_counts, values, strict=True):
            ax.annotate(
                f"{100 * y:.1f}",
                (x, 100 * y),
                textcoords="offset points",
                xytext=(0, 5),
                fontsize=7,
                ha="center",
            )
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig
