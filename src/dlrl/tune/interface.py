"""The one interface every experiment plugs into to be searched with ``dlrl tune``.

An adapter says how to load the experiment's data once per trial and how to build one fold's trainer;
the tune layer does the rest (K-fold splits, lockstep epochs, reporting, checkpoints, resume, results).
Nothing here imports ray: adapters and fold trainers run and test the same with or without a search.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from dlrl.config import ExperimentConfig
from dlrl.errors import DlrlError
from dlrl.train.loop import Step, evaluate, train_one_epoch
from dlrl.tune.registry import ADAPTERS


@runtime_checkable
class FoldTrainer(Protocol):
    """One fold of one trial, trained one epoch at a time."""

    def train_epoch(self) -> dict[str, float]:
        """Train one more epoch; return its metrics (validation ones prefixed ``val_``)."""
        ...

    def state(self) -> dict[str, Any]:
        """Everything needed to continue: tensors and plain types only (a weights_only checkpoint)."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a ``state()`` of the same fold."""
        ...


class TuneAdapter(Protocol):
    """What ``dlrl tune`` needs to know about an experiment."""

    name: str  # registry name of the experiment
    config_cls: type[ExperimentConfig]
    metric: str  # default metric to optimise, a key of the fold trainer's metrics (mean over folds)
    mode: str  # "min" or "max"
    metrics: tuple[str, ...]  # what the fold trainers report (means over folds; --metric picks one)

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


class SupervisedFold:
    """A FoldTrainer over the generic loop (train_one_epoch / evaluate): what most experiments need."""

    def __init__(
        self,
        model: nn.Module,
        step: Step,
        optimizer: torch.optim.Optimizer,
        train_batches: Any,
        val_batches: Any,
        device: torch.device,
        *,
        eval_step: Step | None = None,
        scheduler: Any = None,
        scheduler_per_batch: bool = False,
        grad_clip: float | None = None,
    ):
        self.model = model
        self.step = step
        self.eval_step = eval_step or step
        self.optimizer = optimizer
        self.train_batches = train_batches
        self.val_batches = val_batches
        self.device = device
        self.scheduler = scheduler
        self.scheduler_per_batch = scheduler_per_batch
        self.grad_clip = grad_clip
        self.epoch = 0

    def train_epoch(self) -> dict[str, float]:
        if hasattr(self.train_batches, "set_epoch"):
            self.train_batches.set_epoch(self.epoch)
        train = train_one_epoch(
            self.model,
            self.train_batches,
            self.step,
            self.optimizer,
            self.device,
            self.grad_clip,
            self.scheduler,
            self.scheduler_per_batch,
        )
        if self.scheduler is not None and not self.scheduler_per_batch:
            self.scheduler.step()
        val = evaluate(self.model, self.val_batches, self.eval_step, self.device)
        self.epoch += 1
        return {**{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items()}}

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])


def get_adapter(name: str) -> TuneAdapter:
    """The adapter of experiment ``name``; an unknown name is a one-line DlrlError listing the choices."""
    if name not in ADAPTERS:
        raise DlrlError(f"tune: unknown experiment '{name}' (choose from {', '.join(ADAPTERS)})")
    module, _, attribute = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)()
