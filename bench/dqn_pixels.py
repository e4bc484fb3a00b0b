"""CartPole-v1 from pixels: the shipped pixel recipe on every seed, one torch thread per process, each agent
kept within --minutes of training (time_limit; the target's budget: 30 minutes on one core).

Per seed: the final greedy mean of the best checkpoint over final_episodes (100) fresh episodes, agent steps
used (each plays its action pixels.action_repeat env steps), steps to solve (first evaluation whose
confirmed mean is >= 475), wall and CPU seconds, agent steps per second, the replay memory's bytes
(allocated, and as stored in last.pt), last.pt's size and write time, and the learning curve (step,
training seconds, greedy evaluation). Beside it, the baseline of the replay memory: what the same
transitions take stored the usual way (float32 obs and next_obs, no frame shared).

    .venv/bin/python bench/dqn_pixels.py [--seeds 0,1,2,3,4] [--minutes 30] [--workers 2] [--out DIR]
                                         [key=value ...]

Prints one JSON object. Wall times depend on how loaded the machine is: CPU seconds and the load average
are printed beside them, and the machine (CPU model and ISA flags).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from common import OneLineParser, dqn_config, fail, measured, print_json
from dlrl.config.dqn import DQNConfig
from dlrl.experiments import dqn as experiment
from dlrl.rl.agent import env_maker
from dlrl.rl.buffer import FrameReplayBuffer
from dlrl.rl.envs import env_info
from dlrl.rundir import RunDir

THRESHOLD = 450.0  # the pixel task's bar (the state-vector task's is 475)


def curve(evals_csv: Path) -> list[list[float]]:
    """[step, training seconds, greedy score] of every evaluation of one agent."""
    with evals_csv.open() as f:
        return [
            [int(r["step"]), round(float(r["seconds"])), round(float(r["score"]), 1)]
            for r in csv.DictReader(f)
        ]


def train_seeds(cfg: DQNConfig, out: str | None) -> dict[str, Any]:
    info = env_info(env_maker(cfg))
    allocated = FrameReplayBuffer.bytes_needed(cfg.buffer_size, info.obs_shape)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = RunDir(out or Path(tmp) / "run")
        run_dir.path.mkdir(parents=True, exist_ok=True)
        run_dir.write_config(cfg)  # so that dlrl rl evaluate / play work on it
        records = experiment.run_jobs(cfg, run_dir, resume=False)
        curves = {name: curve(run_dir.sub(name).path / "evals.csv") for name in records}
    per_seed = {
        str(r["seed"]): {
            "final_mean": round(r["final_mean"], 2),
            "final_std": round(r["final_std"], 2),
            "steps": r["steps"],
            "steps_to_solve": r["solved_step"],
            "best_eval": r["best_eval"],
            # training seconds when best.pt (what the final episodes play) was taken: within the budget?
            "best_eval_seconds": next((sec for step, sec, _ in curves[name] if step == r["best_step"]), None),
            "wall_seconds": r["train_seconds"],  # training, without the evaluations
            "job_wall_seconds": r["seconds_this_process"],  # with the evaluations and the final episodes
            "cpu_seconds": r["cpu_seconds_this_process"],
            "agent_steps_per_second": r["steps_per_second"],
            "replay_bytes_in_checkpoint": r.get("checkpoint_replay_bytes"),
            "checkpoint_bytes": r.get("checkpoint_bytes"),
            "checkpoint_write_seconds": r.get("checkpoint_write_seconds"),
            "curve_step_seconds_greedy": curves[name],
        }
        for name, r in records.items()
    }
    finals = [s["final_mean"] for s in per_seed.values()]
    budget = cfg.time_limit
    return {
        "env": cfg.env,
        "obs_shape": list(info.obs_shape),
        "action_repeat": cfg.pixels.action_repeat,  # env steps per agent step
        "minutes_per_seed": budget / 60 if budget else None,
        "replay": {
            "capacity": cfg.buffer_size,
            "allocated_bytes": allocated,
            # the usual layout: obs and next_obs as float32 stacks per transition (+ action, reward, done)
            "float32_obs_and_next_obs_bytes": cfg.buffer_size * (2 * 4 * math.prod(info.obs_shape) + 16),
        },
        "solve": {
            "threshold": THRESHOLD,
            "seeds": len(per_seed),
            "seeds_final_mean_at_threshold": sum(f >= THRESHOLD for f in finals),
            "mean_final_mean": round(float(np.mean(finals)), 2),
        },
        "per_seed": per_seed,
    }


def main() -> None:
    parser = OneLineParser(prog="dqn_pixels.py", description=__doc__)
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--minutes", type=float, default=30.0, help="training time per seed (default 30)")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: cores)")
    parser.add_argument("--out", help="keep the run directory here (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # each agent's progress on stderr
    if not args.minutes > 0:
        fail(parser.prog, f"--minutes {args.minutes}: give a positive number of minutes")
    base = {
        "env": "CartPole-v1",
        "obs_type": "pixels",
        "workers": args.workers,
        "time_limit": args.minutes * 60,
    }
    cfg = dqn_config(parser.prog, args.seeds, base, args.overrides)
    print_json(measured(lambda: train_seeds(cfg, args.out), "dqn_pixels"))


if __name__ == "__main__":
    main()
