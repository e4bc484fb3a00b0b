"""Part 3: DQN on Gymnasium classic control, several seeds and exploration strategies in parallel processes.

RUN_DIR/<exploration>-seed<N>/ holds each agent's checkpoints (last.pt, best.pt by greedy evaluation),
episodes.csv, evals.csv, updates.csv and result.json; RUN_DIR/ holds the figures over seeds, metrics.csv
(every evaluation of every agent) and summary.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from dlrl.config import build_config, read_config_file
from dlrl.config.dqn import DQNConfig
from dlrl.errors import CheckpointError, DlrlError
from dlrl.rundir import RunDir
from dlrl.utils import usable_cores

log = logging.getLogger(__name__)

TARGETS: list[dict[str, Any]] = [
    {
        "metric": "min_final_mean",
        "op": ">=",
        "value": 475,
        "label": "CartPole-v1: worst seed's greedy mean over 100 episodes",
        "reference": "SB3 + RL Zoo settings: 2 of 3 seeds solved in 50k steps, one collapses to 19; "
        "CleanRL dqn.py: 1 of 2 seeds at 500k steps",
    },
    {
        "metric": "max_steps",
        "op": "<=",
        "value": 30_000,
        "label": "CartPole-v1: env steps per seed (worst seed)",
        "reference": "SB3 + RL Zoo: 50,000 steps",
    },
    {
        "metric": "max_seconds_per_seed",
        "op": "<=",
        "value": 30,
        "label": "CartPole-v1: wall seconds per seed",
        "reference": "SB3 + RL Zoo: about 60 s per seed",
    },
]


def run_name(exploration: str, seed: int) -> str:
    return f"{exploration}-seed{seed}"


def validate(cfg: DQNConfig) -> None:
    """Env id known and with discrete actions: checked before the run directory is written."""
    from dlrl.rl.envs import env_info

    env_info(cfg.env)


def _train_job(
    cfg_data: dict[str, Any], exploration: str, seed: int, path: str, resume: bool
) -> dict[str, Any]:
    """Train and finally evaluate one agent into ``path``; runs in a worker process (or in-process)."""

    from dlrl.rl.evaluate import greedy_returns
    from dlrl.rl.loop import FINAL_SEED_OFFSET, load_q_network, train_dqn
    from dlrl.utils import configure_torch, cpu_seconds

    cfg = DQNConfig.model_validate(cfg_data)
    configure_torch(cfg.threads or 1)
    sub = RunDir(path)
    sub.checkpoints.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), cpu_seconds(children=False)
    result = train_dqn(cfg, exploration, seed, sub.checkpoints, resume)
    seconds, cpu = time.perf_counter() - started, cpu_seconds(children=False) - cpu_started
    sub.write_metrics(result.episodes, "episodes.csv")
    sub.write_metrics(result.evals, "evals.csv")
    sub.write_metrics(result.updates, "updates.csv")
    q_net = load_q_network(sub.checkpoints / "best.pt", cfg)
    returns = greedy_returns(q_net, cfg.env, cfg.final_episodes, seed + FINAL_SEED_OFFSET)
    record = {
        "exploration": exploration,
        "seed": seed,
        "steps": result.steps,
        "episodes": len(result.episodes),
        "best_eval": result.best_eval,
        "best_step": result.best_step,
        "solved_step": result.solved_step,
        "stopped_early": result.stopped_early,
        "final_mean": float(returns.mean()),
        "final_std": float(returns.std()),
        "final_min": float(returns.min()),
        "train_seconds": round(result.train_seconds, 2),
        "seconds_this_process": round(seconds, 2),
        "cpu_seconds_this_process": round(cpu, 2),  # wall minus waiting for a shared core
        "steps_per_second": round((result.steps - result.resumed_from) / max(seconds, 1e-9), 1),
        "resumed_from": result.resumed_from,
        "final_returns": returns.tolist(),
    }
    sub.write_json("result.json", record)
    return record


def _workers(cfg: DQNConfig, jobs: int) -> int:
    return max(1, min(jobs, cfg.workers or usable_cores()))


def run_jobs(cfg: DQNConfig, run_dir: RunDir, resume: bool) -> dict[str, dict[str, Any]]:
    """Train every (exploration, seed) agent not already finished; returns their result records by name."""
    jobs = [(e, s) for e in cfg.explorations for s in cfg.run_seeds()]
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for exploration, seed in jobs:
        sub = run_dir.sub(run_name(exploration, seed))
        done = sub.path / "result.json"
        if resume and done.is_file():
            records[run_name(exploration, seed)] = json.loads(done.read_text())
            log.info("%s: finished earlier, kept", run_name(exploration, seed))
        else:
            todo.append((exploration, seed, str(sub.path)))
    cfg_data = cfg.model_dump(mode="json")
    workers = _workers(cfg, len(todo))
    log.info("dqn on %s: %d agent(s) to train, %d process(es)", cfg.env, len(todo), workers)
    if workers <= 1:
        for exploration, seed, path in todo:
            records[run_name(exploration, seed)] = _report(
                _train_job(cfg_data, exploration, seed, path, resume)
            )
    else:
        # spawn: a clean interpreter per worker (no forked torch thread pools); one torch thread each
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_train_job, cfg_data, e, s, p, resume): run_name(e, s) for e, s, p in todo}
            for future, name in futures.items():
                records[name] = _report(future.result())
    return {run_name(e, s): records[run_name(e, s)] for e, s in jobs}


def _report(record: dict[str, Any]) -> dict[str, Any]:
    log.info(
        "%s: %d steps, best eval %.1f at %d, final greedy %.1f ± %.1f, %.1f s (%.0f steps/s)",
        run_name(record["exploration"], record["seed"]),
        record["steps"],
        record["best_eval"],
        record["best_step"],
        record["final_mean"],
        record["final_std"],
        record["train_seconds"],
        record["steps_per_second"],
    )
    return record


def _aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    means = np.array([r["final_mean"] for r in records])
    solved = [r["solved_step"] for r in records]
    return {
        "seeds": len(records),
        "final_mean": float(means.mean()),
        "final_mean_std_over_seeds": float(means.std()),
        "min_final_mean": float(means.min()),
        "max_steps": int(max(r["steps"] for r in records)),
        "max_steps_to_solve": int(max(solved)) if all(s is not None for s in solved) else None,
        "median_steps_to_solve": float(np.median([s for s in solved if s is not None]))
        if any(s is not None for s in solved)
        else None,
        "max_seconds_per_seed": float(max(r["train_seconds"] for r in records)),
        "mean_seconds_per_seed": float(np.mean([r["train_seconds"] for r in records])),
        "max_cpu_seconds_per_seed": float(max(r.get("cpu_seconds_this_process", 0.0) for r in records)),
        "steps_per_second": float(np.mean([r["steps_per_second"] for r in records])),
    }


def run(cfg: DQNConfig, run_dir: RunDir, resume: bool = False) -> dict[str, Any]:
    from dlrl.rl.envs import env_info

    info = env_info(cfg.env)
    solve_at = cfg.solve_return if cfg.solve_return is not None else info.reward_threshold
    started = time.perf_counter()
    records = run_jobs(cfg, run_dir, resume)
    wall = time.perf_counter() - started
    by_exploration = {
        e: _aggregate([r for r in records.values() if r["exploration"] == e]) for e in cfg.explorations
    }
    write_figures(cfg, run_dir, records, solve_at)
    rows = []
    for name, record in records.items():
        for row in run_dir.sub(name).read_metrics("evals.csv"):
            rows.append({"run": name, "exploration": record["exploration"], "seed": record["seed"], **row})
    run_dir.write_metrics(rows)
    primary = by_exploration[cfg.explorations[0]]
    threshold = solve_at if solve_at is not None else float("inf")
    return {
        "env": cfg.env,
        "exploration": cfg.explorations[0],
        "solve_return": solve_at,
        **primary,
        "seeds_solved": sum(
            r["final_mean"] >= threshold for r in records.values() if r["exploration"] == cfg.explorations[0]
        ),
        "wall_seconds": round(wall, 1),
        "by_exploration": by_exploration,
        "runs": {name: {k: v for k, v in r.items() if k != "final_returns"} for name, r in records.items()},
    }


def write_figures(
    cfg: DQNConfig, run_dir: RunDir, records: dict[str, dict[str, Any]], solve_at: float | None
) -> None:
    from dlrl.rl.exploration import schedule_curve
    from dlrl.viz.rl import (
        plot_band,
        plot_eval_curves,
        plot_return_histogram,
        plot_schedules,
        plot_training_stats,
        smooth_on_grid,
    )

    grid = np.linspace(0, cfg.total_steps, 200)
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


def load_run_config(run_dir: RunDir) -> DQNConfig:
    if not run_dir.config_path.is_file():
        raise DlrlError(f"{run_dir.path}: not a dlrl run directory (no config.yaml)")
    data = read_config_file(run_dir.config_path)
    if data.get("experiment") != "dqn":
        raise DlrlError(f"{run_dir.path}: is a '{data.get('experiment')}' run, not a DQN run")
    return build_config(DQNConfig, data, str(run_dir.config_path))


def _run_names(cfg: DQNConfig, run_dir: RunDir, only: str | None = None) -> list[str]:
    names = [run_name(e, s) for e in cfg.explorations for s in cfg.run_seeds()]
    if only is not None:
        if only not in names:
            raise DlrlError(f"--run {only}: no such agent in {run_dir.path} (choose from {', '.join(names)})")
        names = [only]
    present = [n for n in names if (run_dir.sub(n).checkpoints / "best.pt").is_file()]
    if not present:
        raise CheckpointError(
            f"{run_dir.path}: no best.pt checkpoint in any agent directory ({', '.join(names)})"
        )
    return present


def evaluate(run_dir: RunDir, episodes: int | None = None, seed_offset: int = 30_000_000) -> dict[str, Any]:
    """Greedy episodes with each agent's best checkpoint on fresh seeds; mean ± std per agent."""
    from dlrl.rl.evaluate import greedy_returns
    from dlrl.rl.loop import load_q_network

    cfg = load_run_config(run_dir)
    episodes = episodes or cfg.final_episodes
    table = {}
    for name in _run_names(cfg, run_dir):
        q_net = load_q_network(run_dir.sub(name).checkpoints / "best.pt", cfg)
        seed = int(name.rpartition("seed")[2])
        returns = greedy_returns(q_net, cfg.env, episodes, seed + seed_offset)
        table[name] = {
            "mean": float(returns.mean()),
            "std": float(returns.std()),
            "min": float(returns.min()),
            "max": float(returns.max()),
        }
    means = np.array([t["mean"] for t in table.values()])
    return {
        "env": cfg.env,
        "episodes": episodes,
        "mean_over_agents": float(means.mean()),
        "min_agent_mean": float(means.min()),
        "agents": table,
    }


