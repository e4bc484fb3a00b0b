"""The figures of a DQN run over seeds: learning curves, exploration schedules, loss and Q, final returns."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlrl.config.dqn import DQNConfig
from dlrl.rl.agent import env_maker
from dlrl.rl.exploration import schedule_curve
from dlrl.rundir import RunDir
from dlrl.viz.rl import (
    plot_agent_view,
    plot_band,
    plot_eval_curves,
    plot_return_histogram,
    plot_schedules,
    plot_training_stats,
    smooth_on_grid,
)


def write_figures(
    cfg: DQNConfig, run_dir: RunDir, records: dict[str, dict[str, Any]], solve_at: float | None
) -> None:
    """RUN_DIR/figures/: every agent's episodes.csv, evals.csv and updates.csv, and the final returns."""
    grid = np.linspace(0, cfg.total_steps, 200)
    curves, eval_curves, evals, updates = _learning_curves(cfg, run_dir, records, grid)
    env = cfg.env
    run_dir.save_figure(
        plot_band(
            grid,
            {e: np.array(c) for e, c in curves.items()},
            f"{env}: training episode return (10-episode mean; band: min–max over seeds)",
            "episode return",
            hline=solve_at,
        ),
        "episode_returns",
    )
    run_dir.save_figure(
        plot_band(
            grid,
            {e: np.array(c) for e, c in eval_curves.items()},
            f"{env}: greedy evaluation ({cfg.eval_episodes} episodes; band: min–max over seeds)",
            "mean greedy return",
            hline=solve_at,
        ),
        "eval_returns",
    )
    run_dir.save_figure(
        plot_eval_curves(evals, f"{env}: greedy evaluation per agent", hline=solve_at),
        "eval_returns_per_seed",
    )
    _save_schedules(cfg, run_dir)
    if cfg.obs_type == "pixels":
        _save_agent_view(cfg, run_dir)
    run_dir.save_figure(plot_training_stats(updates), "loss_and_q")
    pooled: dict[str, np.ndarray] = {
        ex: np.concatenate([r["final_returns"] for r in records.values() if r["exploration"] == ex])
        for ex in cfg.explorations
    }
    run_dir.save_figure(
        plot_return_histogram(
            pooled,
            f"{env}: final greedy returns of the best checkpoints ({cfg.final_episodes} episodes per seed)",
        ),
        "final_returns",
    )


def _learning_curves(
    cfg: DQNConfig, run_dir: RunDir, records: dict[str, dict[str, Any]], grid: np.ndarray
) -> tuple[dict[str, list[np.ndarray]], dict[str, list[np.ndarray]], dict[str, Any], dict[str, Any]]:
    """Every seed's episode and evaluation curves on ``grid`` per exploration; evals and updates per agent."""
    curves: dict[str, list[np.ndarray]] = {e: [] for e in cfg.explorations}
    eval_curves: dict[str, list[np.ndarray]] = {e: [] for e in cfg.explorations}
    evals, updates = {}, {}
    for name, record in records.items():
        sub = run_dir.sub(name)
        episodes = sub.read_metrics("episodes.csv")
        rows = sub.read_metrics("evals.csv")
        curves[record["exploration"]].append(
            smooth_on_grid(
                np.array([r["step"] for r in episodes]), np.array([r["return"] for r in episodes]), grid
            )
        )
        steps, means = np.array([r["step"] for r in rows]), np.array([r["eval_mean"] for r in rows])
        eval_curves[record["exploration"]].append(smooth_on_grid(steps, means, grid, window=1))
        evals[name] = (steps, means)
        updates[name] = sub.read_metrics("updates.csv")
    return curves, eval_curves, evals, updates


def _save_schedules(cfg: DQNConfig, run_dir: RunDir) -> None:
    """The exploration schedules of the run's explorations over its steps."""
    e = cfg.exploration
    schedules, labels = {}, {}
    if "epsilon" in cfg.explorations:
        steps, schedules[f"epsilon ({e.epsilon_decay})"] = schedule_curve(
            e.epsilon_decay, e.epsilon_start, e.epsilon_end, e.epsilon_steps, cfg.total_steps
        )
    if "softmax" in cfg.explorations:
        steps, schedules[f"softmax temperature ({e.temperature_decay})"] = schedule_curve(
            e.temperature_decay, e.temperature_start, e.temperature_end, e.temperature_steps, cfg.total_steps
        )
        labels[f"softmax temperature ({e.temperature_decay})"] = "temperature"
    run_dir.save_figure(plot_schedules(steps, schedules, labels), "exploration_schedule")


def _save_agent_view(cfg: DQNConfig, run_dir: RunDir, steps: int = 12) -> None:
    """One observation of a pixel agent after a few steps pushing right (cart and pole in motion)."""
    env = env_maker(cfg)()
    try:
        obs, _ = env.reset(seed=cfg.seed)
        for _ in range(steps):
            obs, _, terminated, truncated, _ = env.step(1 % env.action_space.n)
            if terminated or truncated:
                break
        rgb = env.last_rgb  # the PixelObservation wrapper's last rendered frame
    finally:
        env.close()
    crop = cfg.pixels.crop
    title = f"{cfg.env}: what the agent sees ({len(obs)} stacked frames, uint8)"
    run_dir.save_figure(plot_agent_view(rgb, crop, obs, title), "agent_view")
