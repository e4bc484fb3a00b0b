"""Reproducible K-fold splits for cross validation."""

from __future__ import annotations

import numpy as np

from dlrl.errors import ConfigError


def kfold_indices(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train_idx, val_idx) pairs: a seeded permutation of range(n) cut into k near-equal folds."""
    if k < 2:
        raise ConfigError(f"--folds must be at least 2, got {k}")
    if k > n:
        raise ConfigError(f"--folds {k} is more than the {n} training samples")
    order = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(order, k)
    return [(np.concatenate(folds[:i] + folds[i + 1 :]), folds[i]) for i in range(k)]