def play(
    run_dir: RunDir,
    agent: str | None = None,
    episodes: int = 1,
    every: int = 2,
    out: str | None = None,
    fps: int = 50,
) -> list[Path]:
    """Greedy episodes of one agent's best checkpoint as a GIF (and MP4 if imageio-ffmpeg is installed)."""
    import imageio.v2 as imageio

    from dlrl.rl.evaluate import greedy_frames
    from dlrl.rl.loop import load_q_network
    from dlrl.utils import atomic_path

    cfg = load_run_config(run_dir)
    names = _run_names(cfg, run_dir, agent)
    if agent is None and len(names) > 1:  # the agent with the best final evaluation
        scores = {}
        for n in names:
            result = run_dir.sub(n).path / "result.json"
            scores[n] = json.loads(result.read_text())["final_mean"] if result.is_file() else float("-inf")
        names = [max(scores, key=scores.__getitem__)]
    name = names[0]
    q_net = load_q_network(run_dir.sub(name).checkpoints / "best.pt", cfg)
    frames, returns = greedy_frames(
        q_net, cfg.env, episodes, int(name.rpartition("seed")[2]) + 40_000_000, every
    )
    target = Path(out) if out else run_dir.path / "videos" / f"{name}.gif"
    if target.suffix.lower() != ".gif":
        raise DlrlError(f"--out {target}: the video path must end in .gif (an .mp4 is written beside it)")
    written: list[Path] = []
    frames_list: list[Any] = list(frames)
    with atomic_path(target) as tmp:
        imageio.mimsave(tmp, frames_list, format="GIF", duration=1000 * every / fps, loop=0)
    written.append(target)
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        log.info("imageio-ffmpeg not installed: GIF only")
    else:
        mp4 = target.with_suffix(".mp4")
        with atomic_path(mp4) as tmp:
            imageio.mimsave(tmp, frames_list, format="FFMPEG", fps=fps / every)
        written.append(mp4)
    log.info("%s: %d greedy episode(s), returns %s", name, episodes, ", ".join(f"{r:g}" for r in returns))
    return written


