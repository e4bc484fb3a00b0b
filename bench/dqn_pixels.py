"""CartPole-v1 from pixels: the shipped pixel recipe on every seed, one torch thread per process.

Per seed: the final greedy mean of the best checkpoint over final_episodes (100) fresh episodes, env steps
used, steps to solve (first evaluation whose confirmed mean is >= 475), wall and CPU seconds, env steps per
second, the replay memory's bytes (allocated, and as stored in last.pt), last.pt's size and write time.
Beside it, the baseline of the replay memory: what the same transitions take stored the usual way
(float32 obs and next_obs per transition, no frame shared).

    .venv/bin/python bench/dqn_pixels.py [--seeds 0,1,2,3,4] [--workers 2] [--out DIR] [key=value ...]

Prints one JSON object. Wall times depend on how loaded the machine is: CPU seconds and the load average
are printed beside them, and the CPU model.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from dlrl.config import apply_overrides, build_config
from dlrl.config.dqn import DQNConfig
from dlrl.experiments import dqn as experiment
from dlrl.rl.agent import env_maker
from dlrl.rl.buffer import FrameReplayBuffer
from dlrl.rl.envs import env_info
from dlrl.rundir import RunDir


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: cores)")
    parser.add_argument("--out", help="keep the run directory here (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    seeds = [int(s) for s in args.seeds.split(",")]
    base = {"experiment": "dqn", "env": "CartPole-v1", "obs_type": "pixels", "seeds": seeds}
    data = apply_overrides({**base, "workers": args.workers}, args.overrides)
    cfg = build_config(DQNConfig, {k: v for k, v in data.items() if v is not None}, "bench options")
    info = env_info(env_maker(cfg))
    allocated = FrameReplayBuffer.bytes_needed(cfg.buffer_size, info.obs_shape)
    report: dict = {
        "env": cfg.env,
        "obs_shape": list(info.obs_shape),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "replay": {
            "capacity": cfg.buffer_size,
            "allocated_bytes": allocated,
            # the usual layout: obs and next_obs as float32 stacks per transition (+ action, reward, done)
            "float32_obs_and_next_obs_bytes": cfg.buffer_size * (2 * 4 * math.prod(info.obs_shape) + 16),
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = RunDir(args.out or Path(tmp) / "run")
        run_dir.path.mkdir(parents=True, exist_ok=True)
        run_dir.write_config(cfg)  # so that dlrl rl evaluate / play work on it
        started = time.perf_counter()
        records = experiment.run_jobs(cfg, run_dir, resume=False)
        wall = time.perf_counter() - started
    per_seed = {
        str(r["seed"]): {
            "final_mean": round(r["final_mean"], 2),
            "final_std": round(r["final_std"], 2),
            "steps": r["steps"],
            "steps_to_solve": r["solved_step"],
            "best_eval": r["best_eval"],
            "wall_seconds": r["train_seconds"],
            "cpu_seconds": r["cpu_seconds_this_process"],
            "env_steps_per_second": r["steps_per_second"],
            "replay_bytes_allocated": allocated,
            "replay_bytes_in_checkpoint": r.get("checkpoint_replay_bytes"),
            "checkpoint_bytes": r.get("checkpoint_bytes"),
            "checkpoint_write_seconds": r.get("checkpoint_write_seconds"),
        }
        for r in records.values()
    }
    threshold = 450.0  # the pixel task's bar (the state-vector task's is 475)
    finals = [s["final_mean"] for s in per_seed.values()]
    report["solve"] = {
        "threshold": threshold,
        "seeds": len(seeds),
        "seeds_final_mean_at_threshold": sum(f >= threshold for f in finals),
        "seeds_within_30_min_cpu": sum(
            s["final_mean"] >= threshold and s["cpu_seconds"] <= 1800 for s in per_seed.values()
        ),
        "mean_final_mean": round(float(np.mean(finals)), 2),
        "total_wall_seconds": round(wall, 1),
        "per_seed": per_seed,
    }
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
