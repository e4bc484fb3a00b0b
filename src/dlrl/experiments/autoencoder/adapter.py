"""``dlrl tune autoencoder``: AE, DAE and VAE (``variant=``), reconstruction on held-out folds."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dlrl.config.autoencoder import AutoEncoderConfig
from dlrl.data.images import load_images
from dlrl.experiments.autoencoder.model import KLWeight, build_model, make_step, make_transform
from dlrl.train.kfold import Pool, pool_trainer
from dlrl.train.trainer import Trainer
from dlrl.tuning.adapter import PoolAdapter


class AutoEncoderAdapter(PoolAdapter):
    name = "autoencoder"
    command = "autoencoder"
    config_cls = AutoEncoderConfig
    metric = "val_loss"
    mode = "min"
    metrics = ("val_loss", "val_mse", "train_loss", "train_mse")

    def load_data(self, cfg: AutoEncoderConfig) -> Pool:
        data = load_images(cfg.data)
        return Pool(torch.cat([data.train_x, data.val_x]), None)

    def fold_trainer(
        self, cfg: AutoEncoderConfig, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> Trainer:
        transform = make_transform(cfg)
        kl_weight = KLWeight(cfg)
        return pool_trainer(
            cfg,
            build_model(cfg),
            make_step(cfg, kl_weight),
            data,
            train_idx,
            val_idx,
            fold,
            eval_step=make_step(cfg),
            transform=transform,
            val_transform=transform,
            on_epoch_start=kl_weight.set_epoch,
        )