# --- CLI: dlrl rl train | evaluate | play ---------------------------------------------------------------


def add_parser(subparsers: Any, formatter: type) -> None:
    from dlrl.cli.common import COMMON_EPILOG
    from dlrl.cli.common import add_run_options as _add_run_options
    from dlrl.cli.common import cmd_experiment as _cmd_experiment
    from dlrl.config import describe_fields
    from dlrl.experiments import get_experiment

    entry = get_experiment("dqn")
    rl = subparsers.add_parser(
        "rl",
        help="Part 3: DQN on Gymnasium classic control (train, evaluate, play)",
        description="Part 3: DQN on Gymnasium classic control.",
        formatter_class=formatter,
    )
    commands = rl.add_subparsers(dest="rl_command", metavar="COMMAND", required=True)
    fields = "\n".join(
        line for line in describe_fields(DQNConfig) if not line.lstrip().startswith("experiment=")
    )
    train = commands.add_parser(
        "train",
        help="train DQN agents (several seeds / explorations in parallel)",
        formatter_class=formatter,
        description="Train DQN on a Gymnasium env; every agent in RUN_DIR/<exploration>-seed<N>/.",
        epilog=COMMON_EPILOG.format(fields=fields),
    )
    _add_run_options(train)
    for flag, key, kwargs in entry.options:
        train.add_argument(flag, dest=f"opt:{key}", **kwargs)
    train.set_defaults(handler=_cmd_experiment, entry=entry)

    evaluate_ = commands.add_parser(
        "evaluate",
        help="greedy episodes with each agent's best checkpoint",
        description="Greedy evaluation of every agent's best.pt on fresh seeds.",
    )
    evaluate_.add_argument("run_dir", metavar="RUN_DIR")
    evaluate_.add_argument(
        "--episodes", type=int, default=100, help="greedy episodes per agent (default 100)"
    )
    evaluate_.set_defaults(handler=_cmd_evaluate)

    play_ = commands.add_parser(
        "play",
        help="GIF (and MP4 with imageio-ffmpeg) of greedy episodes",
        description="Render greedy episodes of an agent's best checkpoint to a GIF.",
    )
    play_.add_argument("run_dir", metavar="RUN_DIR")
    play_.add_argument("--run", metavar="NAME", help="agent, e.g. epsilon-seed0 (default: best final mean)")
    play_.add_argument("--episodes", type=int, default=1, help="episodes to record (default 1)")
    play_.add_argument("--every", type=int, default=2, help="keep every N-th frame (default 2)")
    play_.add_argument("--out", metavar="FILE.gif", help="output path (default RUN_DIR/videos/<agent>.gif)")
    play_.set_defaults(handler=_cmd_play)


