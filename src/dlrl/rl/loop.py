"""The DQN training loop: act, store, learn, sync the target, evaluate greedily, checkpoint.

Plain for-loop over environment steps, in the order of cleanrl's dqn.py. It writes only checkpoints
(``last.pt`` at evaluations, ``best.pt`` when the evaluation score improves); histories come back in the
result (and live in the checkpoint, so a resumed run keeps them).

``last.pt`` holds everything the run depends on: weights, target net, Adam, the replay memory, every random
generator, counters and the current episode's actions since its seeded reset. Resuming replays those
actions on a fresh env (Gymnasium's envs are deterministic given the reset seed and the actions), so a run
killed at any point and resumed ends with the same numbers bit for bit as one never interrupted.
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
from torch import nn

from dlrl.config.dqn import DQNConfig
from dlrl.data.augment import random_shift
from dlrl.errors import CheckpointError
from dlrl.rl.agent import (
    CONFIRM_SEED_OFFSET,
    EVAL_SEED_OFFSET,
    build_q_network,
    build_replay,
    check_checkpoint,
    env_maker,
    exploration_value,
)
from dlrl.rl.buffer import replay_state_bytes
from dlrl.rl.dqn import dqn_update, polyak_update
from dlrl.rl.envs import env_info
from dlrl.rl.evaluate import GreedyEvaluator
from dlrl.rl.exploration import boltzmann_action
from dlrl.train.checkpoint import (
    check_optimizer_state,
    load_checkpoint,
    load_model_state,
    require_keys,
    save_checkpoint,
)

log = logging.getLogger(__name__)


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
    checkpoint: dict[str, float] = field(default_factory=dict)  # last.pt: bytes, replay_bytes, write seconds


class UpdateStats:
    """Loss and mean Q of the updates since the last log row, summed on the device."""

    def __init__(self) -> None:
        self.loss_sum, self.q_sum, self.count = torch.zeros(()), torch.zeros(()), 0

    def add(self, loss: torch.Tensor, q_mean: torch.Tensor) -> None:
        self.loss_sum += loss
        self.q_sum += q_mean
        self.count += 1

    def state(self) -> dict[str, Any]:
        return {"loss_sum": self.loss_sum.clone(), "q_sum": self.q_sum.clone(), "count": self.count}

    def load_state(self, state: dict[str, Any]) -> None:
        self.loss_sum, self.q_sum = state["loss_sum"].clone(), state["q_sum"].clone()
        self.count = int(state["count"])

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
    reports after every evaluation). ``state()`` / ``load_state()`` hold everything the rest of the run
    depends on, the replay memory included, so a restored agent continues exactly where it was."""

    def __init__(self, cfg: DQNConfig, exploration: str, seed: int, checkpoint_dir: Path | None = None):
        self.cfg, self.exploration, self.seed, self.checkpoint_dir = cfg, exploration, seed, checkpoint_dir
        self.maker = env_maker(cfg)
        self.info = info = env_info(self.maker)
        self.solve_at = cfg.solve_return if cfg.solve_return is not None else info.reward_threshold
        self.confirm_at = cfg.confirm_from if cfg.confirm_from is not None else self.solve_at
        self.replay = build_replay(cfg, info)  # first: a replay memory too large fails before anything else
        torch.manual_seed(seed)
        self.q_net = build_q_network(cfg, info)
        self.target_net = copy.deepcopy(self.q_net)
        for p in self.target_net.parameters():
            p.requires_grad_(False)
        # the weights greedy evaluations, best.pt and play use: an average of the online ones, or themselves
        self.eval_net = copy.deepcopy(self.target_net) if cfg.eval_ema is not None else self.q_net
        # fused: one kernel for all parameters, about 3x faster than the default Adam step on CPU
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=cfg.lr, fused=True)
        self.rng = np.random.default_rng(seed)
        self.torch_gen = torch.Generator().manual_seed(seed)
        self.result = TrainResult(steps=0)
        self.step, self.episode = 0, 0
        self.learn_from = cfg.learning_starts
        self.updates = UpdateStats()  # kept across train() calls: chunked training logs as one call does
        self.env = self.maker()
        self.evaluator = GreedyEvaluator(self.maker, cfg.eval_episodes)
        # a high periodic evaluation is re-checked on more episodes before it counts (noisy 20-episode means)
        self.confirmer = (
            GreedyEvaluator(self.maker, cfg.confirm_episodes)
            if cfg.confirm_episodes is not None and self.confirm_at is not None
            else None
        )
        self._obs_tensor = torch.zeros((1, *info.obs_shape))  # reused for every action choice
        self._obs_view = self._obs_tensor.numpy()[0]
        self.done = False
        self.checkpoint_step = 0  # step of the last last.pt
        self._new_episode()

    def _new_episode(self) -> None:
        self.obs, _ = self.env.reset(seed=self.seed + self.episode)
        self.episode_return, self.episode_length = 0.0, 0
        self.episode_actions: list[int] = []  # since the seeded reset: what recreates the env on resume

    def close(self) -> None:
        self.env.close()
        self.evaluator.close()
        if self.confirmer is not None:
            self.confirmer.close()

    def state(self, replay: bool = True) -> dict[str, Any]:
        """Everything to continue this run exactly (``replay=False``: all but the replay memory and the
        current episode, as in best.pt, which is for evaluation)."""
        r = self.result
        state = {
            # best.pt's model is the evaluated policy; last.pt's the online net, its average kept beside it
            "model": (self.q_net if replay else self.eval_net).state_dict(),
            "target": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "episode": self.episode,
            "env": self.info.env_id,
            "obs_type": self.cfg.obs_type,
            "exploration": self.exploration,
            "seed": self.seed,
            "config": self.cfg.model_dump(mode="json"),
            "history": {"episodes": r.episodes, "evals": r.evals, "updates": r.updates},
            "best_eval": float(r.best_eval),
            "best_step": r.best_step,
            "solved_step": r.solved_step,
            "stopped_early": r.stopped_early,
            "train_seconds": float(r.train_seconds),
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": self.torch_gen.get_state(),
            "torch_global_rng": torch.get_rng_state(),  # weight re-initialisation (reset_every)
        }
        if replay and self.eval_net is not self.q_net:
            state["eval_ema"] = self.eval_net.state_dict()
        if replay:
            state["run"] = {
                "replay": self.replay.state_dict(),
                "learn_from": self.learn_from,
                "updates": self.updates.state(),
                "obs": torch.from_numpy(np.array(self.obs, copy=True)),
                "episode_return": float(self.episode_return),
                "episode_length": self.episode_length,
                "episode_actions": torch.tensor(self.episode_actions, dtype=torch.int64),
                "checkpoint_step": self.step,
            }
        return state

    def load_state(self, state: dict[str, Any], path: Path | str = "state") -> None:
        """Continue from ``state``: exactly when it holds the run (replay memory, episode), else from a fresh
        episode with the replay memory refilled for learning_starts steps first."""
        path = Path(path)
        check_checkpoint(state, path, self.cfg.env, self.q_net, self.cfg.obs_type)
        keys = ["target", "optimizer", "step", "episode", "history", "numpy_rng", "torch_rng"]
        require_keys(state, [*keys, "best_eval", "best_step", "solved_step", "train_seconds"], path)
        load_model_state(self.target_net, state["target"], path)
        # checked before loading: a moment tensor of another shape crashes the fused Adam step (SIGSEGV)
        check_optimizer_state(self.optimizer, state["optimizer"], path)
        history = state["history"]
        if not isinstance(history, dict) or not all(
            isinstance(history.get(key), list) for key in ("episodes", "evals", "updates")
        ):
            raise CheckpointError(f"{path}: history is not the episodes, evals and updates of a DQN run")
        self.q_net.load_state_dict(state["model"])
        if self.eval_net is not self.q_net:  # without the average (best.pt): it starts from the weights
            load_model_state(self.eval_net, state.get("eval_ema", state["model"]), path)
        self.optimizer.load_state_dict(state["optimizer"])
        try:
            self.rng.bit_generator.state = state["numpy_rng"]
            self.torch_gen.set_state(state["torch_rng"])
            if "torch_global_rng" in state:
                torch.set_rng_state(state["torch_global_rng"])
        except (ValueError, TypeError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"{path}: a random generator's state does not fit ({err})") from None
        self.step, self.episode = int(state["step"]), int(state["episode"])
        self.result = TrainResult(
            steps=self.step,
            episodes=list(history["episodes"]),
            evals=list(history["evals"]),
            updates=list(history["updates"]),
            best_eval=float(state["best_eval"]),
            best_step=int(state["best_step"]),
            solved_step=state["solved_step"],
            stopped_early=bool(state.get("stopped_early", False)),
            train_seconds=float(state["train_seconds"]),
            resumed_from=self.step,
        )
        self.done = self.result.stopped_early or self.step >= self.cfg.total_steps
        self._new_episode()
        if "run" in state:
            if not isinstance(state["run"], dict):
                raise CheckpointError(f"{path}: run is {type(state['run']).__name__}, not the run's state")
            self._load_run(state["run"], path)
        else:  # a state without the replay memory: refill it before learning again
            self.learn_from = self.step + self.cfg.learning_starts

    def _load_run(self, run: dict[str, Any], path: Path) -> None:
        """Replay memory, update statistics and the env in the middle of its episode (actions replayed)."""
        require_keys(run, ["replay", "learn_from", "updates", "obs", "episode_actions"], path)
        try:
            self.replay.load_state_dict(run["replay"])
        except (ValueError, KeyError, RuntimeError, TypeError) as err:
            raise CheckpointError(f"{path}: replay memory does not fit this config ({err})") from None
        self.learn_from = int(run["learn_from"])
        self.updates.load_state(run["updates"])
        self.checkpoint_step = int(run.get("checkpoint_step", self.step))
        obs = self.obs
        actions = (
            run["episode_actions"].tolist() if isinstance(run["episode_actions"], torch.Tensor) else None
        )
        if not isinstance(actions, list) or not all(
            isinstance(a, int) and 0 <= a < self.info.num_actions for a in actions
        ):
            raise CheckpointError(f"{path}: the episode's actions are not actions of {self.cfg.env}")
        for action in actions:
            obs = self.env.step(action)[0]
        if not np.array_equal(np.asarray(obs), run["obs"].numpy()):
            raise CheckpointError(
                f"{path}: replaying the episode's {len(actions)} actions from its reset seed does not give "
                "the saved observation (a non-deterministic environment?); cannot resume exactly"
            )
        self.obs = obs
        self.episode_return, self.episode_length = float(run["episode_return"]), int(run["episode_length"])
        self.episode_actions = actions

    def reset_networks(self) -> None:
        """Fresh weights for the online and target nets and a fresh Adam state; the replay memory stays."""
        for module in self.q_net.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                module.reset_parameters()
        polyak_update(self.q_net, self.target_net, 1.0)
        if self.eval_net is not self.q_net:
            polyak_update(self.q_net, self.eval_net, 1.0)
        self.optimizer.state.clear()

    def _save(self, name: str) -> None:
        """best.pt: weights and counters (for evaluation); last.pt: the whole run, timed and measured."""
        if self.checkpoint_dir is None:
            return
        if name != "last.pt":
            save_checkpoint(self.checkpoint_dir / name, self.state(replay=False))
            return
        started = time.perf_counter()
        state = self.state()
        save_checkpoint(self.checkpoint_dir / name, state)
        self.checkpoint_step = self.step
        self.result.checkpoint = {
            "bytes": (self.checkpoint_dir / name).stat().st_size,
            "replay_bytes": replay_state_bytes(state["run"]["replay"]),
            "seconds": round(time.perf_counter() - started, 4),
        }

    def _checkpoint_due(self, step: int) -> bool:
        every = self.cfg.checkpoint_every
        return every is None or step - self.checkpoint_step >= every or step >= self.cfg.total_steps

    def train(self, until: int, on_eval: Callable[[dict[str, float]], bool] | None = None) -> TrainResult:
        """Train up to env step ``until`` (capped at total_steps), evaluating every eval_every steps.

        Each step in cleanrl's order: act, store the transition, learn, sync the target network."""
        cfg, result, replay, env, updates = self.cfg, self.result, self.replay, self.env, self.updates
        obs, episode_return, episode_length = self.obs, self.episode_return, self.episode_length
        actions = self.episode_actions
        started = time.perf_counter()
        step = self.step
        until = min(until, cfg.total_steps)
        for step in range(self.step + 1, until + 1):
            value = exploration_value(cfg, self.exploration, step)
            action = self._act(obs, value)
            actions.append(action)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            reward = float(reward)
            replay.add(obs, action, reward, next_obs, terminated)  # truncation still bootstraps
            episode_return += reward
            episode_length += 1
            if terminated or truncated:
                obs = self._end_episode(step, episode_return, episode_length)
                episode_return, episode_length = 0.0, 0
                actions = self.episode_actions = []
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
                self.step = step  # what a checkpoint taken by the evaluation records
                self.obs, self.episode_return, self.episode_length = obs, episode_return, episode_length
                result.train_seconds += time.perf_counter() - started
                started = time.perf_counter()
                if self._evaluate(step, on_eval):
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
        """gradient_steps updates on replay batches drawn with the agent's own torch generator."""
        cfg = self.cfg
        shift = cfg.pixels.augment_shift if cfg.obs_type == "pixels" else 0
        for _ in range(cfg.gradient_steps):
            batch = self.replay.sample(cfg.batch_size, self.torch_gen)
            if shift:
                obs = random_shift(batch.obs, shift, self.torch_gen, edge=True)
                next_obs = random_shift(batch.next_obs, shift, self.torch_gen, edge=True)
                batch = batch._replace(obs=obs, next_obs=next_obs)
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
            if cfg.eval_ema is not None:
                polyak_update(self.q_net, self.eval_net, 1.0 - cfg.eval_ema)

    def _evaluate(self, step: int, on_eval: Callable[[dict[str, float]], bool] | None) -> bool:
        """Greedy evaluation; keeps best.pt and last.pt; True when training should stop.

        The score that picks best.pt, marks the solve step and stops early is the eval_episodes mean, or, when
        that reaches confirm_from (default: the solve return), the mean of confirm_episodes more episodes on
        their own env seeds (a lucky 20-episode evaluation of an unstable policy must not become best.pt nor
        stop training).
        """
        result, cfg = self.result, self.cfg
        returns = self.evaluator.returns(self.eval_net, self.seed + EVAL_SEED_OFFSET + step)
        mean = score = float(returns.mean())
        confirmed = self.confirmer is not None and self.confirm_at is not None and mean >= self.confirm_at
        if confirmed and self.confirmer is not None and cfg.confirm_episodes is not None:
            seed = self.seed + CONFIRM_SEED_OFFSET + step * cfg.confirm_episodes  # unused by other evals
            score = float(self.confirmer.returns(self.eval_net, seed).mean())
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
        stop = cfg.stop_return is not None and score >= cfg.stop_return
        if cfg.time_limit is not None:  # stop while within it: the next eval_every steps would pass it
            previous = result.evals[-2]["seconds"] if len(result.evals) > 1 else 0.0
            stop = stop or 2 * result.train_seconds - previous > cfg.time_limit
        if on_eval is not None and on_eval(row) is False:
            stop = True
        if stop:  # before last.pt: a run resumed from it must not train on past the stop
            result.stopped_early = step < cfg.total_steps
            self.done = True
        if stop or self._checkpoint_due(step):
            self._save("last.pt")
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

    Writes ``checkpoint_dir``/last.pt at evaluations (see checkpoint_every) and best.pt when the evaluation
    score improves; with ``resume`` it continues exactly from last.pt.
    """
    trainer = DQNTrainer(cfg, exploration, seed, checkpoint_dir)
    try:
        last = checkpoint_dir / "last.pt" if checkpoint_dir is not None else None
        if resume and last is not None and last.is_file():
            trainer.load_state(load_checkpoint(last), last)
            log.info("%s seed %d: resumed at step %d", exploration, seed, trainer.step)
        if not trainer.done:  # stopped early, or total_steps reached (a larger total_steps continues)
            trainer.train(cfg.total_steps, on_eval)
        if trainer.step != trainer.checkpoint_step or not (last is not None and last.is_file()):
            trainer._save("last.pt")
    finally:
        trainer.close()
    return trainer.result
