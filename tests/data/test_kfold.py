"""Reproducible K-fold splits."""

from __future__ import annotations

import numpy as np
import pytest

from dlrl.data.kfold import kfold_indices
from dlrl.errors import ConfigError


@pytest.mark.parametrize(("n", "k"), [(10, 2), (103, 5), (7, 7)])
def test_folds_are_disjoint_and_cover_everything(n: int, k: int) -> None:
    folds = kfold_indices(n, k, seed=0)
    assert len(folds) == k
    validation = np.concatenate([val for _, val in folds])
    assert sorted(validation.tolist()) == list(range(n))  # each sample validates exactly once
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, val in folds:
        assert not set(train.tolist()) & set(val.tolist())
        assert sorted(np.concatenate([train, val]).tolist()) == list(range(n))


def test_reproducible_and_seed_dependent() -> None:
    a, b, c = kfold_indices(50, 5, 1), kfold_indices(50, 5, 1), kfold_indices(50, 5, 2)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize(
    ("n", "k", "match"), [(10, 1, "at least 2"), (10, 0, "at least 2"), (3, 4, "more than")]
)
def test_bad_k(n: int, k: int, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        kfold_indices(n, k, 0)