def _positive(value: int, option: str) -> None:
    if value <= 0:
        raise DlrlError(f"{option}: must be positive, got {value}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    _positive(args.episodes, "--episodes")
    result = evaluate(RunDir(args.run_dir), args.episodes)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_play(args: argparse.Namespace) -> int:
    _positive(args.episodes, "--episodes")
    _positive(args.every, "--every")
    for path in play(RunDir(args.run_dir), args.run, args.episodes, args.every, args.out):
        print(f"wrote {path}")
    return 0


# --- dlrl tune dqn: each "fold" of a trial is one more seed; one "epoch" is eval_every env steps ----------


class DQNSeedTrainer:
    """The tune layer's FoldTrainer for DQN: trains ``eval_every`` steps per call, reports the evaluation."""

    def __init__(self, cfg: DQNConfig, seed: int):
        from dlrl.rl.loop import DQNTrainer

        self.trainer = DQNTrainer(cfg, cfg.explorations[0], seed)

    def train_epoch(self) -> dict[str, float]:
        trainer = self.trainer
        if not trainer.done:
            trainer.train(trainer.step + trainer.cfg.eval_every)
        result = trainer.result
        recent = [e["return"] for e in result.episodes[-10:]]
        last = result.evals[-1]["eval_mean"] if result.evals else float("nan")
        # once stopped early at stop_return, the last evaluation stands for the remaining epochs
        return {
            "val_return": last,
            "val_best_return": result.best_eval,
            "train_return": float(np.mean(recent)) if recent else float("nan"),
        }

    def state(self) -> dict[str, Any]:
        return self.trainer.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self.trainer.load_state(state)


class DQNTuneAdapter:
    """``dlrl tune dqn``: the objective is the greedy evaluation return, averaged over the trial's seeds."""

    name = "dqn"
    metric = "val_return"
    mode = "max"
    metrics = ("val_return", "val_best_return", "train_return")

    @property
    def config_cls(self) -> type:
        return DQNConfig

    def load_data(self, cfg: DQNConfig) -> None:
        validate(cfg)  # nothing to load: checks the env id once per trial

    def num_samples(self, data: Any) -> int:
        return 1000  # the K-fold split is unused: fold k only picks the seed

    def epochs(self, cfg: DQNConfig) -> int:
        return -(-cfg.total_steps // cfg.eval_every)

    def fold_trainer(
        self, cfg: DQNConfig, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> DQNSeedTrainer:
        return DQNSeedTrainer(cfg, cfg.seed * 1_000 + fold)
