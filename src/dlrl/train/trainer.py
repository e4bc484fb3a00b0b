"""The one supervised trainer. It knows nothing about the model: each experiment supplies a step.

    step(model, batch) -> (loss, metrics)   loss: scalar tensor (batch mean); metrics: name -> scalar tensor

``Trainer`` trains one epoch per call and can be saved and restored between epochs (``state()`` /
``load_state()``): plain runs (``fit``), fine-tuning and every fold of a K-fold search use it. It never
imports ray: hooks connect it to the CLI (metrics.csv, progress) or to Ray Tune.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlrl.errors import CheckpointError
from dlrl.progress import progress_bar
from dlrl.train.checkpoint import check_optimizer_state, check_scheduler_state, load_model_state

Batch = tuple[torch.Tensor, ...]
Step = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return tuple(t.to(device, non_blocking=True) for t in batch)


def _mean_metrics(totals: dict[str, torch.Tensor], count: int) -> dict[str, float]:
    return {name: (value / max(count, 1)).item() for name, value in totals.items()}


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    step: Step,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    grad_clip: float | None = None,
    scheduler: Any = None,
    scheduler_per_batch: bool = False,
    progress: str | None = None,
) -> dict[str, float]:
    """One pass over ``batches``; returns the sample-weighted mean of loss and metrics.

    progress: a label for a per-batch progress bar (terminal or notebook), None for no bar."""
    model.train()
    totals: dict[str, torch.Tensor] = {}
    count = 0
    for batch in progress_bar(batches, progress):
        batch = _to_device(batch, device)
        loss, metrics = step(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None and scheduler_per_batch:
            scheduler.step()
        n = len(batch[0])
        count += n
        for name, value in {"loss": loss, **metrics}.items():
            # Accumulate on the device: .item() would sync every batch.
            totals[name] = totals.get(name, 0) + value.detach() * n
    return _mean_metrics(totals, count)


@torch.no_grad()
def evaluate(
    model: nn.Module, batches: Iterable[Batch], step: Step, device: torch.device
) -> dict[str, float]:
    """Sample-weighted mean of loss and metrics over ``batches``, in eval mode without gradients."""
    model.eval()
    totals: dict[str, torch.Tensor] = {}
    count = 0
    for batch in batches:
        batch = _to_device(batch, device)
        loss, metrics = step(model, batch)
        n = len(batch[0])
        count += n
        for name, value in {"loss": loss, **metrics}.items():
            totals[name] = totals.get(name, 0) + value.detach().float() * n
    return _mean_metrics(totals, count)


class Trainer:
    """A model with its optimizer and schedule, trained one epoch per ``train_epoch()`` call.

    train_batches: re-iterable batches; if they have ``set_epoch`` it is called before each epoch, so the
        order (and augmentation) of epoch e is the same in a resumed run.
    val_batches: validated after each epoch with ``eval_step`` (default: ``step``); None for no validation.
    on_epoch_start(epoch): called before each (0-based) epoch, e.g. to set a KL weight.
    """

    def __init__(
        self,
        model: nn.Module,
        step: Step,
        optimizer: torch.optim.Optimizer,
        train_batches: Any,
        val_batches: Any = None,
        *,
        device: torch.device,
        eval_step: Step | None = None,
        scheduler: Any = None,
        scheduler_per_batch: bool = False,
        grad_clip: float | None = None,
        on_epoch_start: Callable[[int], None] | None = None,
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
        self.on_epoch_start = on_epoch_start
        self.epoch = 0  # epochs trained so far

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def train_epoch(self, progress: str | None = None) -> dict[str, float]:
        """Train one more epoch, then validate; returns ``train_*`` and ``val_*`` metrics."""
        if hasattr(self.train_batches, "set_epoch"):
            self.train_batches.set_epoch(self.epoch)
        if self.on_epoch_start is not None:
            self.on_epoch_start(self.epoch)
        train = train_one_epoch(
            self.model,
            self.train_batches,
            self.step,
            self.optimizer,
            self.device,
            self.grad_clip,
            self.scheduler,
            self.scheduler_per_batch,
            progress,
        )
        if self.scheduler is not None and not self.scheduler_per_batch:
            self.scheduler.step()
        val = {}
        if self.val_batches is not None:
            val = evaluate(self.model, self.val_batches, self.eval_step, self.device)
        self.epoch += 1
        return {**{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items()}}

    def state(self) -> dict[str, Any]:
        """Everything needed to continue: tensors and plain types only (a weights_only checkpoint)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
        }

    def load_state(self, state: dict[str, Any], path: str | Path = "state") -> None:
        """Continue from a ``state()`` of the same trainer (a mismatch: CheckpointError naming path)."""
        load_model_state(self.model, state["model"], path)
        check_optimizer_state(self.optimizer, state["optimizer"], path)
        if self.scheduler is not None and state.get("scheduler") is not None:
            check_scheduler_state(self.scheduler, state["scheduler"], path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"{path}: optimizer state does not match ({err})") from None
        self.epoch = int(state["epoch"])
