"""Classifier figures: confusion matrix, per-class accuracy, architecture diagram."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from dlrl.viz.common import new_figure


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): rows are true classes, columns predictions."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(predictions)), 1)
    return cm


def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Counts (left) and row-normalised rates (right)."""
    fig = new_figure(13, 5.6)
    axes = fig.subplots(1, 2)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    for ax, matrix, title, fmt in ((axes[0], cm, "counts", "d"), (axes[1], rates, "row-normalised", ".2f")):
        image = ax.imshow(matrix, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set_title(f"Confusion matrix ({title})")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ticks = range(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(ticks, class_names, fontsize=8)
        threshold = matrix.max() / 2
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(
                    j,
                    i,
                    format(matrix[i, j], fmt),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if matrix[i, j] > threshold else "black",
                )
    return fig


def plot_per_class_accuracy(cm: np.ndarray, class_names: Sequence[str]) -> Figure:
    accuracy = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    fig = new_figure(7, 3.6)
    ax = fig.subplots()
    bars = ax.bar(range(len(class_names)), accuracy * 100, color="tab:blue")
    ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0, accuracy.min() * 100 - 10), 100.5)
    ax.set_title("Per-class accuracy")
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_architecture(layers: Sequence[tuple[str, str, int]], title: str = "Architecture") -> Figure:
    """Layer boxes left to right; layers: (name, output shape, parameter count)."""
    fig = new_figure(max(6.0, 1.6 * len(layers)), 2.6)
    ax = fig.subplots()
    ax.set_xlim(0, len(layers))
    ax.set_ylim(0, 1)
    ax.axis("off")
    for i, (name, shape, params) in enumerate(layers):
        box = FancyBboxPatch(
            (i + 0.08, 0.25), 0.84, 0.5, boxstyle="round,pad=0.02", fc="#dbe9f6", ec="#31708f"
        )
        ax.add_patch(box)
        ax.text(i + 0.5, 0.6, name, ha="center", va="center", fontsize=8, weight="bold")
        ax.text(i + 0.5, 0.45, shape, ha="center", va="center", fontsize=7)
        ax.text(i + 0.5, 0.32, f"{params:,} params" if params else "", ha="center", va="center", fontsize=6)
        if i:
            ax.add_patch(
                FancyArrowPatch((i - 0.08, 0.5), (i + 0.08, 0.5), arrowstyle="->", mutation_scale=10)
            )
    total = sum(p for _, _, p in layers)
    ax.set_title(f"{title}: {total:,} parameters")
    return fig
