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
CONFIRM_SEED_OFFSET = 30_000_000


def build_q_network(cfg: DQNConfig, info: EnvInfo) -> QNetwork:
    m = cfg.model
    return QNetwork(info.obs_shape, info.num_actions, m.hidden_sizes, m.activation, m.dueling)


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


def check_checkpoint(state: dict[str, Any], path: Path, env_id: str, q_net: QNetwork) -> None:
    """One-line CheckpointError if ``state`` is from another environment or network size."""
    require_keys(state, ["model", "env"], path)
    if state["env"] != env_id:
        raise CheckpointError(f"{path}: checkpoint is for env '{state['env']}', not '{env_id}'")
    load_model_state(copy.deepcopy(q_net), state["model"], path)  # raises on a different network size


class UpdateStats:
    """Loss and mean Q of the updates since the last log row, summed on the device."""

    def __init__(self) -> None:
        self.loss_sum, self.q_sum, self.count = torch.zeros(()), torch.zeros(()), 0

    def add(self, loss: torch.Tensor, q_mean: torch.Tensor) -> None:
        self.loss_sum += loss
        self.q_sum += q_mean
        self.count += 1

    def row(self, step: int, exploration: float) -> dict[str, float]:
        """The log row of ``step``, then start over."""
        row = {"step": step, "exploration": exploration}
        if self.count:  # .item() only here: a sync point per log row, not per update
            row.update(loss=float(self.loss_sum) / self.count, q_mean=float(self.q_sum) / self.count)
        self.loss_sum.zero_()
        self.q_sum.zero_()
        self.count = 0
        return row


