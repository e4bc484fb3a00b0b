"""Adapters of the experiments to the tune interface: a few lines each over the experiment's own parts.

Adding an experiment: write a class with ``name``, ``config_cls``, ``metric``, ``mode`` and the four
methods of :class:`dlrl.tune.interface.TuneAdapter`, register it in ``dlrl.tune.registry.ADAPTERS``, and
ship a search space in ``dlrl/configs/tune/<name>.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dlrl.data.batching import Batches
from dlrl.train.loop import make_optimizer, make_scheduler
from dlrl.tune.interface import SupervisedFold
from dlrl.utils import resolve_device


@dataclass
class Pool:
    """The data the folds are cut from: aligned tensors (training + validation part of the experiment)."""

    x: torch.Tensor
    y: torch.Tensor | None  # None: unsupervised, batches carry x only
    extra: Any = None  # anything else the experiment needs (class names, a standardizer, ...)


class PoolAdapter:
    """What every adapter over a Pool of samples and an ``epochs`` config field shares."""

    def num_samples(self, data: Pool) -> int:
        return len(data.x)

    def epochs(self, cfg: Any) -> int:
        return cfg.epochs


def _supervised_fold(
    cfg: Any,
    model: torch.nn.Module,
    step: Any,
    pool: Pool,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    fold: int,
    *,
    eval_step: Any = None,
    transform: Any = None,
    val_transform: Any = None,
    val_batch_size: int = 1024,
) -> SupervisedFold:
    device = resolve_device(cfg.device)
    train_idx_t, val_idx_t = torch.as_tensor(train_idx), torch.as_tensor(val_idx)
    tensors = (pool.x,) if pool.y is None else (pool.x, pool.y)
    train = Batches(
        *(t[train_idx_t] for t in tensors),
        batch_size=cfg.batch_size,
        shuffle=True,
        seed=cfg.seed * 1_000 + fold,
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
    optimizer = make_optimizer(model.parameters(), cfg.optim)
    scheduler, per_batch = make_scheduler(optimizer, cfg.optim, cfg.epochs, len(train))
    return SupervisedFold(
        model,
        step,
        optimizer,
        train,
        val,
        device,
        eval_step=eval_step,
        scheduler=scheduler,
        scheduler_per_batch=per_batch,
        grad_clip=cfg.optim.grad_clip,
    )


class ClassifierAdapter(PoolAdapter):
    name = "classifier"
    metric = "val_accuracy"
    mode = "max"
    metrics = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")

    @property
    def config_cls(self) -> type:
        from dlrl.config.classifier import ClassifierConfig

        return ClassifierConfig

    def load_data(self, cfg: Any) -> Pool:
        from dlrl.data.images import load_images

        data = load_images(cfg.data)
        return Pool(
            torch.cat([data.train_x, data.val_x]),
            torch.cat([data.train_y, data.val_y]),
            extra=(data.image_shape, len(data.classes)),
        )

    def fold_trainer(
        self, cfg: Any, data: Pool, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> SupervisedFold:
        from dlrl.experiments import classifier

        image_shape, num_classes = data.extra
        model = classifier.build_model(cfg, image_shape, num_classes)
        bf16 = classifier.use_bf16(cfg, resolve_device(cfg.device))  # the same arithmetic as the final run
        return _supervised_fold(
            cfg,
            model,
            classifier.make_step(cfg.label_smoothing, bf16),
            data,
            train_idx,
            val_idx,
            fold,
            eval_step=classifier.make_step(bf16=bf16),
            transform=classifier.make_augment(cfg),
        )


class RegressionAdapter(PoolAdapter):
    name = "regression"
    metric = "val_mse"
    mode = "min"
    metrics = ("val_mse", "val_loss", "train_mse", "train_loss")

    @property
    def config_cls(self) -> type:
        from dlrl.config.regression import RegressionConfig

        return RegressionConfig

    def load_data(self, cfg: Any) -> Pool:
        """Training + validation points, standardised as the experiment does (scalers of its train part)."""
        from dlrl.experiments import regression

        data = regression.load_data(cfg)
        train, val = data.dataset("train"), data.dataset("val")
        return Pool(torch.cat([train.x, val.x]), torch.cat([train.y, val.y]), extra=data.y_scaler.std)

    def fold_trainer(
        self, cfg: Any, data: Pool, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> SupervisedFold:
        from dlrl.experiments import regression

        y_var = float(data.extra) ** 2

        def step(model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            loss, metrics = regression.mse_step(model, batch)
            return loss, {**metrics, "mse": loss.detach() * y_var}  # MSE in the data's units, like test_mse

        return _supervised_fold(
            cfg, regression.build_model(cfg), step, data, train_idx, val_idx, fold, val_batch_size=4096
        )


class AutoEncoderAdapter(PoolAdapter):
    """AE, DAE and VAE (``variant=``): reconstruction on held-out folds of the training images."""

    name = "autoencoder"
    metric = "val_loss"
    mode = "min"
    metrics = ("val_loss", "val_mse", "train_loss", "train_mse")

    @property
    def config_cls(self) -> type:
        from dlrl.config.autoencoder import AutoEncoderConfig

        return AutoEncoderConfig

    def load_data(self, cfg: Any) -> Pool:
        from dlrl.data.images import load_images

        data = load_images(cfg.data)
        return Pool(torch.cat([data.train_x, data.val_x]), None)

    def fold_trainer(
        self, cfg: Any, data: Pool, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> SupervisedFold:
        from dlrl.experiments import autoencoder as ae

        trainer: list[SupervisedFold] = []  # the step's KL warm-up reads the fold's current epoch
        step = ae.make_step(cfg, beta=lambda: ae.beta_at(cfg, trainer[0].train_batches.epoch))
        transform = ae.make_transform(cfg)
        trainer.append(
            _supervised_fold(
                cfg,
                ae.build_model(cfg),
                step,
                data,
                train_idx,
                val_idx,
                fold,
                eval_step=ae.make_step(cfg),
                transform=transform,
                val_transform=transform,
            )
        )
        return trainer[0]
