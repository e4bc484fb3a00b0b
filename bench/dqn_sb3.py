"""DQN on CartPole-v1: dlrl beside Stable-Baselines3 with the RL Zoo's hyperparameters, same seeds, same
evaluation.

dlrl: ``dlrl.dqn`` (the public API) with the shipped recipe for --env, every seed in its own process.
reference: stable_baselines3.DQN (installed: ``pip install -e '.[bench]'``) with the RL Baselines3 Zoo's
  settings for --env (hyperparams/dqn.yml of rl-baselines3-zoo, copied below: rl_zoo3 itself would replace
  this environment's pillow and python-dateutil with older versions), ``n_timesteps`` as the step budget,
  every seed in its own process with one torch thread, as dlrl's.

Both are scored by dlrl's evaluation code (dlrl.rl.evaluate) with dlrl's rule: a greedy evaluation of
eval_episodes episodes (SB3: after every training round, when its policy has changed: every train_freq env
steps; dlrl: every eval_every steps); a mean reaching the solve return is confirmed on confirm_episodes
fresh episodes, and that confirmed mean picks the best policy, marks the solve step and stops training at
stop_return (500 on CartPole). The best policy then plays final_episodes (100) fresh greedy episodes on the
same env seeds for both. Reported per seed: steps to solve, env steps used, final mean, CPU seconds of the
training (its evaluations included, the final 100 episodes not); for SB3 also the last policy's mean (the
model the zoo would save).

    .venv/bin/python bench/dqn_sb3.py [--seeds 0,1,2,3,4,5,6,7,8,9] [--env CartPole-v1] [--workers N]
                                      [--total-steps N] [--only dlrl|sb3] [--set key=value ...]

--set overrides dlrl's DQN config (and with it the shared evaluation: eval_episodes, confirm_episodes,
final_episodes, solve_return, stop_return). Prints one JSON object; without stable-baselines3 installed it
prints {"skipped": reason} and trains nothing.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

import dlrl
from common import OneLineParser, check_env, fail, measured, print_json
from dlrl.errors import DlrlError
from dlrl.experiments import get_experiment
from dlrl.experiments.runner import resolve_config
from dlrl.rl.agent import CONFIRM_SEED_OFFSET, EVAL_SEED_OFFSET, FINAL_SEED_OFFSET
from dlrl.rl.evaluate import GreedyEvaluator, greedy_returns
from dlrl.utils import usable_cores

PROG = "dqn_sb3.py"
ZOO_SOURCE = "rl-baselines3-zoo hyperparams/dqn.yml (commit 22e3ff2, rl_zoo3 2.9), copied here"
# RL Baselines3 Zoo, hyperparams/dqn.yml: n_timesteps is the training budget, the rest DQN's arguments.
ZOO_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "CartPole-v1": {
        "n_timesteps": 50_000,
        "policy": "MlpPolicy",
        "learning_rate": 2.3e-3,
        "batch_size": 64,
        "buffer_size": 100_000,
        "learning_starts": 1000,
        "gamma": 0.99,
        "target_update_interval": 10,
        "train_freq": 256,
        "gradient_steps": 128,
        "exploration_fraction": 0.16,
        "exploration_final_eps": 0.04,
        "policy_kwargs": {"net_arch": [256, 256]},
    },
    "MountainCar-v0": {
        "n_timesteps": 120_000,
        "policy": "MlpPolicy",
        "learning_rate": 4e-3,
        "batch_size": 128,
        "buffer_size": 10_000,
        "learning_starts": 1000,
        "gamma": 0.98,
        "target_update_interval": 600,
        "train_freq": 16,
        "gradient_steps": 8,
        "exploration_fraction": 0.2,
        "exploration_final_eps": 0.07,
        "policy_kwargs": {"net_arch": [256, 256]},
    },
    "Acrobot-v1": {
        "n_timesteps": 100_000,
        "policy": "MlpPolicy",
        "learning_rate": 6.3e-4,
        "batch_size": 128,
        "buffer_size": 50_000,
        "learning_starts": 0,
        "gamma": 0.99,
        "target_update_interval": 250,
        "train_freq": 4,
        "gradient_steps": -1,
        "exploration_fraction": 0.12,
        "exploration_final_eps": 0.1,
        "policy_kwargs": {"net_arch": [256, 256]},
    },
}


def sb3_missing() -> str | None:
    """Why the reference cannot run here, or None."""
    if importlib.util.find_spec("stable_baselines3") is None:
        return "stable-baselines3 is not installed (pip install -e '.[bench]')"
    return None


class Evaluation:
    """dlrl's periodic evaluation rule (rl/loop.py ``DQNTrainer._evaluate``) applied to any Q-network."""

    def __init__(self, env_id: str, seed: int, rules: dict[str, Any]):
        self.env_id, self.seed, self.rules = env_id, seed, rules
        self.evaluator = GreedyEvaluator(env_id, rules["eval_episodes"])
        confirm = rules["confirm_episodes"]
        self.confirmer = GreedyEvaluator(env_id, confirm) if confirm else None
        self.best_score, self.best_step, self.best_state = -math.inf, None, None
        self.solved_step: int | None = None
        self.last_step = 0
        self.evaluations = 0

    def __call__(self, q_net: torch.nn.Module, step: int) -> bool:
        """Evaluate ``q_net`` at env step ``step``; True when training should stop."""
        returns = self.evaluator.returns(q_net, self.seed + EVAL_SEED_OFFSET + step)
        score = mean = float(returns.mean())
        solve_at, confirm = self.rules["solve_return"], self.rules["confirm_episodes"]
        if self.confirmer is not None and mean >= solve_at:
            seed = self.seed + CONFIRM_SEED_OFFSET + step * confirm
            score = float(self.confirmer.returns(q_net, seed).mean())
        self.evaluations += 1
        self.last_step = step
        if score > self.best_score:
            self.best_score, self.best_step = score, step
            self.best_state = copy.deepcopy(q_net.state_dict())
        if self.solved_step is None and score >= solve_at:
            self.solved_step = step
        stop_return = self.rules["stop_return"]
        return stop_return is not None and score >= stop_return

    def close(self) -> None:
        self.evaluator.close()
        if self.confirmer is not None:
            self.confirmer.close()


