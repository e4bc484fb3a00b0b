"""Replay memory: preallocated tensors per field and a ring index.

``ReplayBuffer`` stores state vectors (obs and next_obs per row). ``FrameReplayBuffer`` stores stacked uint8
frames once each: one frame per step, a transition's obs and next_obs being stacks of consecutive frames of
its episode. Both checkpoint their content compactly (``state_dict``) so that a resumed run samples exactly
the batches the uninterrupted run would have.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

from dlrl.errors import DlrlError


class Transition(NamedTuple):
    """A batch of transitions; B = batch size."""

    obs: torch.Tensor  # (B, *obs_shape) float32 (state) or uint8 (stacked frames)
    action: torch.Tensor  # (B,) int64
    reward: torch.Tensor  # (B,) float32
    next_obs: torch.Tensor  # (B, *obs_shape), as obs
    terminated: torch.Tensor  # (B,) float32, 1.0 where the episode really ended (no bootstrap)
    # (B,) float32: the factor of the bootstrapped value, gamma ** (rewards summed) with n-step returns;
    # None: one reward, the update's own gamma
    discount: torch.Tensor | None = None


def n_step_return(
    index: torch.Tensor,
    ring: Callable[[torch.Tensor], torch.Tensor],
    successor: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    reward: torch.Tensor,
    terminated: torch.Tensor,
    n_step: int,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """r_t + gamma r_t+1 + ... over up to ``n_step`` transitions from each ``index`` on, cut where the
    episode ends (terminated, or its successor is another episode's or not written yet).

    ``ring`` maps an index to its row of ``reward``/``terminated``; ``successor`` gives each index's next
    transition and whether it continues the same episode. Returns the last transition's index (whose
    next_obs to bootstrap from), the return, its terminated flag and gamma ** (rewards summed), all (B,).
    """
    row = ring(index)
    total, done = reward[row].clone(), terminated[row].clone()
    discount = torch.full_like(total, gamma)
    last = index
    for _ in range(n_step - 1):
        following, continues = successor(last)
        continues &= done == 0
        row = ring(following)
        total = torch.where(continues, total + discount * reward[row], total)
        done = torch.where(continues, terminated[row], done)
        discount = torch.where(continues, discount * gamma, discount)
        last = torch.where(continues, following, last)
    return last, total, done, discount


def _small_int(values: torch.Tensor) -> torch.Tensor:
    """Actions as uint8 when they fit (a checkpoint's replay memory: 1 byte instead of 8 per transition)."""
    if values.numel() == 0 or (int(values.min()) >= 0 and int(values.max()) < 256):
        return values.to(torch.uint8)
    return values.clone()


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions, allocated once.

    Only ``terminated`` is stored: an episode cut by a time limit (truncated) still bootstraps from its
    next observation, so the caller passes ``terminated`` alone, never ``terminated or truncated``.
    Writes go through numpy views that share the tensors' memory (one cheap row copy per field).
    ``n_step`` > 1: a sampled transition carries the discounted sum of up to n rewards from it on, within
    its episode (a row continues into the next when its next_obs is that row's obs), and the next_obs and
    terminated flag of the last of them.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype = torch.float32,
        n_step: int = 1,
        gamma: float = 0.99,
    ):
        if capacity <= 0:
            raise ValueError(f"replay capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.n_step, self.gamma = n_step, gamma
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

    @staticmethod
    def bytes_needed(capacity: int, obs_shape: tuple[int, ...], obs_itemsize: int = 4) -> int:
        """Bytes the buffer allocates: obs and next_obs per row, action (8), reward (4), terminated (4)."""
        return capacity * (2 * math.prod(obs_shape) * obs_itemsize + 16)

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
        if self.n_step == 1:
            return Transition(
                self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.terminated[idx]
            )
        last, reward, terminated, discount = n_step_return(
            idx, lambda i: i, self._successor, self.reward, self.terminated, self.n_step, self.gamma
        )
        return Transition(self.obs[idx], self.action[idx], reward, self.next_obs[last], terminated, discount)

    def _successor(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's next row in the ring, and whether it continues the row's episode."""
        following = (rows + 1) % self.capacity
        a, b = self.next_obs[rows].reshape(len(rows), -1), self.obs[following].reshape(len(rows), -1)
        if a.dtype == torch.float32:
            a, b = a.view(torch.int32), b.view(torch.int32)  # bit for bit, as state_dict compares
        continues = (a == b).all(dim=1) & (rows != (self.pos - 1) % self.capacity)  # the newest has none
        return following, continues

    def state_dict(self) -> dict[str, Any]:
        """The filled rows, compactly: next_obs only where it is not the next row's obs (episode ends, the
        newest row), actions as uint8, terminated as bool. Restores bit for bit (compared as raw bits)."""
        n = len(self)
        obs = self.obs[:n]
        # row i's successor in the ring is row i + 1 (mod capacity once full); the newest row has none
        following = torch.roll(obs, -1, dims=0)
        bits = torch.int32 if self.obs.dtype == torch.float32 else None
        a = self.next_obs[:n].view(bits) if bits else self.next_obs[:n]
        b = following.view(bits) if bits else following
        own = (a != b).reshape(n, -1).any(dim=1) if n else torch.zeros(0, dtype=torch.bool)
        if n:
            own[(self.pos - 1) % self.capacity if self.full else n - 1] = True
        return {
            "kind": "state",
            "capacity": self.capacity,
            "pos": self.pos,
            "full": self.full,
            "obs": obs.clone(),
            "next_obs_own": own,
            "next_obs": self.next_obs[:n][own].clone(),
            "action": _small_int(self.action[:n]),
            "reward": self.reward[:n].clone(),
            "terminated": self.terminated[:n].to(torch.bool),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "state" or int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"replay memory of another kind or capacity ({state.get('kind')}, {state.get('capacity')})"
            )
        n = len(state["obs"])
        self.obs[:n] = state["obs"]
        following = torch.roll(state["obs"], -1, dims=0)
        own = state["next_obs_own"]
        nxt = following.clone()
        nxt[own] = state["next_obs"]
        self.next_obs[:n] = nxt
        self.action[:n] = state["action"].to(torch.int64)
        self.reward[:n] = state["reward"]
        self.terminated[:n] = state["terminated"].to(torch.float32)
        self.pos, self.full = int(state["pos"]), bool(state["full"])


class FrameReplayBuffer:
    """Replay memory of stacked uint8 frames, each frame stored once.

    Every slot of the ring holds one frame (H, W). Each step writes the newest frame of its next_obs into a
    slot marked as a transition (with action, reward, terminated); a new episode first writes the frames of
    its first observation (a reset stack of k copies of one frame: one slot). A transition in slot a then has
    next_obs = frames of slots a-k+1..a and obs = slots a-k..a-1, both clamped at its episode's first slot
    (which is how the observation wrapper pads a fresh episode: copies of the first frame).

    So k-frame stacks cost one frame per step instead of 2k; ``add`` takes the same arguments as
    ``ReplayBuffer.add`` and checks that next_obs is obs shifted by one frame. Slot indices below are
    absolute (count of slots ever written); slot a lives at a % capacity. ``n_step`` > 1: as in
    ReplayBuffer, a transition's successor being the next slot of its episode.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], n_step: int = 1, gamma: float = 0.99):
        if capacity <= 0:
            raise ValueError(f"replay capacity must be positive, got {capacity}")
        if len(obs_shape) != 3:
            raise ValueError(f"frame replay needs (stack, H, W) observations, got shape {obs_shape}")
        self.capacity = capacity
        self.n_step, self.gamma = n_step, gamma
        self.stack = obs_shape[0]
        self.frames = torch.zeros((capacity, *obs_shape[1:]), dtype=torch.uint8)
        self.action = torch.zeros(capacity, dtype=torch.int64)
        self.reward = torch.zeros(capacity, dtype=torch.float32)
        self.terminated = torch.zeros(capacity, dtype=torch.float32)
        self.start = torch.zeros(capacity, dtype=torch.int64)  # absolute slot of the episode's first frame
        self.is_transition = torch.zeros(capacity, dtype=torch.bool)
        self._frames = self.frames.numpy()
        self._action, self._reward = self.action.numpy(), self.reward.numpy()
        self._terminated, self._start = self.terminated.numpy(), self.start.numpy()
        self._is_transition = self.is_transition.numpy()
        self.total = 0  # slots written ever
        self.episode_start = 0  # absolute slot of the current episode's first frame
        self.last_next: np.ndarray | None = None  # the previous transition's next_obs (k, H, W)

    @staticmethod
    def bytes_needed(capacity: int, obs_shape: tuple[int, ...]) -> int:
        """Memory the buffer allocates: one uint8 frame plus 25 bytes of fields per slot."""
        return capacity * (math.prod(obs_shape[1:]) + 8 + 4 + 4 + 8 + 1)

    def __len__(self) -> int:
        """Slots in use (frames stored): transitions plus one first frame per episode."""
        return min(self.total, self.capacity)

    def _write(
        self, frame: np.ndarray, transition: bool, action: int, reward: float, terminated: bool
    ) -> None:
        i = self.total % self.capacity
        self._frames[i] = frame
        self._is_transition[i] = transition
        self._start[i] = self.episode_start
        self._action[i] = action
        self._reward[i] = reward
        self._terminated[i] = terminated
        self.total += 1

    def add(
        self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminated: bool
    ) -> None:
        """Store one transition; obs, next_obs: (k, H, W) uint8 with next_obs[:-1] equal to obs[1:]."""
        if not np.array_equal(next_obs[:-1], obs[1:]):
            raise ValueError("frame replay: next_obs must be obs shifted by one frame (a frame stack)")
        if self.last_next is None or not np.array_equal(obs, self.last_next):
            # a new episode: its first observation's frames, leading copies of one frame stored once
            first = 0
            while first + 1 < len(obs) and np.array_equal(obs[first + 1], obs[0]):
                first += 1
            self.episode_start = self.total
            for frame in obs[first:]:
                self._write(frame, False, 0, 0.0, False)
        self._write(next_obs[-1], True, action, reward, terminated)
        self.last_next = np.array(next_obs, copy=True)

    def _valid(self, slots: torch.Tensor) -> torch.Tensor:
        """Transitions whose obs frames are all still in the ring."""
        ring = slots % self.capacity
        oldest = torch.maximum(slots - self.stack, self.start[ring])
        return self.is_transition[ring] & (oldest >= self.total - len(self))

    def sample(self, n: int, generator: torch.Generator) -> Transition:
        """``n`` transitions uniformly with replacement (slots that are no transition are drawn again)."""
        size = len(self)
        if not bool(self.is_transition[:size].any()):
            raise ValueError("cannot sample from an empty replay buffer")
        slots = self.total - size + torch.randint(size, (n,), generator=generator)
        bad = ~self._valid(slots)
        while bool(bad.any()):
            count = int(bad.sum())
            slots[bad] = self.total - size + torch.randint(size, (count,), generator=generator)
            bad = ~self._valid(slots)
        ring = slots % self.capacity
        offsets = torch.arange(self.stack - 1, -1, -1)  # k-1, ..., 0
        first = self.start[ring].unsqueeze(1)
        obs_idx = torch.maximum(slots.unsqueeze(1) - 1 - offsets, first) % self.capacity  # (n, k)
        if self.n_step == 1:
            last, reward, terminated, discount = slots, self.reward[ring], self.terminated[ring], None
        else:
            last, reward, terminated, discount = n_step_return(
                slots, self._ring, self._successor, self.reward, self.terminated, self.n_step, self.gamma
            )
        next_idx = torch.maximum(last.unsqueeze(1) - offsets, first) % self.capacity  # same episode
        return Transition(
            self.frames[obs_idx],  # (n, k, H, W) uint8
            self.action[ring],
            reward,
            self.frames[next_idx],
            terminated,
            discount,
        )

    def _ring(self, slots: torch.Tensor) -> torch.Tensor:
        return slots % self.capacity

    def _successor(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each slot's next slot, and whether it is a written transition of the same episode."""
        following = slots + 1
        ring = following % self.capacity
        same = self.is_transition[ring] & (self.start[ring] == self.start[slots % self.capacity])
        return following, same & (following < self.total)

    def state_dict(self) -> dict[str, Any]:
        """The slots in use in ring order from the oldest, with actions as uint8."""
        size = len(self)
        order = torch.arange(self.total - size, self.total) % self.capacity
        return {
            "kind": "frames",
            "capacity": self.capacity,
            "total": self.total,
            "episode_start": self.episode_start,
            "frames": self.frames[order].clone(),
            "action": _small_int(self.action[order]),
            "reward": self.reward[order].clone(),
            "terminated": self.terminated[order].to(torch.bool),
            "start": self.start[order].clone(),
            "is_transition": self.is_transition[order].clone(),
            "last_next": torch.from_numpy(self.last_next.copy()) if self.last_next is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "frames" or int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"replay memory of another kind or capacity ({state.get('kind')}, {state.get('capacity')})"
            )
        self.total, self.episode_start = int(state["total"]), int(state["episode_start"])
        size = len(state["frames"])
        order = torch.arange(self.total - size, self.total) % self.capacity
        self.frames[order] = state["frames"]
        self.action[order] = state["action"].to(torch.int64)
        self.reward[order] = state["reward"]
        self.terminated[order] = state["terminated"].to(torch.float32)
        self.start[order] = state["start"]
        self.is_transition[order] = state["is_transition"]
        last = state["last_next"]
        self.last_next = last.numpy().copy() if last is not None else None


def replay_state_bytes(state: dict[str, Any]) -> int:
    """Bytes of the tensors in a replay ``state_dict`` (what it adds to a checkpoint, before zip overhead)."""
    return sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, torch.Tensor))


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (MemAvailable), None where it cannot be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def replay_bytes(capacity: int, obs_shape: tuple[int, ...], frames: bool) -> int:
    """What one agent's replay memory allocates (``frames``: a FrameReplayBuffer of uint8 stacks)."""
    if frames:
        return FrameReplayBuffer.bytes_needed(capacity, obs_shape)
    return ReplayBuffer.bytes_needed(capacity, obs_shape)


def check_replay_fits(
    capacity: int, obs_shape: tuple[int, ...], frames: bool, agents: int = 1, available: int | None = None
) -> int:
    """The replay memory of ``agents`` agents training at once, in bytes; a one-line DlrlError, before
    anything is allocated, when it would not fit in the memory available."""
    per_agent = replay_bytes(capacity, obs_shape, frames)
    needed = per_agent * agents
    available = available_memory() if available is None else available
    if available is not None and needed > available:
        share = f" ({agents} agents in parallel)" if agents > 1 else ""
        raise DlrlError(
            f"buffer_size {capacity:,}: the replay memory needs {needed / 2**30:.1f} GiB{share}, "
            f"{per_agent / capacity:,.0f} bytes per transition, and only {available / 2**30:.1f} GiB of "
            "memory is available; lower buffer_size (or workers)"
        )
    return needed
