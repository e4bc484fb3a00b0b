"""The DQN training loop: act, store, learn, sync the target, evaluate greedily, checkpoint.

Plain for-loop over environment steps, in the order of cleanrl's dqn.py. It writes only checkpoints
(``last.pt`` at every evaluation, ``best.pt`` when the evaluation mean improves); histories come back in the
result (and live in the checkpoint, so a resumed run keeps them).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlrl.config.dqn import DQNConfig
from dlrl.errors import CheckpointError
from dlrl.models.qnet import QNetwork
from dlrl.rl.buffer import ReplayBuffer
from dlrl.rl.dqn import dqn_update, polyak_update
from dlrl.rl.envs import EnvInfo, env_info, make_env
from dlrl.rl.evaluate import GreedyEvaluator
from dlrl.rl.exploration import boltzmann_action, schedule_value
from dlrl.train.checkpoint import load_checkpoint, load_model_state, require_keys, save_checkpoint

log = logging.getLogger(__name__)

# Seeds of evaluation episodes are offset from the run seed so they never replay a training episode.
EVAL_SEED_OFFSET = 10_000_000
FINAL_SEED_OFFSET = 20_000_000


def build_q_network(cfg: DQNConfig, info: EnvInfo) -> QNetwork:
    return QNetwork(info.obs_shape, info.num_actions, cfg.model.hidden_sizes, cfg.model.activation)


def exploration_value(cfg: DQNConfig, exploration: str, step: int) -> float:
    """Epsilon (epsilon-greedy) or temperature (softmax) at ``step``."""
    e = cfg.exploration
    if exploration == "epsilon":
        return schedule_value(e.epsilon_decay, step, e.epsilon_start, e.epsilon_end, e.epsilon_steps)
    return schedule_value(
        e.temperature_decay, step, e.temperature_start, e.temperature_end, e.temperature_steps
    )


@dataclass
class TrainResult:
    steps: int
    episodes: list[dict[str, float]] = field(default_factory=list)  # step, episode, return, length
    evals: list[dict[str, float]] = field(default_factory=list)  # step, eval_mean, eval_std, ...
    updates: list[dict[str, float]] = field(default_factory=list)  # step, loss, q_mean, exploration
    best_eval: float = float("-inf")
    best_step: int = 0
    solved_step: int | None = None
    stopped_early: bool = False
    train_seconds: float = 0.0
    resumed_from: int = 0


def _checkpoint_state(
    cfg: DQNConfig,
    exploration: str,
    seed: int,
    info: EnvInfo,
    q_net: QNetwork,
    target_net: QNetwork,
    optimizer: torch.optim.Optimizer,
    step: int,
    result: TrainResult,
    rng: np.random.Generator,
    torch_gen: torch.Generator,
    episode: int,
) -> dict[str, Any]:
    return {
        "model": q_net.state_dict(),
        "target": target_net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "episode": episode,
        "env": info.env_id,
        "exploration": exploration,
        "seed": seed,
        "config": cfg.model_dump(mode="json"),
        "history": {"episodes": result.episodes, "evals": result.evals, "updates": result.updates},
        "best_eval": float(result.best_eval),
        "best_step": result.best_step,
        "solved_step": result.solved_step,
        "train_seconds": float(result.train_seconds),
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch_gen.get_state(),
    }


def check_checkpoint(state: dict[str, Any], path: Path, env_id: str, q_net: QNetwork) -> None:
    """One-line CheckpointError if ``state`` is from another environment or network size."""
    require_keys(state, ["model", "env"], path)
    if state["env"] != env_id:
        raise CheckpointError(f"{path}: checkpoint is for env '{state['env']}', not '{env_id}'")
    load_model_state(copy.deepcopy(q_net), state["model"], path)  # raises on a different network size


def train_dqn(
    cfg: DQNConfig,
    exploration: str,
    seed: int,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_eval: Callable[[dict[str, float]], bool] | None = None,
) -> TrainResult:
    """Train one DQN agent; ``on_eval(row)`` is called after every evaluation (False stops training)."""
    info = env_info(cfg.env)
    solve_at = cfg.solve_return if cfg.solve_return is not None else info.reward_threshold
    torch.manual_seed(seed)
    q_net = build_q_network(cfg, info)
    target_net = copy.deepcopy(q_net)
    for p in target_net.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.lr, fused=True)  # fused: 3x faster step on CPU
    rng = np.random.default_rng(seed)
    torch_gen = torch.Generator().manual_seed(seed)
    result = TrainResult(steps=0)
    start_step, episode = 0, 0

    last_path = checkpoint_dir / "last.pt" if checkpoint_dir else None
    if resume and last_path is not None and last_path.is_file():
        state = load_checkpoint(last_path)
        check_checkpoint(state, last_path, cfg.env, q_net)
        require_keys(state, ["target", "optimizer", "step", "history", "numpy_rng", "torch_rng"], last_path)
        q_net.load_state_dict(state["model"])
        target_net.load_state_dict(state["target"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["numpy_rng"]
        torch_gen.set_state(state["torch_rng"])
        start_step, episode = int(state["step"]), int(state["episode"])
        history = state["history"]
        result = TrainResult(
            steps=start_step,
            episodes=list(history["episodes"]),
            evals=list(history["evals"]),
            updates=list(history["updates"]),
            best_eval=float(state["best_eval"]),
            best_step=int(state["best_step"]),
            solved_step=state["solved_step"],
            train_seconds=float(state["train_seconds"]),
            resumed_from=start_step,
        )
        log.info("%s seed %d: resumed at step %d (replay memory refilled)", exploration, seed, start_step)

    env = make_env(cfg.env)
    evaluator = GreedyEvaluator(cfg.env, cfg.eval_episodes)
    replay = ReplayBuffer(cfg.buffer_size, info.obs_shape)
    # After a resume the replay memory is empty: refill it for learning_starts steps before learning again.
    learn_from = start_step + cfg.learning_starts if start_step else cfg.learning_starts
    obs_tensor = torch.zeros((1, *info.obs_shape))  # reused for every action choice
    obs_view = obs_tensor.numpy()[0]
    obs, _ = env.reset(seed=seed + episode)
    episode_return, episode_length = 0.0, 0
    loss_sum = torch.zeros(())
    q_sum = torch.zeros(())
    n_updates = 0
    started = time.perf_counter()
    n_actions = info.num_actions

    def save(path: Path, step: int) -> None:
        result.train_seconds += time.perf_counter() - started_mark[0]
        started_mark[0] = time.perf_counter()
        save_checkpoint(
            path,
            _checkpoint_state(
                cfg,
                exploration,
                seed,
                info,
                q_net,
                target_net,
                optimizer,
                step,
                result,
                rng,
                torch_gen,
                episode,
            ),
        )

    started_mark = [started]
    step = start_step
    try:
        for step in range(start_step + 1, cfg.total_steps + 1):
            value = exploration_value(cfg, exploration, step)
            if exploration == "epsilon" and rng.random() < value:
                action = int(rng.integers(n_actions))
            else:
                obs_view[...] = obs
                with torch.no_grad():
                    q_values = q_net(obs_tensor)[0].numpy()
                action = (
                    int(q_values.argmax())
                    if exploration == "epsilon"
                    else boltzmann_action(q_values, value, rng)
                )
            next_obs, reward, terminated, truncated, _ = env.step(action)
            replay.add(obs, action, reward, next_obs, terminated)  # truncation still bootstraps
            episode_return += float(reward)
            episode_length += 1
            if terminated or truncated:
                episode += 1
                result.episodes.append(
                    {"step": step, "episode": episode, "return": episode_return, "length": episode_length}
                )
                obs, _ = env.reset(seed=seed + episode)
                episode_return, episode_length = 0.0, 0
            else:
                obs = next_obs

            if step >= learn_from and step % cfg.train_freq == 0:
                for _ in range(cfg.gradient_steps):
                    batch = replay.sample(cfg.batch_size, torch_gen)
                    stats = dqn_update(
                        q_net,
                        target_net,
                        optimizer,
                        batch,
                        cfg.gamma,
                        cfg.double_dqn,
                        cfg.huber,
                        cfg.grad_clip,
                    )
                    loss_sum += stats.loss
                    q_sum += stats.q_mean
                    n_updates += 1
            if step % cfg.target_update == 0:
                polyak_update(q_net, target_net, cfg.tau)
            if step % cfg.log_every == 0:
                row = {"step": step, "exploration": value}
                if n_updates:
                    row.update(loss=float(loss_sum) / n_updates, q_mean=float(q_sum) / n_updates)
                result.updates.append(row)
                loss_sum.zero_()
                q_sum.zero_()
                n_updates = 0

            if step % cfg.eval_every == 0 or step == cfg.total_steps:
                returns = evaluator.returns(q_net, seed + EVAL_SEED_OFFSET + step)
                mean = float(returns.mean())
                row = {
                    "step": step,
                    "eval_mean": mean,
                    "eval_std": float(returns.std()),
                    "eval_min": float(returns.min()),
                    "episodes": episode,
                    "seconds": round(result.train_seconds + time.perf_counter() - started_mark[0], 3),
                }
                result.evals.append(row)
                improved = mean > result.best_eval
                if improved:
                    result.best_eval, result.best_step = mean, step
                if result.solved_step is None and solve_at is not None and mean >= solve_at:
                    result.solved_step = step
                stop = cfg.stop_return is not None and mean >= cfg.stop_return
                if checkpoint_dir is not None:
                    if improved:
                        save(checkpoint_dir / "best.pt", step)
                    save(checkpoint_dir / "last.pt", step)
                if on_eval is not None and on_eval(row) is False:
                    stop = True
                if stop:
                    result.stopped_early = step < cfg.total_steps
                    break
    finally:
        env.close()
        evaluator.close()
    result.steps = step
    result.train_seconds += time.perf_counter() - started_mark[0]
    if checkpoint_dir is not None:
        save(checkpoint_dir / "last.pt", step)
    return result


def load_q_network(path: Path, cfg: DQNConfig) -> QNetwork:
    """The Q-network stored at ``path``, checked against ``cfg``'s env and network size."""
    info = env_info(cfg.env)
    q_net = build_q_network(cfg, info)
    state = load_checkpoint(path)
    check_checkpoint(state, path, cfg.env, q_net)
    q_net.load_state_dict(state["model"])
    q_net.eval()
    return q_net