def train_sb3(env_id: str, seed: int, total_steps: int, rules: dict[str, Any]) -> dict[str, Any]:
    """One SB3 DQN agent with the zoo's settings, evaluated by dlrl's rule (in a worker process, or here
    when one worker is asked for)."""
    from stable_baselines3 import DQN  # only in the worker (and only when installed)
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger

    torch.set_num_threads(1)
    hyper = {k: v for k, v in ZOO_HYPERPARAMETERS[env_id].items() if k != "n_timesteps"}
    evaluation = Evaluation(env_id, seed, rules)

    class EvaluateEachRound(BaseCallback):
        """Evaluates when a rollout starts, i.e. right after the previous round's gradient steps."""

        stop = False

        def _on_rollout_start(self) -> None:
            if self.num_timesteps > evaluation.last_step:
                self.stop = evaluation(self.model.q_net, self.num_timesteps)

        def _on_step(self) -> bool:
            return not self.stop

    wall, cpu = time.perf_counter(), time.process_time()
    model = DQN(env=env_id, seed=seed, device="cpu", verbose=0, **hyper)
    # SB3's default logger at verbose=0 writes nothing, yet leaves an empty /tmp/SB3-<time> folder behind
    model.set_logger(Logger(folder=None, output_formats=[]))
    callback = EvaluateEachRound()
    model.learn(total_timesteps=total_steps, callback=callback)
    if not callback.stop and model.num_timesteps > evaluation.last_step:
        evaluation(model.q_net, model.num_timesteps)  # the last round's policy
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    evaluation.close()
    last = greedy_returns(model.q_net, env_id, rules["final_episodes"], seed + FINAL_SEED_OFFSET)
    model.q_net.load_state_dict(evaluation.best_state)
    final = greedy_returns(model.q_net, env_id, rules["final_episodes"], seed + FINAL_SEED_OFFSET)
    return {
        "seed": seed,
        "steps_to_solve": evaluation.solved_step,
        "steps": int(model.num_timesteps),
        "final_mean": round(float(final.mean()), 2),
        "final_std": round(float(final.std()), 2),
        "last_policy_mean": round(float(last.mean()), 2),
        "best_eval": round(evaluation.best_score, 2),
        "best_step": evaluation.best_step,
        "evaluations": evaluation.evaluations,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
    }


def run_sb3(env_id: str, seeds: list[int], total_steps: int, rules: dict, workers: int) -> dict[str, Any]:
    import stable_baselines3

    if min(workers, len(seeds)) == 1:  # one at a time: here, as dlrl's side does, with no worker to start
        per_seed = [train_sb3(env_id, seed, total_steps, rules) for seed in seeds]
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a process that already runs torch threads
        with ProcessPoolExecutor(max_workers=min(workers, len(seeds)), mp_context=context) as pool:
            futures = [pool.submit(train_sb3, env_id, seed, total_steps, rules) for seed in seeds]
            per_seed = [f.result() for f in futures]
    return {
        "name": f"Stable-Baselines3 {stable_baselines3.__version__} DQN, RL Zoo hyperparameters",
        "source": f"stable-baselines3 {stable_baselines3.__version__} (installed); settings: {ZOO_SOURCE}",
        "hyperparameters": ZOO_HYPERPARAMETERS[env_id],
        "total_steps": total_steps,
        "evaluated": "after every training round (every train_freq env steps)",
        "per_seed": per_seed,
        **aggregate(per_seed, rules["solve_return"]),
    }