class DQNTrainer:
    """One DQN agent that can be trained a chunk of steps at a time (the CLI runs it to the end; a search
    reports after every evaluation). ``state()`` / ``load_state()`` hold everything but the replay memory
    and the env's position in its episode: a restored agent starts a new episode and refills its replay
    memory for ``learning_starts`` steps before learning again."""

    def __init__(self, cfg: DQNConfig, exploration: str, seed: int, checkpoint_dir: Path | None = None):
        self.cfg, self.exploration, self.seed, self.checkpoint_dir = cfg, exploration, seed, checkpoint_dir
        self.info = info = env_info(cfg.env)
        self.solve_at = cfg.solve_return if cfg.solve_return is not None else info.reward_threshold
        torch.manual_seed(seed)
        self.q_net = build_q_network(cfg, info)
        self.target_net = copy.deepcopy(self.q_net)
        for p in self.target_net.parameters():
            p.requires_grad_(False)
        # fused: one kernel for all parameters, about 3x faster than the default Adam step on CPU
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.lr, fused=True)
        self.rng = np.random.default_rng(seed)
        self.torch_gen = torch.Generator().manual_seed(seed)
        self.result = TrainResult(steps=0)
        self.step, self.episode = 0, 0
        self.learn_from = cfg.learning_starts
        self.env = make_env(cfg.env)
        self.evaluator = GreedyEvaluator(cfg.env, cfg.eval_episodes)
        # a high periodic evaluation is re-checked on more episodes before it counts (noisy 20-episode means)
        self.confirmer = (
            GreedyEvaluator(cfg.env, cfg.confirm_episodes)
            if cfg.confirm_episodes is not None and self.solve_at is not None
            else None
        )
        self.replay = ReplayBuffer(cfg.buffer_size, info.obs_shape)
        self._obs_tensor = torch.zeros((1, *info.obs_shape))  # reused for every action choice
        self._obs_view = self._obs_tensor.numpy()[0]
        self.done = False
        self._new_episode()

    def _new_episode(self) -> None:
        self.obs, _ = self.env.reset(seed=self.seed + self.episode)
        self.episode_return, self.episode_length = 0.0, 0

    def close(self) -> None:
        self.env.close()
        self.evaluator.close()
        if self.confirmer is not None:
            self.confirmer.close()

    def state(self) -> dict[str, Any]:
        r = self.result
        return {
            "model": self.q_net.state_dict(),
            "target": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "episode": self.episode,
            "env": self.info.env_id,
            "exploration": self.exploration,
            "seed": self.seed,
            "config": self.cfg.model_dump(mode="json"),
            "history": {"episodes": r.episodes, "evals": r.evals, "updates": r.updates},
            "best_eval": float(r.best_eval),
            "best_step": r.best_step,
            "solved_step": r.solved_step,
            "train_seconds": float(r.train_seconds),
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": self.torch_gen.get_state(),
        }

    def load_state(self, state: dict[str, Any], path: Path | str = "state") -> None:
        path = Path(path)
        check_checkpoint(state, path, self.cfg.env, self.q_net)
        keys = ["target", "optimizer", "step", "episode", "history", "numpy_rng", "torch_rng"]
        require_keys(state, [*keys, "best_eval", "best_step", "solved_step", "train_seconds"], path)
        self.q_net.load_state_dict(state["model"])
        self.target_net.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.torch_gen.set_state(state["torch_rng"])
        self.step, self.episode = int(state["step"]), int(state["episode"])
        history = state["history"]
        self.result = TrainResult(
            steps=self.step,
            episodes=list(history["episodes"]),
            evals=list(history["evals"]),
            updates=list(history["updates"]),
            best_eval=float(state["best_eval"]),
            best_step=int(state["best_step"]),
            solved_step=state["solved_step"],
            train_seconds=float(state["train_seconds"]),
            resumed_from=self.step,
        )
        # the replay memory is not in the checkpoint: refill it before learning again
        self.learn_from = self.step + self.cfg.learning_starts
        self._new_episode()

    def reset_networks(self) -> None:
        """Fresh weights for the online and target nets and a fresh Adam state; the replay memory stays."""
        for module in self.q_net.modules():
            if isinstance(module, torch.nn.Linear):
                module.reset_parameters()
        polyak_update(self.q_net, self.target_net, 1.0)
        self.optimizer.state.clear()

    def _save(self, name: str) -> None:
        if self.checkpoint_dir is not None:
            save_checkpoint(self.checkpoint_dir / name, self.state())

    def train(self, until: int, on_eval: Callable[[dict[str, float]], bool] | None = None) -> TrainResult:
        """Train up to env step ``until`` (capped at total_steps), evaluating every eval_every steps.

        Each step in cleanrl's order: act, store the transition, learn, sync the target network."""
        cfg, result, replay, env = self.cfg, self.result, self.replay, self.env
        obs, episode_return, episode_length = self.obs, self.episode_return, self.episode_length
        updates = UpdateStats()
        started = time.perf_counter()
        step = self.step
        until = min(until, cfg.total_steps)
        for step in range(self.step + 1, until + 1):
            value = exploration_value(cfg, self.exploration, step)
            action = self._act(obs, value)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            reward = float(reward)
            replay.add(obs, action, reward, next_obs, terminated)  # truncation still bootstraps
            episode_return += reward
            episode_length += 1
            if terminated or truncated:
                obs = self._end_episode(step, episode_return, episode_length)
                episode_return, episode_length = 0.0, 0
            else:
                obs = next_obs
            if step >= self.learn_from and step % cfg.train_freq == 0:
                self._learn(updates)
            if step % cfg.target_update == 0:
                polyak_update(self.q_net, self.target_net, cfg.tau)
            if cfg.reset_every and step % cfg.reset_every == 0 and step < cfg.total_steps:
                self.reset_networks()
            if step % cfg.log_every == 0:
                result.updates.append(updates.row(step, value))
            if step % cfg.eval_every == 0 or step == cfg.total_steps:
                self.step = step
                result.train_seconds += time.perf_counter() - started
                started = time.perf_counter()
                if self._evaluate(step, on_eval):
                    result.stopped_early = step < cfg.total_steps
                    self.done = True
                    break
        self.step = result.steps = step
        self.obs, self.episode_return, self.episode_length = obs, episode_return, episode_length
        result.train_seconds += time.perf_counter() - started
        if step >= cfg.total_steps:
            self.done = True
        return result

    def _act(self, obs: np.ndarray, value: float) -> int:
        """Epsilon-greedy (value: epsilon) or softmax over Q (value: temperature)."""
        if self.exploration == "epsilon" and self.rng.random() < value:
            return int(self.rng.integers(self.info.num_actions))
        self._obs_view[...] = obs
        with torch.no_grad():
            q_values = self.q_net(self._obs_tensor)[0].numpy()
        if self.exploration == "epsilon":
            return int(q_values.argmax())
        return boltzmann_action(q_values, value, self.rng)

    def _end_episode(self, step: int, episode_return: float, episode_length: int) -> np.ndarray:
        """Record the finished episode; returns the first observation of the next one (seeded reset)."""
        self.episode += 1
        self.result.episodes.append(
            {"step": step, "episode": self.episode, "return": episode_return, "length": episode_length}
        )
        obs, _ = self.env.reset(seed=self.seed + self.episode)
        return obs

    def _learn(self, updates: UpdateStats) -> None:
        cfg = self.cfg
        for _ in range(cfg.gradient_steps):
            batch = self.replay.sample(cfg.batch_size, self.torch_gen)
            stats = dqn_update(
                self.q_net,
                self.target_net,
                self.optimizer,
                batch,
                cfg.gamma,
                cfg.double_dqn,
                cfg.huber,
                cfg.grad_clip,
            )
            updates.add(stats.loss, stats.q_mean)

    def _evaluate(self, step: int, on_eval: Callable[[dict[str, float]], bool] | None) -> bool:
        """Greedy evaluation; keeps best.pt and last.pt; True when training should stop.

        The score that picks best.pt, marks the solve step and stops early is the eval_episodes mean, or, when
        that reaches the solve return, the mean of confirm_episodes further episodes on their own env seeds
        (a lucky 20-episode evaluation of an unstable policy must not become best.pt nor stop training).
        """
        result, cfg = self.result, self.cfg
        returns = self.evaluator.returns(self.q_net, self.seed + EVAL_SEED_OFFSET + step)
        mean = score = float(returns.mean())
        confirmed = self.confirmer is not None and self.solve_at is not None and mean >= self.solve_at
        if confirmed and self.confirmer is not None and cfg.confirm_episodes is not None:
            seed = self.seed + CONFIRM_SEED_OFFSET + step * cfg.confirm_episodes  # unused by other evals
            score = float(self.confirmer.returns(self.q_net, seed).mean())
        row = {
            "step": step,
            "eval_mean": mean,
            "eval_std": float(returns.std()),
            "eval_min": float(returns.min()),
            "score": score,
            "confirmed": int(confirmed),
            "episodes": self.episode,
            "seconds": round(result.train_seconds, 3),
        }
        result.evals.append(row)
        improved = score > result.best_eval
        if improved:
            result.best_eval, result.best_step = score, step
        if result.solved_step is None and self.solve_at is not None and score >= self.solve_at:
            result.solved_step = step
        result.steps = step
        if improved:
            self._save("best.pt")
        self._save("last.pt")
        stop = cfg.stop_return is not None and score >= cfg.stop_return
        if on_eval is not None and on_eval(row) is False:
            stop = True
        return stop


