"""Greedy evaluation on environment instances kept apart from the training env."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dlrl.rl.envs import EnvMaker
from dlrl.rl.pixels import PixelObservation, side_by_side


def _maker(env: str | EnvMaker) -> EnvMaker:
    return env if isinstance(env, EnvMaker) else EnvMaker(env)


class GreedyEvaluator:
    """Runs ``episodes`` greedy episodes in lockstep on their own envs, one batched forward per step."""

    def __init__(self, env: str | EnvMaker, episodes: int):
        maker = _maker(env)
        self.envs = [maker() for _ in range(episodes)]

    def close(self) -> None:
        for env in self.envs:
            env.close()

    @torch.no_grad()
    def returns(self, q_net: nn.Module, seed: int) -> np.ndarray:
        """Undiscounted return of each episode; env i is reset with seed ``seed + i``."""
        was_training = q_net.training
        q_net.eval()
        n = len(self.envs)
        obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)]).astype(np.float32)
        totals = np.zeros(n)
        active = np.ones(n, dtype=bool)
        while active.any():
            idx = np.flatnonzero(active)
            actions = q_net(torch.from_numpy(obs[idx])).argmax(dim=1).numpy()
            for i, action in zip(idx, actions, strict=True):
                next_obs, reward, terminated, truncated, _ = self.envs[i].step(int(action))
                totals[i] += float(reward)
                obs[i] = next_obs
                if terminated or truncated:
                    active[i] = False
        q_net.train(was_training)
        return totals


def greedy_returns(q_net: nn.Module, env: str | EnvMaker, episodes: int, seed: int) -> np.ndarray:
    """Returns of ``episodes`` greedy episodes on fresh env instances seeded ``seed``, ``seed + 1``, ..."""
    evaluator = GreedyEvaluator(env, episodes)
    try:
        return evaluator.returns(q_net, seed)
    finally:
        evaluator.close()


@torch.no_grad()
def greedy_frames(
    q_net: nn.Module, env: str | EnvMaker, episodes: int, seed: int, every: int = 1
) -> tuple[list[np.ndarray], list[float]]:
    """RGB frames (H, W, 3) uint8 of greedy episodes (every ``every``-th frame) and their returns.

    A pixel agent's frames show the rendered screen beside the processed frames it acted on."""
    env_ = _maker(env)(render=True)
    frames: list[np.ndarray] = []
    returns: list[float] = []
    q_net.eval()

    def frame(obs: np.ndarray) -> np.ndarray:
        if isinstance(env_, PixelObservation):
            return side_by_side(env_.last_rgb, obs)
        return np.asarray(env_.render())

    try:
        for episode in range(episodes):
            obs, _ = env_.reset(seed=seed + episode)
            total, t, done = 0.0, 0, False
            while not done:
                if t % every == 0:
                    frames.append(frame(obs))
                action = int(q_net(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)).argmax())
                obs, reward, terminated, truncated, _ = env_.step(action)
                total += float(reward)
                done = terminated or truncated
                t += 1
            frames.append(frame(obs))
            returns.append(total)
    finally:
        env_.close()
    return frames, returns
