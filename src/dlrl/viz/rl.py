"""Figures of the DQN experiment: learning curves over seeds, evaluations, schedules, losses, histograms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dlrl.viz.common import new_figure


def smooth_on_grid(steps: np.ndarray, values: np.ndarray, grid: np.ndarray, window: int = 10) -> np.ndarray:
    """Moving average of ``values`` (over ``window`` points) sampled on ``grid`` as of each grid step.

    steps: (N,) increasing x positions of the values (e.g. the env step each episode ended at).
    Grid points before the first value or after the last one are NaN (a run that stopped early stops there).
    """
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    out = np.full(len(grid), np.nan)
    if len(values) == 0:
        return out
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(1, len(values) + 1)
    avg = (cumsum[idx] - cumsum[np.maximum(idx - window, 0)]) / np.minimum(idx, window)
    pos = np.searchsorted(steps, grid, side="right") - 1  # last value finished at or before each grid step
    valid = (pos >= 0) & (grid <= steps[-1])
    out[valid] = avg[pos[valid]]
    return out


def plot_band(
    grid: np.ndarray,
    curves: Mapping[str, np.ndarray],
    title: str,
    ylabel: str,
    xlabel: str = "environment steps",
    hline: float | None = None,
) -> Figure:
    """Mean over seeds (line) and min..max over seeds (band) per label; curves[label]: (seeds, len(grid))."""
    fig = new_figure(6.4, 3.8)
    ax = fig.subplots()
    for label, values in curves.items():
        values = np.atleast_2d(np.asarray(values, dtype=float))
        counts = np.sum(~np.isnan(values), axis=0)
        ok = counts > 0
        filled = np.where(np.isnan(values), 0.0, values)
        mean = np.where(ok, filled.sum(axis=0) / np.maximum(counts, 1), np.nan)
        low = np.where(ok, np.nanmin(np.where(np.isnan(values), np.inf, values), axis=0), np.nan)
        high = np.where(ok, np.nanmax(np.where(np.isnan(values), -np.inf, values), axis=0), np.nan)
        line = ax.plot(grid, mean, label=f"{label} (mean of {values.shape[0]})")[0]
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    if hline is not None:
        ax.axhline(hline, color="grey", linestyle="--", linewidth=1, label=f"solved ({hline:g})")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_eval_curves(
    runs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    title: str = "Greedy evaluation",
    hline: float | None = None,
) -> Figure:
    """One line per run: runs[name] = (steps, mean greedy return at those steps)."""
    fig = new_figure(6.4, 3.8)
    ax = fig.subplots()
    for name, (steps, means) in runs.items():
        ax.plot(steps, means, marker="o", markersize=2.5, linewidth=1, label=name)
    if hline is not None:
        ax.axhline(hline, color="grey", linestyle="--", linewidth=1, label=f"solved ({hline:g})")
    ax.set_title(title)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean greedy return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return fig


def plot_schedules(
    steps: np.ndarray, schedules: Mapping[str, np.ndarray], ylabels: Mapping[str, str] | None = None
) -> Figure:
    """One panel per schedule (epsilon, temperature) over training steps."""
    fig = new_figure(4.0 * len(schedules), 3.2)
    axes = fig.subplots(1, len(schedules), squeeze=False)[0]
    for ax, (name, values) in zip(axes, schedules.items(), strict=True):
        ax.plot(steps, values)
        ax.set_title(name)
        ax.set_xlabel("environment steps")
        ax.set_ylabel((ylabels or {}).get(name, name))
        ax.grid(alpha=0.3)
    return fig


def plot_training_stats(runs: Mapping[str, Sequence[dict[str, float]]]) -> Figure:
    """TD loss and mean Q of the taken actions over steps; runs[name] = rows with step, loss, q_mean."""
    fig = new_figure(9.0, 3.4)
    ax_loss, ax_q = fig.subplots(1, 2)
    for name, rows in runs.items():
        rows = [r for r in rows if r.get("loss") is not None]
        steps = [r["step"] for r in rows]
        ax_loss.plot(steps, [r["loss"] for r in rows], linewidth=0.8, label=name)
        ax_q.plot(steps, [r["q_mean"] for r in rows], linewidth=0.8, label=name)
    ax_loss.set_yscale("log")
    for ax, title in ((ax_loss, "TD loss (Huber, batch mean)"), (ax_q, "Q-value estimate (mean over batch)")):
        ax.set_title(title)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
    if len(runs) <= 10:
        ax_q.legend(fontsize=7)
    return fig


def plot_return_histogram(
    returns: Mapping[str, np.ndarray], title: str = "Final greedy evaluation"
) -> Figure:
    """Histogram of episode returns per label (e.g. per exploration strategy, seeds pooled)."""
    fig = new_figure(6.0, 3.6)
    ax = fig.subplots()
    values = [np.asarray(v, dtype=float) for v in returns.values()]
    if values and sum(len(v) for v in values):
        low = min(v.min() for v in values if len(v))
        high = max(v.max() for v in values if len(v))
        edges = np.linspace(low - 0.5, high + 0.5, 31) if high > low else np.array([low - 0.5, low + 0.5])
        bins = [float(b) for b in edges]
        for label, v in zip(returns, values, strict=True):
            ax.hist(
                v,
                bins=bins,
                histtype="stepfilled",
                alpha=0.6,
                label=f"{label}: {v.mean():.1f} ± {v.std():.1f} (n={len(v)})",
            )
        ax.legend(fontsize=8)
    ax.set_title(title)
    ax.set_xlabel("episode return")
    ax.set_ylabel("episodes")
    ax.grid(alpha=0.3)
    return fig


def plot_agent_view(
    rgb: np.ndarray, crop: Sequence[int] | None, frames: np.ndarray, title: str = "What the agent sees"
) -> Figure:
    """The rendered screen with the cropped window outlined, and the k processed frames of one observation.

    rgb: (H0, W0, 3) uint8; crop: (top, bottom, left, right) or None; frames: (k, H, W) uint8, oldest first.
    """
    k = len(frames)
    fig = new_figure(3.2 * (k + 1), 3.0)
    axes = fig.subplots(1, k + 1, squeeze=False)[0]
    axes[0].imshow(rgb)
    if crop is not None:
        top, bottom, left, right = crop
        axes[0].add_patch(
            Rectangle((left, top), right - left, bottom - top, fill=False, edgecolor="red", linewidth=1.5)
        )
    axes[0].set_title(f"rendered {rgb.shape[1]}x{rgb.shape[0]}", fontsize=9)
    for i, (ax, frame) in enumerate(zip(axes[1:], frames, strict=True)):
        ax.imshow(frame, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(
            f"t{i - k + 1 if i < k - 1 else ''} ({frame.shape[1]}x{frame.shape[0]} grey)", fontsize=9
        )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return fig
