"""DQN benchmark: throughput of the full training loop beside a naive cleanrl-style loop, then solve runs.

1. Throughput: --throughput-steps env steps of dlrl's loop (preallocated replay, numpy-view writes,
   fused Adam, one reused action tensor) and of a naive loop with the same hyperparameters (deque of
   tuples, random.sample, a new tensor per step and per batch, for-loop Adam), in this process, one thread.
2. Solve runs: the shipped config for --env on every seed (parallel processes, one thread each):
   steps to solve (first periodic evaluation whose confirmed mean, over confirm_episodes, is >= the
   threshold), env steps used, final greedy mean ± std of the best checkpoint over final_episodes fresh
   episodes, wall and CPU seconds.

    .venv/bin/python bench/dqn.py [--seeds 0,1,2,3,4,5,6,7,8,9] [--workers 2] [--env CartPole-v1]
                                  [--throughput-steps 5000] [--skip-throughput] [key=value ...]

Prints one JSON object. Wall times depend on how loaded the machine is: CPU seconds are printed beside them.
"""

from __future__ import annotations

import copy
import json
import os
import random
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common import OneLineParser, check_env, dqn_config
from dlrl.config.dqn import DQNConfig
from dlrl.experiments import dqn as experiment
from dlrl.rl.agent import build_q_network, exploration_value
from dlrl.rl.envs import env_info, make_env
from dlrl.rl.loop import train_dqn
from dlrl.rundir import RunDir


def naive_loop(cfg: DQNConfig, steps: int, seed: int) -> None:
    """The usual tutorial loop: what dlrl's hot path is measured against (same updates, same sizes)."""
    info = env_info(cfg.env)
    q_net = build_q_network(cfg, info)
    target_net = copy.deepcopy(q_net)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    replay: deque = deque(maxlen=cfg.buffer_size)
    rnd = random.Random(seed)
    env = make_env(cfg.env)
    obs, _ = env.reset(seed=seed)
    for step in range(1, steps + 1):
        if rnd.random() < exploration_value(cfg, "epsilon", step):
            action = rnd.randrange(info.num_actions)
        else:
            with torch.no_grad():
                action = int(q_net(torch.tensor(obs, dtype=torch.float32).unsqueeze(0)).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        replay.append((obs, action, reward, next_obs, terminated))
        obs = env.reset()[0] if terminated or truncated else next_obs
        if step >= cfg.learning_starts and step % cfg.train_freq == 0 and len(replay) >= cfg.batch_size:
            for _ in range(cfg.gradient_steps):
                batch = rnd.sample(replay, cfg.batch_size)
                o, a, r, n, d = (
                    torch.tensor(np.array(x), dtype=torch.float32) for x in zip(*batch, strict=True)
                )
                with torch.no_grad():
                    next_a = q_net(n).argmax(1, keepdim=True)
                    target = r + cfg.gamma * (1 - d) * target_net(n).gather(1, next_a).squeeze(1)
                q = q_net(o).gather(1, a.long().unsqueeze(1)).squeeze(1)
                loss = F.smooth_l1_loss(q, target)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(q_net.parameters(), cfg.grad_clip or 1e9)
                optimizer.step()
        if step % cfg.target_update == 0:
            target_net.load_state_dict(q_net.state_dict())
    env.close()


def timed(fn, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = OneLineParser(prog="dqn.py", description=__doc__)
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9", help="comma-separated seeds")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: cores)")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--throughput-steps", type=int, default=5000)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--out", help="keep the run directory here (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    torch.set_num_threads(1)
    check_env(parser.prog, args.env)
    cfg = dqn_config(parser.prog, args.seeds, {"env": args.env, "workers": args.workers}, args.overrides)
    report: dict = {"env": cfg.env, "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg()}

    if not args.skip_throughput:
        n = args.throughput_steps
        # no evaluation inside the measured steps: pure act / store / learn / sync
        tp_cfg = cfg.model_copy(
            update={
                "total_steps": n,
                "eval_every": 10 * n,
                "stop_return": None,
                "learning_starts": min(cfg.learning_starts, n // 5),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            ours = timed(train_dqn, tp_cfg, "epsilon", 0, Path(tmp))
        naive = timed(naive_loop, tp_cfg, n, 0)
        # acting and storing only (no gradient steps): the per-step hot path on its own
        act_cfg = tp_cfg.model_copy(update={"learning_starts": n + 1})
        with tempfile.TemporaryDirectory() as tmp:
            ours_act = timed(train_dqn, act_cfg, "epsilon", 0, Path(tmp))
        naive_act = timed(naive_loop, act_cfg, n, 0)
        report["throughput"] = {
            "steps": n,
            "dlrl_steps_per_second": round(n / ours[0], 1),
            "dlrl_steps_per_cpu_second": round(n / ours[1], 1),
            "naive_steps_per_second": round(n / naive[0], 1),
            "naive_steps_per_cpu_second": round(n / naive[1], 1),
            "speedup_cpu": round(naive[1] / ours[1], 2),
            "acting_only_dlrl_steps_per_cpu_second": round(n / ours_act[1], 1),
            "acting_only_naive_steps_per_cpu_second": round(n / naive_act[1], 1),
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
            "steps_to_solve": r["solved_step"],
            "steps": r["steps"],
            "final_mean": round(r["final_mean"], 2),
            "final_std": round(r["final_std"], 2),
            "best_eval": r["best_eval"],
            "wall_seconds": r["train_seconds"],
            "cpu_seconds": r["cpu_seconds_this_process"],
            "steps_per_second": r["steps_per_second"],
        }
        for r in records.values()
    }
    threshold = cfg.solve_return if cfg.solve_return is not None else env_info(cfg.env).reward_threshold
    finals = [s["final_mean"] for s in per_seed.values()]
    report["solve"] = {
        "threshold": threshold,
        "seeds": len(cfg.run_seeds()),
        "seeds_final_mean_at_threshold": sum(f >= threshold for f in finals),
        "min_final_mean": min(finals),
        "mean_final_mean": round(float(np.mean(finals)), 2),
        "max_steps": max(s["steps"] for s in per_seed.values()),
        "max_wall_seconds_per_seed": max(s["wall_seconds"] for s in per_seed.values()),
        "max_cpu_seconds_per_seed": max(s["cpu_seconds"] for s in per_seed.values()),
        "total_wall_seconds": round(wall, 1),
        "per_seed": per_seed,
    }
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
