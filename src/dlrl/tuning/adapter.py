"""The one interface every experiment implements to be searched with ``dlrl tune``.

An adapter says how to check and load the experiment's data once per trial and how to build one fold's
trainer; the tune layer does the rest (K-fold splits, lockstep epochs, reporting, checkpoints, resume,
results). Each experiment module exports its own adapter; this layer imports none of them. Nothing here
imports ray: adapters and fold trainers run and test the same with or without a search.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from dlrl.config import ExperimentConfig
from dlrl.train.kfold import FoldTrainer, Pool


class TuneAdapter(Protocol):
    """What ``dlrl tune`` needs to know about an experiment."""

    name: str  # registry name of the experiment
    command: str  # the CLI command that trains one config of it (for best_config.yaml's header)
    config_cls: type[ExperimentConfig]
    metric: str  # default metric to optimise, a key of the fold trainer's metrics (mean over folds)
    mode: str  # "min" or "max"
    metrics: tuple[str, ...]  # what the fold trainers report (means over folds; --metric picks one)

    def validate(self, cfg: Any) -> None:
        """Checks that need files (a CSV, an env id), before anything is written or Ray starts."""
        ...

    def load_data(self, cfg: Any) -> Any:
        """Load the data once per trial: training/validation part only, the test set is never needed."""
        ...

    def num_samples(self, data: Any) -> int:
        """Size of the pool the K folds are cut from (the experiment's training + validation data)."""
        ...

    def epochs(self, cfg: Any) -> int:
        """Epochs (reports) of one trial: ASHA's max_t."""
        ...

    def fold_trainer(
        self, cfg: Any, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> FoldTrainer:
        """A trainer for one fold: train on ``train_idx`` of the pool, validate on ``val_idx``."""
        ...


class PoolAdapter:
    """What every adapter over a ``Pool`` of samples and an ``epochs`` config field shares."""

    def validate(self, cfg: Any) -> None:
        return None

    def num_samples(self, data: Pool) -> int:
        return len(data)

    def epochs(self, cfg: Any) -> int:
        return cfg.epochs
