"""Part 3: DQN on Gymnasium environments (state vector or pixels), several seeds and exploration strategies
in parallel processes.

RUN_DIR/<exploration>-seed<N>/ holds each agent's checkpoints (last.pt, best.pt by greedy evaluation),
episodes.csv, evals.csv, updates.csv and result.json; RUN_DIR/ holds the figures over seeds, metrics.csv
(every evaluation of every agent) and summary.json.

jobs.py: training the agents (worker processes) and their results over seeds; figures.py; agents.py: greedy
evaluation and videos of a finished run's agents; adapter.py: what `dlrl tune dqn` searches.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dlrl.config.dqn import DQNConfig
from dlrl.experiments.dqn.adapter import DQNSeedTrainer, DQNTuneAdapter
from dlrl.experiments.dqn.agents import evaluate, load_run_config, play
from dlrl.experiments.dqn.jobs import aggregate, run_jobs, run_name, validate
from dlrl.progress import format_seconds
from dlrl.rl.agent import check_resumable
from dlrl.rl.envs import env_info
from dlrl.rundir import RunDir
from dlrl.utils import usable_cores

log = logging.getLogger(__name__)

__all__ = [
    "TARGETS",
    "DQNSeedTrainer",
    "DQNTuneAdapter",
    "evaluate",
    "load_run_config",
    "play",
    "run",
    "run_jobs",
    "run_name",
    "validate",
]

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


# Env steps per second of one agent on one idle core, evaluations included (measured on the AMD EPYC of
# this project's machine): only for the expected time printed before a run starts.
STEPS_PER_SECOND: dict[tuple[str, str], float] = {
    ("CartPole-v1", "state"): 1000.0,
    ("LunarLander-v3", "state"): 200.0,
    ("CartPole-v1", "pixels"): 65.0,  # agent steps (2 env steps each), one update each: 63 measured
}


def _parallel(cfg: DQNConfig, agents: int) -> int:
    return max(1, min(agents, cfg.workers or usable_cores()))


def expected_seconds(cfg: DQNConfig) -> float:
    """Wall seconds a run of ``cfg`` takes at most (every agent to total_steps or its time_limit), by
    STEPS_PER_SECOND."""
    rate = STEPS_PER_SECOND.get((cfg.env, cfg.obs_type), 30.0 if cfg.obs_type == "pixels" else 500.0)
    agents = len(cfg.explorations) * len(cfg.run_seeds())
    rounds = -(-agents // _parallel(cfg, agents))
    per_agent = cfg.total_steps / rate
    if cfg.time_limit is not None:
        per_agent = min(per_agent, cfg.time_limit)
    return rounds * per_agent


def run(cfg: DQNConfig, run_dir: RunDir, resume: bool = False) -> dict[str, Any]:
    """Train every agent (a resumed run keeps those it finished), write figures and metrics.csv."""
    agents = len(cfg.explorations) * len(cfg.run_seeds())
    log.info(
        "dqn %s (%s): %d agent(s), %d at a time, up to %s steps each: expected at most %s",
        cfg.env,
        cfg.obs_type,
        agents,
        _parallel(cfg, agents),
        f"{cfg.total_steps:,}",
        format_seconds(expected_seconds(cfg)),
    )
    info = env_info(cfg.env)
    solve_at = cfg.solve_return if cfg.solve_return is not None else info.reward_threshold
    if resume:  # every unfinished agent's last.pt fits this config, before any agent trains again
        for e in cfg.explorations:
            for s in cfg.run_seeds():
                sub = run_dir.sub(run_name(e, s))
                if (sub.checkpoints / "last.pt").is_file() and not (sub.path / "result.json").is_file():
                    check_resumable(sub.checkpoints / "last.pt", cfg)
    started = time.perf_counter()
    records = run_jobs(cfg, run_dir, resume)
    wall = time.perf_counter() - started
    by_exploration = {
        e: aggregate([r for r in records.values() if r["exploration"] == e]) for e in cfg.explorations
    }
    if cfg.figures:
        # imported here: matplotlib is half a second of every `dlrl rl train` process start otherwise
        from dlrl.experiments.dqn.figures import write_figures

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
        "obs_type": cfg.obs_type,
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
