"""The one K-fold cross-validation driver: K trainers in lockstep (epoch outer, folds inner).

Used by ``dlrl autoencoder --folds K`` and by every trial of a ``dlrl tune`` search (each experiment's tune
adapter builds its fold trainers, most with ``pool_trainer``). After each epoch the
mean and spread over folds of every metric is reported, so a search scheduler (ASHA) can stop a bad trial
early, and the state of all folds can be checkpointed and resumed exactly.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from dlrl.data.batching import Batches
from dlrl.train.optim import make_optimization
from dlrl.train.trainer import Step, Trainer
from dlrl.utils import derived_seed, resolve_device

log = logging.getLogger(__name__)


@runtime_checkable
class FoldTrainer(Protocol):
    """One fold, trained one epoch at a time (``dlrl.train.trainer.Trainer`` is one)."""

    def train_epoch(self) -> dict[str, float]:
        """Train one more epoch; return its metrics (validation ones prefixed ``val_``)."""
        ...

    def state(self) -> dict[str, Any]:
        """Everything needed to continue: tensors and plain types only (a weights_only checkpoint)."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a ``state()`` of the same fold."""
        ...


# make_fold(fold, train_idx, val_idx) -> a trainer for that fold
MakeFold = Callable[[int, np.ndarray, np.ndarray], FoldTrainer]
# report(row, state): state is None on epochs without a checkpoint
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


@dataclass
class KFoldResult:
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: means/spreads over folds
    fold_histories: list[list[dict[str, float]]] = field(default_factory=list)  # per fold: rows per epoch


def build_folds(
    make_fold: MakeFold, splits: Sequence[tuple[np.ndarray, np.ndarray]], seed: int
) -> list[FoldTrainer]:
    """One trainer per split; torch is seeded before each, so a fold's initial weights depend only on
    (seed, fold), not on the other folds."""
    trainers = []
    for fold, (train_idx, val_idx) in enumerate(splits):
        torch.manual_seed(derived_seed(seed, fold))
        trainers.append(make_fold(fold, train_idx, val_idx))
    return trainers


def run_folds(
    trainers: list[FoldTrainer],
    epochs: int,
    report: Report,
    *,
    metric: str,
    resume_state: dict[str, Any] | None = None,
    checkpoint_every: int = 1,
) -> KFoldResult:
    """Train the folds in lockstep for ``epochs`` epochs; ``report`` gets each epoch's row (means and
    spreads over folds, ``metric`` also per fold) and, every ``checkpoint_every`` epochs and at the end, the
    state to resume from. Stops after an epoch whose ``metric`` is NaN/inf."""
    result = KFoldResult(fold_histories=[[] for _ in trainers])
    start = 0
    if resume_state is not None:
        for trainer, state in zip(trainers, resume_state["folds"], strict=True):
            trainer.load_state(state)
        result.history = list(resume_state["history"])
        result.fold_histories = [list(h) for h in resume_state.get("fold_histories", result.fold_histories)]
        start = int(resume_state["epoch"])
        torch.set_rng_state(resume_state["torch_rng"])
    for epoch in range(start, epochs):
        started = time.perf_counter()
        fold_rows = [trainer.train_epoch() for trainer in trainers]
        for history, fold_row in zip(result.fold_histories, fold_rows, strict=True):
            history.append({"epoch": epoch + 1, **fold_row})
        row = {"epoch": epoch + 1, **aggregate(fold_rows, per_fold=(metric,))}
        row["seconds"] = time.perf_counter() - started
        result.history.append(row)
        state = None
        if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs:
            state = {
                "epoch": epoch + 1,
                "folds": [t.state() for t in trainers],
                "history": result.history,
                "fold_histories": result.fold_histories,
                "torch_rng": torch.get_rng_state(),
            }
        report(row, state)
        if not math.isfinite(row.get(metric, math.nan)):
            log.warning("%s is %s at epoch %d: stopped", metric, row.get(metric), epoch + 1)
            break
    return result


@dataclass
class Pool:
    """The samples K folds are cut from: aligned tensors (an experiment's training + validation part)."""

    x: torch.Tensor
    y: torch.Tensor | None  # None: unsupervised, batches carry x only
    extra: Any = None  # anything else the experiment needs (image shape, a standardizer, ...)

    def __len__(self) -> int:
        return len(self.x)


def pool_trainer(
    cfg: Any,
    model: torch.nn.Module,
    step: Step,
    pool: Pool,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    fold: int,
    *,
    eval_step: Step | None = None,
    transform: Any = None,
    val_transform: Any = None,
    val_batch_size: int = 1024,
    on_epoch_start: Callable[[int], None] | None = None,
) -> Trainer:
    """A Trainer for one fold of ``pool``: train on ``train_idx``, validate on ``val_idx``.

    cfg: an experiment config with batch_size, epochs, seed, device and optim (an OptimConfig)."""
    device = resolve_device(cfg.device)
    tensors = (pool.x,) if pool.y is None else (pool.x, pool.y)
    train_idx_t, val_idx_t = torch.as_tensor(train_idx), torch.as_tensor(val_idx)
    train = Batches(
        *(t[train_idx_t] for t in tensors),
        batch_size=cfg.batch_size,
        shuffle=True,
        seed=derived_seed(cfg.seed, fold),
        transform=transform,
    )
    # a fixed seed: validation noise (DAE) or eps (VAE) is the same draw every epoch
    val = Batches(
        *(t[val_idx_t] for t in tensors),
        batch_size=val_batch_size,
        seed=cfg.seed + 1,
        transform=val_transform,
    )
    model = model.to(device)
    optimizer, scheduler, per_batch = make_optimization(model.parameters(), cfg.optim, cfg.epochs, len(train))
    return Trainer(
        model,
        step,
        optimizer,
        train,
        val,
        device=device,
        eval_step=eval_step,
        scheduler=scheduler,
        scheduler_per_batch=per_batch,
        grad_clip=cfg.optim.grad_clip,
        on_epoch_start=on_epoch_start,
    )
