"""Exploration schedules (pure functions of the step) and action selection from Q-values."""

from __future__ import annotations

import numpy as np


def linear_schedule(step: int, start: float, end: float, duration: int) -> float:
    """Straight line from ``start`` at step 0 to ``end`` at ``duration``, constant after."""
    if duration <= 0 or step >= duration:
        return end
    return start + (end - start) * step / duration


def exponential_schedule(step: int, start: float, end: float, duration: int) -> float:
    """Geometric decay from ``start`` to ``end`` (both > 0) reached exactly at ``duration``: halfway the value
    is sqrt(start * end); constant after."""
    if duration <= 0 or step >= duration:
        return end
    return start * (end / start) ** (step / duration)


def schedule_value(kind: str, step: int, start: float, end: float, duration: int) -> float:
    """``kind``: 'linear' or 'exponential'."""
    if kind == "linear":
        return linear_schedule(step, start, end, duration)
    if kind == "exponential":
        return exponential_schedule(step, start, end, duration)
    raise ValueError(f"unknown schedule '{kind}'")


def boltzmann_probabilities(q_values: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(q / temperature) over the last axis, computed stably (max subtracted first)."""
    z = np.asarray(q_values, dtype=np.float64) / max(temperature, 1e-8)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def epsilon_greedy(q_values: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """A uniformly random action with probability ``epsilon``, else argmax Q (q_values: (A,))."""
    if rng.random() < epsilon:
        return int(rng.integers(len(q_values)))
    return int(np.argmax(q_values))


def boltzmann_action(q_values: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """An action drawn from softmax(Q / temperature) (q_values: (A,))."""
    p = boltzmann_probabilities(q_values, temperature)
    return int(min(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"), len(p) - 1))


def schedule_curve(
    kind: str, start: float, end: float, duration: int, total_steps: int, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of a schedule over ``total_steps``, for plotting."""
    steps = np.unique(np.linspace(0, total_steps, points).astype(int))
    return steps, np.array([schedule_value(kind, int(s), start, end, duration) for s in steps])


__all__ = [
    "boltzmann_action",
    "boltzmann_probabilities",
    "epsilon_greedy",
    "exponential_schedule",
    "linear_schedule",
    "schedule_curve",
    "schedule_value",
]
