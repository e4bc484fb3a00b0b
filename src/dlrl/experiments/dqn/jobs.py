"""Training the agents of a DQN run: one job per (exploration, seed), in worker processes or in-process.

RUN_DIR/<exploration>-seed<N>/ holds each agent's checkpoints (last.pt, best.pt by greedy evaluation),
episodes.csv, evals.csv, updates.csv and result.json.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from dlrl.config.dqn import DQNConfig
from dlrl.progress import format_seconds
from dlrl.rl.agent import FINAL_SEED_OFFSET, env_maker, load_q_network
from dlrl.rl.buffer import check_replay_fits
from dlrl.rl.envs import env_info
from dlrl.rl.evaluate import greedy_returns
from dlrl.rl.loop import train_dqn
from dlrl.rundir import RunDir
from dlrl.tuning.cluster import attached_cluster
from dlrl.utils import configure_torch, cpu_seconds, usable_cores

log = logging.getLogger(__name__)

PROGRESS_EVERY = 30.0
"""Seconds between an agent's progress lines (a 30-minute pixel agent is not silent; a CartPole agent that
evaluates every 100 steps does not print hundreds of lines)."""


def run_name(exploration: str, seed: int) -> str:
    return f"{exploration}-seed{seed}"


def validate(cfg: DQNConfig) -> None:
    """Env id known, with discrete actions (and rgb_array frames for pixels), and the replay memories of
    the agents training at once fit in memory: checked before the run directory is written."""
    info = env_info(env_maker(cfg))
    agents = _workers(cfg, len(cfg.explorations) * len(cfg.run_seeds()))
    check_replay_fits(cfg.buffer_size, info.obs_shape, cfg.obs_type == "pixels", agents)


def progress_logger(
    name: str,
    total_steps: int,
    time_limit: float | None = None,
    every: float = PROGRESS_EVERY,
    clock: Callable[[], float] = time.perf_counter,
) -> Callable[[dict[str, float]], bool]:
    """An ``on_eval`` callback that logs the agent's step, greedy score and ETA (to total_steps or the time
    limit, whichever comes first) at most every ``every`` seconds (the first evaluation always), from the
    training seconds the evaluation row carries."""
    last = -float("inf")

    def on_eval(row: dict[str, float]) -> bool:
        nonlocal last
        now = clock()
        if now - last >= every:
            last = now
            step, seconds = int(row["step"]), row["seconds"]
            eta = seconds / step * (total_steps - step)  # evaluations come after step 0
            if time_limit is not None:
                eta = min(eta, max(0.0, time_limit - seconds))
            log.info(
                "%s: step %s of %s, greedy %.1f, %s so far, at most %s to go",
                name,
                f"{step:,}",
                f"{total_steps:,}",
                row["score"],
                format_seconds(seconds),
                format_seconds(eta),
            )
        return True

    return on_eval


def _log_to_stderr(level: int) -> None:
    """A spawned worker's dlrl messages at the parent's level on stderr (spawn starts without handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    dlrl_log = logging.getLogger("dlrl")
    dlrl_log.handlers[:] = [handler]
    dlrl_log.setLevel(level)


def train_job(
    cfg_data: dict[str, Any], exploration: str, seed: int, path: str, resume: bool
) -> dict[str, Any]:
    """Train and finally evaluate one agent into ``path``; runs in a worker process (or in-process)."""
    cfg = DQNConfig.model_validate(cfg_data)
    configure_torch(cfg.threads or 1)
    sub = RunDir(path)
    sub.checkpoints.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), cpu_seconds(children=False)
    progress = progress_logger(run_name(exploration, seed), cfg.total_steps, cfg.time_limit)
    result = train_dqn(cfg, exploration, seed, sub.checkpoints, resume, progress)
    seconds, cpu = time.perf_counter() - started, cpu_seconds(children=False) - cpu_started
    sub.write_metrics(result.episodes, "episodes.csv")
    sub.write_metrics(result.evals, "evals.csv")
    sub.write_metrics(result.updates, "updates.csv")
    q_net = load_q_network(sub.checkpoints / "best.pt", cfg)
    returns = greedy_returns(q_net, env_maker(cfg), cfg.final_episodes, seed + FINAL_SEED_OFFSET)
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
        "checkpoint_bytes": result.checkpoint.get("bytes"),  # last.pt, with the replay memory
        "checkpoint_replay_bytes": result.checkpoint.get("replay_bytes"),
        "checkpoint_write_seconds": result.checkpoint.get("seconds"),
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
    cluster = attached_cluster()
    if cluster is not None and todo:  # dlrl rl train --address, dlrl run --address: Ray tasks instead
        from dlrl.tuning.tasks import run_on_cluster  # imports ray: only for a cluster

        calls = [(partial(train_job, cfg_data, e, s, resume=resume), path) for e, s, path in todo]
        for record in run_on_cluster(cluster, calls, cfg.threads or 1, run_dir.path / "ray.log", resume):
            records[run_name(record["exploration"], record["seed"])] = _report(record)
        return {run_name(e, s): records[run_name(e, s)] for e, s in jobs}
    workers = _workers(cfg, len(todo))
    log.info("dqn on %s: %d agent(s) to train, %d process(es)", cfg.env, len(todo), workers)
    if workers <= 1:
        for exploration, seed, path in todo:
            records[run_name(exploration, seed)] = _report(
                train_job(cfg_data, exploration, seed, path, resume)
            )
    else:
        # spawn: a clean interpreter per worker (no forked torch thread pools); one torch thread each
        level = logging.getLogger("dlrl").getEffectiveLevel()
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, spawn, initializer=_log_to_stderr, initargs=(level,)) as pool:
            futures = {pool.submit(train_job, cfg_data, e, s, p, resume): run_name(e, s) for e, s, p in todo}
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


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The agents' results over seeds: mean, spread and worst seed of the final greedy return, steps, time."""
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
        # last.pt with the replay memory (exact resume): size and write time of the largest
        "max_checkpoint_bytes": max((r.get("checkpoint_bytes") or 0 for r in records), default=0),
        "max_checkpoint_write_seconds": max(
            (r.get("checkpoint_write_seconds") or 0.0 for r in records), default=0.0
        ),
    }