def run_dlrl(cfg: Any, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dlrl-bench-dqn-") as tmp:
        result = dlrl.dqn(cfg, out=f"{tmp}/run", workers=workers)
    per_seed = [
        {
            "seed": r["seed"],
            "steps_to_solve": r["solved_step"],
            "steps": r["steps"],
            "final_mean": round(r["final_mean"], 2),
            "final_std": round(r["final_std"], 2),
            "best_eval": round(r["best_eval"], 2),
            "best_step": r["best_step"],
            "wall_seconds": r["train_seconds"],
            "cpu_seconds": r["cpu_seconds_this_process"],
        }
        for r in result["runs"].values()
    ]
    return {
        "name": "dlrl DQN",
        "source": "dlrl.dqn (the public API), shipped recipe, measured in this run",
        "total_steps": cfg.total_steps,
        "evaluated": f"every {cfg.eval_every} env steps",
        "per_seed": sorted(per_seed, key=lambda r: r["seed"]),
        **aggregate(per_seed, rules_of(cfg)["solve_return"]),
    }


def aggregate(per_seed: list[dict[str, Any]], solve_at: float) -> dict[str, Any]:
    solved = [r["steps_to_solve"] for r in per_seed if r["steps_to_solve"] is not None]
    finals = [r["final_mean"] for r in per_seed]
    return {
        "seeds_solved": sum(f >= solve_at for f in finals),
        "seeds": len(per_seed),
        "mean_final_mean": round(float(np.mean(finals)), 2),
        "min_final_mean": min(finals),
        "median_steps_to_solve": float(np.median(solved)) if solved else None,
        "total_cpu_seconds": round(sum(r["cpu_seconds"] for r in per_seed), 2),
        "mean_cpu_seconds_per_seed": round(float(np.mean([r["cpu_seconds"] for r in per_seed])), 2),
    }


def rules_of(cfg: Any) -> dict[str, Any]:
    """The evaluation both sides share, from dlrl's config for the env."""
    from dlrl.rl.envs import env_info

    solve = cfg.solve_return if cfg.solve_return is not None else env_info(cfg.env).reward_threshold
    return {
        "eval_episodes": cfg.eval_episodes,
        "confirm_episodes": cfg.confirm_episodes,
        "final_episodes": cfg.final_episodes,
        "solve_return": solve,
        "stop_return": cfg.stop_return,
    }


def parse_args():
    parser = OneLineParser(prog=PROG, description=__doc__)
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium env with RL Zoo settings here")
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9", help="comma-separated seeds")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: cores)")
    parser.add_argument("--total-steps", type=int, default=None, help="SB3's budget (default: the zoo's)")
    parser.add_argument("--only", choices=["dlrl", "sb3"], help="run one side only")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a dlrl DQN config override"
    )
    args = parser.parse_args()
    check_env(PROG, args.env)
    if args.env not in ZOO_HYPERPARAMETERS:
        known = ", ".join(ZOO_HYPERPARAMETERS)
        fail(PROG, f"--env {args.env!r}: no RL Zoo settings copied here (choose from {known})")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        fail(PROG, f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2")
    if not args.seeds or len(set(args.seeds)) != len(args.seeds):
        fail(PROG, "--seeds: give distinct integers, e.g. 0,1,2")
    return args


def run(args) -> dict[str, Any]:
    workers = args.workers or usable_cores()
    try:
        overrides = [f"env={args.env}", f"seeds={args.seeds}", *args.set]
        cfg = resolve_config(get_experiment("dqn"), overrides=overrides)
    except DlrlError as err:
        fail(PROG, str(err))
    rules = rules_of(cfg)
    total_steps = args.total_steps or ZOO_HYPERPARAMETERS[args.env]["n_timesteps"]
    result: dict[str, Any] = {
        "env": args.env,
        "seeds": args.seeds,
        "workers": workers,
        "evaluation": {**rules, "note": "dlrl's rule and code for both (see the docstring)"},
    }
    if args.only != "sb3":
        result["dlrl"] = run_dlrl(cfg, workers)
    if args.only != "dlrl":
        result["sb3"] = run_sb3(args.env, args.seeds, total_steps, rules, workers)
    if "dlrl" in result and "sb3" in result:
        result["cpu_ratio_sb3_over_dlrl"] = round(
            result["sb3"]["total_cpu_seconds"] / max(result["dlrl"]["total_cpu_seconds"], 1e-9), 2
        )
    return result


def main() -> None:
    args = parse_args()
    missing = sb3_missing()
    if missing and args.only != "dlrl":
        print_json(measured(lambda: {"env": args.env, "skipped": missing}, "dqn_sb3"))
        return
    print_json(measured(lambda: run(args), "dqn_sb3"))


if __name__ == "__main__":
    main()
