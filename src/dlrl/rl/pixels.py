"""Observations from the screen: the env's rgb_array render, cropped, grayscale, downsampled and stacked.

No state vector reaches the agent: ``PixelObservation`` replaces the observation by the last k processed
frames, uint8 (k, H, W); the stack makes velocities observable (two frames give the pole's angular
velocity). A fresh episode's stack is k copies of its first frame, which ``FrameReplayBuffer`` relies on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

# ITU-R BT.601 luma weights: the cart (black), pole (brown) and axle (blue) stay distinct on white
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def area_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) weights that average each target cell over the source pixels it covers (area
    resampling: a sub-pixel shift of the pole changes the grey levels, not nothing)."""
    edges = np.linspace(0.0, source, target + 1)
    weights = np.zeros((target, source), dtype=np.float32)
    for i in range(target):
        lo, hi = edges[i], edges[i + 1]
        first, last = int(np.floor(lo)), int(np.ceil(hi))
        for j in range(first, min(last, source)):
            weights[i, j] = min(hi, j + 1) - max(lo, j)
        weights[i] /= hi - lo
    return weights


class FrameProcessor:
    """RGB frame (H0, W0, 3) uint8 -> grey (H, W) uint8: crop, luma, area downsampling.

    crop: (top, bottom, left, right) in rendered pixels, None for the whole frame; size: (H, W).
    """

    def __init__(self, frame_shape: tuple[int, ...], crop: Sequence[int] | None, size: Sequence[int]):
        height, width = frame_shape[:2]
        top, bottom, left, right = crop if crop is not None else (0, height, 0, width)
        if not (0 <= top < bottom <= height and 0 <= left < right <= width):
            raise ValueError(
                f"crop {list(crop or [])} does not fit in the rendered {height}x{width} frame "
                "(top < bottom <= height, left < right <= width)"
            )
        out_h, out_w = size
        if out_h > bottom - top or out_w > right - left:
            raise ValueError(
                f"size {list(size)} is larger than the cropped {bottom - top}x{right - left} frame"
            )
        self.window = (slice(top, bottom), slice(left, right))
        # torch, not numpy: torch runs on the one thread it is given, numpy's BLAS starts its own threads,
        # which made this 0.7 ms step take 40 ms on a busy 2-core machine
        self.rows = torch.from_numpy(area_matrix(bottom - top, out_h))  # (H, h)
        self.cols = torch.from_numpy(area_matrix(right - left, out_w).T.copy())  # (w, W)
        self.luma = torch.from_numpy(LUMA)
        self.size = (out_h, out_w)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        grey = torch.from_numpy(np.ascontiguousarray(rgb[self.window])).float() @ self.luma  # (h, w)
        small = self.rows @ grey @ self.cols  # (h, w) -> (H, W)
        return small.round_().clamp_(0, 255).to(torch.uint8).numpy()


class PixelObservation(gym.Wrapper):
    """Observation = the last ``stack`` processed frames, uint8 (stack, H, W); the wrapped env must have
    been made with render_mode='rgb_array'. A fresh episode starts with ``stack`` copies of its first frame.

    ``repeat``: each step plays the action that many env steps (fewer if the episode ends), sums their
    rewards and renders only the last one, as Atari agents skip frames.
    """

    def __init__(
        self, env: gym.Env, crop: Sequence[int] | None, size: Sequence[int], stack: int, repeat: int = 1
    ):
        super().__init__(env)
        if stack <= 0:
            raise ValueError(f"frame stack must be positive, got {stack}")
        if repeat <= 0:
            raise ValueError(f"action repeat must be positive, got {repeat}")
        self.stack, self.repeat = stack, repeat
        env.reset(seed=0)  # a first frame gives the render size (the episode is reset again before use)
        first = np.asarray(env.render())
        self.processor = FrameProcessor(first.shape, crop, size)
        self.observation_space = gym.spaces.Box(0, 255, (stack, *self.processor.size), np.uint8)
        self.frames: np.ndarray = np.zeros((stack, *self.processor.size), dtype=np.uint8)
        self.last_rgb: np.ndarray = first

    def _frame(self) -> np.ndarray:
        self.last_rgb = np.asarray(self.env.render())
        return self.processor(self.last_rgb)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        _, info = self.env.reset(**kwargs)
        self.frames = np.repeat(self._frame()[None], self.stack, axis=0)
        return self.frames, info  # a new array every step, never changed in place: no copy needed

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        total = 0.0
        for _ in range(self.repeat):
            _, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        frames = np.empty_like(self.frames)
        frames[:-1] = self.frames[1:]
        frames[-1] = self._frame()
        self.frames = frames
        return frames, total, terminated, truncated, info


def side_by_side(rgb: np.ndarray, stack: np.ndarray, height: int | None = None) -> np.ndarray:
    """One video frame: the rendered screen (H0, W0, 3) and, to its right, the k processed frames the
    agent acted on (k, H, W), newest at the bottom, scaled up by whole pixels to fit ``height`` (or H0)."""
    height = height or rgb.shape[0]
    k, h, w = stack.shape
    scale = max(1, height // (k * h))
    tiles = np.repeat(np.repeat(stack, scale, axis=1), scale, axis=2)  # (k, h*s, w*s)
    column = np.full((height, w * scale), 255, dtype=np.uint8)
    column[: k * h * scale] = tiles.reshape(k * h * scale, w * scale)[:height]
    gap = np.full((height, 8, 3), 255, dtype=np.uint8)
    return np.concatenate([rgb[:height], gap, np.repeat(column[:, :, None], 3, axis=2)], axis=1)
