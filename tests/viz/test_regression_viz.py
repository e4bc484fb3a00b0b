"""Regression figures from tiny arrays: panels per layer, optional parts left out cleanly."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from dlrl.viz.regression import plot_activations, plot_fit, plot_weight_histograms


def test_plot_fit_with_and_without_the_optional_parts() -> None:
    x = np.linspace(-1, 1, 20)
    grid = np.linspace(-1.2, 1.2, 30)
    full = plot_fit(
        x,
        x**2,
        grid,
        grid**2,
        true_curve=grid**2,
        band=(grid**2, np.full(30, 0.1)),
        gaps=((-0.2, 0.1),),
        val_x=x[:5],
        val_y=x[:5] ** 2,
    )
    labels = full.axes[0].get_legend_handles_labels()[1]
    assert any("true function" in label for label in labels) and any("2 sd" in label for label in labels)
    assert any("gap" in label for label in labels)
    csv_like = plot_fit(x, x**2, grid, grid**2)  # user data: no true function, band or gaps
    labels = csv_like.axes[0].get_legend_handles_labels()[1]
    assert not any("true" in label or "sd" in label or "gap" in label for label in labels)


def test_weight_histograms_one_panel_per_layer() -> None:
    rng = np.random.default_rng(0)
    layers = [
        ("hidden 1", rng.normal(size=(8, 1)), rng.normal(size=8)),
        ("output", rng.normal(size=(1, 8)), None),
    ]
    fig = plot_weight_histograms(layers)
    assert isinstance(fig, Figure) and len(fig.axes) == 2


def test_activations_heatmap_and_histogram_per_layer() -> None:
    grid = np.linspace(-3, 3, 50)
    activations = [np.tanh(np.outer(grid, np.linspace(-1, 1, 6))), np.tanh(np.outer(grid, np.ones(4)))]
    fig = plot_activations(grid, activations, "tanh", gaps=((-1, 0),))
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 2  # one heatmap per hidden layer (plus colorbars and histograms)
    assert images[0].images[0].get_array().shape == (6, 50)  # units x grid