def train_dqn(
    cfg: DQNConfig,
    exploration: str,
    seed: int,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_eval: Callable[[dict[str, float]], bool] | None = None,
) -> TrainResult:
    """Train one DQN agent to the end (total_steps or early stop); ``on_eval(row)`` returning False stops it.

    Writes ``checkpoint_dir``/last.pt at every evaluation and best.pt when the evaluation mean improves; with
    ``resume`` it continues from last.pt (its replay memory refilled first).
    """
    trainer = DQNTrainer(cfg, exploration, seed, checkpoint_dir)
    try:
        last = checkpoint_dir / "last.pt" if checkpoint_dir is not None else None
        if resume and last is not None and last.is_file():
            trainer.load_state(load_checkpoint(last), last)
            log.info(
                "%s seed %d: resumed at step %d (replay memory refilled)", exploration, seed, trainer.step
            )
        if trainer.step < cfg.total_steps:
            trainer.train(cfg.total_steps, on_eval)
        trainer._save("last.pt")
    finally:
        trainer.close()
    return trainer.result


def load_q_network(path: Path, cfg: DQNConfig) -> QNetwork:
    """The Q-network stored at ``path``, checked against ``cfg``'s env and network size."""
    info = env_info(cfg.env)
    q_net = build_q_network(cfg, info)
    state = load_checkpoint(path, required=("model", "env"))
    check_checkpoint(state, path, cfg.env, q_net)
    q_net.load_state_dict(state["model"])
    q_net.eval()
    return q_net
