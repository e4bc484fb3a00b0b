"""The README's "Add an experiment" walkthrough, as code: a line y = 2x + 1 fitted by one linear layer.

An experiment is a config class, a ``run(cfg, run_dir, resume) -> summary`` function, optional ``TARGETS``
and ``evaluate``/``load_model``, and (to be searched by ``dlrl tune``) an adapter; registering it makes the
CLI, the Python API, the tune layer and the report pick it up.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from dlrl.config import ExperimentConfig, OptimConfig
from dlrl.experiments import ExperimentEntry, register
from dlrl.rundir import RunDir
from dlrl.train.fit import fit
from dlrl.train.kfold import Pool, pool_trainer
from dlrl.train.trainer import Trainer
from dlrl.tuning.adapter import PoolAdapter
from dlrl.viz.common import plot_curves

NOISE_STD = 0.1


class ToyConfig(ExperimentConfig):
    points: int = Field(96, ge=8)
    """Noisy points of y = 2x + 1, x uniform in [-1, 1]."""
    batch_size: int = Field(16, ge=1)
    """Points per batch."""
    epochs: int = Field(40, gt=0)
    """Passes over the training points."""
    optim: OptimConfig = OptimConfig(lr=0.05, schedule="none")
    """Optimizer and schedule."""

    QUICK: ClassVar[dict[str, Any]] = {"epochs": 20}


TARGETS = [
    {
        "metric": "test_mse",
        "op": "<=",
        "value": 2 * NOISE_STD**2,
        "label": "test MSE at most twice the noise variance",
        "reference": "the noise variance is the best any model can do",
    }
]


def load_data(cfg: ToyConfig) -> Pool:
    rng = np.random.default_rng(cfg.seed)
    x = rng.uniform(-1, 1, size=(cfg.points, 1))
    y = 2 * x + 1 + rng.normal(0, NOISE_STD, size=x.shape)
    return Pool(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32))


def mse_step(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict]:
    x, y = batch
    return torch.mean((model(x) - y) ** 2), {}


def make_trainer(
    cfg: ToyConfig, pool: Pool, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
) -> Trainer:
    return pool_trainer(cfg, nn.Linear(1, 1), mse_step, pool, train_idx, val_idx, fold)


def run(cfg: ToyConfig, run_dir: RunDir, resume: bool = False) -> dict[str, Any]:
    pool = load_data(cfg)
    split = int(0.75 * len(pool))
    trainer = make_trainer(cfg, pool, np.arange(split), np.arange(split, len(pool)), 0)
    result = fit(
        trainer,
        cfg.epochs,
        checkpoint_dir=run_dir.checkpoints,
        resume=resume,
        on_epoch_end=run_dir.metrics_hook(resume),
    )
    run_dir.save_figure(plot_curves(result.history, {"MSE": ["train_loss", "val_loss"]}), "learning_curves")
    layer = trainer.model
    return {
        "test_mse": result.history[-1]["val_loss"],
        "slope": float(layer.weight.item()),
        "intercept": float(layer.bias.item()),
        "epochs_run": len(result.history),
    }


class ToyAdapter(PoolAdapter):
    name = "toy"
    command = "toy"
    config_cls = ToyConfig
    metric = "val_loss"
    mode = "min"
    metrics = ("val_loss", "train_loss")

    def load_data(self, cfg: ToyConfig) -> Pool:
        return load_data(cfg)

    def fold_trainer(
        self, cfg: ToyConfig, data: Pool, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> Trainer:
        return make_trainer(cfg, data, train_idx, val_idx, fold)


def register_toy() -> None:
    register(
        ExperimentEntry(
            "toy",
            "A line fitted by one linear layer (the README's walkthrough)",
            f"{__name__}:ToyConfig",
            __name__,
            adapter=f"{__name__}:ToyAdapter",
        )
    )
