"""Search figures from tiny arrays: numeric, log-scaled and categorical (list-valued) parameters."""

from __future__ import annotations

from matplotlib.figure import Figure

from dlrl.viz.search import plot_learning_curves, plot_metric_vs_params, plot_parallel_coordinates

VALUES = {
    "optim.lr": [1e-3, 3e-3, 1e-2],
    "model.hidden_sizes": [[8], [8, 8], [8]],
    "act": ["tanh", "relu", "tanh"],
}
SCORES = [0.05, 0.4, 0.06]


def test_metric_vs_params_one_panel_per_parameter_best_marked():
    fig = plot_metric_vs_params(VALUES, SCORES, "val_mse", best_index=0, log_scale={"optim.lr"})
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_xlabel() for ax in panels] == list(VALUES)
    assert panels[0].get_xscale() == "log" and panels[0].get_yscale() == "log"  # 0.05..0.4: wide
    assert [t.get_text() for t in panels[1].get_xticklabels()] == ["[8]", "[8, 8]"]


def test_parallel_coordinates_and_learning_curves():
    fig = plot_parallel_coordinates(VALUES, SCORES, "val_mse", "min", {"optim.lr"})
    ax = fig.axes[0]
    assert sum(len(line.get_xdata()) == 4 for line in ax.lines) == 3  # one line per trial across 4 axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lr", "hidden_sizes", "act", "val_mse"]
    curves = {"a": ([1, 2], [0.3, 0.2], [0.01, 0.02]), "b": ([1], [0.5], [0.0])}
    fig = plot_learning_curves(curves, "val_mse", 3)
    assert len(fig.axes[0].lines) == 2 and "3 folds" in fig.axes[0].get_ylabel()
