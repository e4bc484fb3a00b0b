"""The one place that builds an optimizer and its learning-rate schedule from an ``OptimConfig``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from dlrl.config import OptimConfig

# torch accepts parameters or parameter groups ({"params": [...], "lr": ...}; a group's lr wins).
Params = Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]


def make_optimizer(params: Params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
    # fused: one kernel for all parameters instead of a Python loop (a third of an MLP's step time on CPU).
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, epochs: int, steps_per_epoch: int
) -> tuple[Any, bool]:
    """(scheduler, steps_per_batch) for ``cfg.schedule``; (None, False) for 'none'.

    One-cycle peaks at each parameter group's own lr, so a group with a lower rate (a pretrained encoder)
    keeps its ratio to the others."""
    total = max(1, epochs * steps_per_epoch)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), True
    if cfg.schedule == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=total, pct_start=rising_share(cfg, epochs)
        ), True
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), False
    return None, False


def make_optimization(
    params: Params, cfg: OptimConfig, epochs: int, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, Any, bool]:
    """(optimizer, scheduler, scheduler steps per batch): what every trainer is built with."""
    optimizer = make_optimizer(params, cfg)
    scheduler, per_batch = make_scheduler(optimizer, cfg, epochs, steps_per_epoch)
    return optimizer, scheduler, per_batch


# One-cycle's share of the run spent warming up when optim.warmup_epochs is not given (torch's default)
DEFAULT_WARMUP_SHARE = 0.3


def rising_share(cfg: OptimConfig, epochs: int) -> float:
    """One-cycle's share of the run spent warming up (torch's pct_start)."""
    if cfg.warmup_epochs is None:
        return DEFAULT_WARMUP_SHARE
    return float(cfg.warmup_epochs) / max(1, epochs)


def onecycle_of_new_length(
    scheduler: torch.optim.lr_scheduler.OneCycleLR, cfg: OptimConfig, epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.OneCycleLR:
    """``scheduler`` (one-cycle, ``cfg.warmup_epochs`` given) made ``epochs`` long at the step it has
    reached: the warm-up, fixed in epochs, is unchanged, so before its end the learning rates and momenta so
    far are the ones the new length gives from the start."""
    assert cfg.schedule == "onecycle" and cfg.warmup_epochs is not None
    optimizer = scheduler.optimizer
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["max_lr"] for group in optimizer.param_groups],
        total_steps=max(1, epochs * steps_per_epoch),
        pct_start=rising_share(cfg, epochs),
        last_epoch=scheduler.last_epoch - 1,  # steps taken; the constructor takes the next one
    )
