"""Replay memory: preallocated tensors per field and a ring index."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Transition(NamedTuple):
    """A batch of transitions; B = batch size."""

    obs: torch.Tensor  # (B, *obs_shape) float32
    action: torch.Tensor  # (B,) int64
    reward: torch.Tensor  # (B,) float32
    next_obs: torch.Tensor  # (B, *obs_shape) float32
    terminated: torch.Tensor  # (B,) float32, 1.0 where the episode really ended (no bootstrap)


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions, allocated once.

    Only ``terminated`` is stored: an episode cut by a time limit (truncated) still bootstraps from its
    next observation, so the caller passes ``terminated`` alone, never ``terminated or truncated``.
    Writes go through numpy views that share the tensors' memory (one cheap row copy per field).
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: torch.dtype = torch.float32):
        if capacity <= 0:
            raise ValueError(f"replay capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.obs = torch.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = torch.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.action = torch.zeros(capacity, dtype=torch.int64)
        self.reward = torch.zeros(capacity, dtype=torch.float32)
        self.terminated = torch.zeros(capacity, dtype=torch.float32)
        # numpy views of the same memory: a row write costs ~1 µs instead of a torch indexing call
        self._obs = self.obs.numpy()
        self._next_obs = self.next_obs.numpy()
        self._action = self.action.numpy()
        self._reward = self.reward.numpy()
        self._terminated = self.terminated.numpy()
        self.pos = 0
        self.full = False

    def __len__(self) -> int:
        return self.capacity if self.full else self.pos

    def add(
        self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminated: bool
    ) -> None:
        """Write one transition at the ring index, overwriting the oldest when full."""
        i = self.pos
        self._obs[i] = obs
        self._next_obs[i] = next_obs
        self._action[i] = action
        self._reward[i] = reward
        self._terminated[i] = terminated
        self.pos = i + 1
        if self.pos == self.capacity:
            self.pos = 0
            self.full = True

    def sample(self, n: int, generator: torch.Generator) -> Transition:
        """``n`` transitions drawn uniformly with replacement using ``generator``."""
        size = len(self)
        if size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = torch.randint(size, (n,), generator=generator)
        return Transition(
            self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.terminated[idx]
        )
