"""One trial: K folds trained in lockstep (epoch outer, folds inner), the mean over folds reported per epoch.

``run_folds`` is plain Python (no ray): it takes a ``report(metrics, state)`` callback and an optional
state to resume from. ``tune_trainable`` is the thin Ray Tune wrapper around it.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlrl.data.kfold import kfold_indices
from dlrl.train.checkpoint import load_checkpoint, save_checkpoint
from dlrl.tune.interface import get_adapter
from dlrl.tune.space import apply_params
from dlrl.utils import configure_torch, seed_everything

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "trial.pt"
# report(metrics, state): state is None on epochs without a checkpoint
Report = Callable[[dict[str, float], dict[str, Any] | None], None]


def aggregate(fold_metrics: list[dict[str, float]], per_fold: tuple[str, ...] = ()) -> dict[str, float]:
    """Mean and (population) standard deviation over folds of every metric; ``per_fold`` keys also per fold.

    [{"val_loss": 1.0}, {"val_loss": 3.0}] -> {"val_loss": 2.0, "val_loss_std": 1.0}
    """
    row: dict[str, float] = {}
    for key in fold_metrics[0]:
        values = np.array([m[key] for m in fold_metrics], dtype=float)
        row[key] = float(values.mean())
        row[f"{key}_std"] = float(values.std())
        if key in per_fold:
            row.update({f"{key}_fold{i}": float(v) for i, v in enumerate(values)})
    return row


def run_folds(
    experiment: str,
    base: dict[str, Any],
    params: dict[str, Any],
    folds: int,
    split_seed: int,
    report: Report,
    resume_state: dict[str, Any] | None = None,
    checkpoint_every: int = 1,
    metric: str | None = None,
) -> list[dict[str, float]]:
    """Train ``folds`` folds of ``params`` applied to ``base`` for the config's epochs; returns the rows.

    Fold splits depend only on ``split_seed`` (the search seed), so every trial sees the same folds.
    A trial whose metric turns NaN/inf reports it once and stops.
    """
    adapter = get_adapter(experiment)
    cfg = apply_params(adapter.config_cls, base, params)
    seed_everything(cfg.seed)
    data = adapter.load_data(cfg)
    splits = kfold_indices(adapter.num_samples(data), folds, split_seed)
    trainers = []
    for fold, (train_idx, val_idx) in enumerate(splits):
        torch.manual_seed(cfg.seed * 1_000 + fold)  # each fold's initial weights, independent of the others
        trainers.append(adapter.fold_trainer(cfg, data, train_idx, val_idx, fold))
    history: list[dict[str, float]] = []
    start = 0
    if resume_state is not None:
        for trainer, state in zip(trainers, resume_state["folds"], strict=True):
            trainer.load_state(state)
        history = list(resume_state["history"])
        start = int(resume_state["epoch"])
        torch.set_rng_state(resume_state["torch_rng"])
    metric = metric or adapter.metric
    epochs = adapter.epochs(cfg)
    for epoch in range(start, epochs):
        started = time.perf_counter()
        row = {"epoch": epoch + 1, **aggregate([t.train_epoch() for t in trainers], per_fold=(metric,))}
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        finite = math.isfinite(row.get(metric, math.nan))
        state = None
        if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs:
            state = {
                "epoch": epoch + 1,
                "folds": [t.state() for t in trainers],
                "history": history,
                "torch_rng": torch.get_rng_state(),
            }
        report(row, state)
        if not finite:
            log.warning("%s is %s at epoch %d: trial stopped", metric, row.get(metric), epoch + 1)
            break
    return history


def tune_trainable(
    params: dict[str, Any],
    *,
    experiment: str,
    base: dict[str, Any],
    folds: int,
    split_seed: int,
    threads: int,
    checkpoint_every: int,
    metric: str,
) -> None:
    """The Ray Tune function trainable: ``run_folds`` with tune.report / tune.get_checkpoint."""
    from ray import tune

    configure_torch(threads)
    resume_state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume_state = load_checkpoint(Path(directory) / CHECKPOINT_FILE)

    def report(row: dict[str, float], state: dict[str, Any] | None) -> None:
        if state is None:
            tune.report(row)
            return
        with tempfile.TemporaryDirectory(prefix="dlrl-trial-") as directory:
            save_checkpoint(Path(directory) / CHECKPOINT_FILE, state)
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(directory))

    run_folds(experiment, base, params, folds, split_seed, report, resume_state, checkpoint_every, metric)
