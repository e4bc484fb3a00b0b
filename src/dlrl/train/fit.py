"""Train a ``Trainer`` for a number of epochs: early stopping, best/last checkpoints, exact resume."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dlrl.errors import CheckpointError
from dlrl.train.checkpoint import load_checkpoint, save_checkpoint
from dlrl.train.trainer import Trainer

log = logging.getLogger(__name__)

# on_epoch_end(epoch, row) -> False stops training
EpochHook = Callable[[int, dict[str, float]], bool | None]
# After each epoch: how many epochs the run has from now on (a run may settle its length as it goes).
Replan = Callable[[Trainer, list[dict[str, float]]], int]


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_metric: float = math.inf
    best_epoch: int = -1
    stopped_early: bool = False
    waited: int = 0  # epochs since the monitored metric last improved
    finished: bool = False  # the checkpoint says training ended (all epochs, or stopped early)


@dataclass
class Monitor:
    """Which metric decides best.pt and early stopping."""

    metric: str = "val_loss"
    mode: str = "min"  # "min" or "max"
    patience: int | None = None  # epochs without improvement before stopping; None: never stop early

    def improved(self, result: FitResult, current: float) -> bool:
        """The first epoch always counts (so best.pt exists even if the metric is NaN); NaN never improves."""
        best = result.best_metric
        sign = 1.0 if self.mode == "min" else -1.0
        return (
            result.best_epoch < 0
            or sign * current < sign * best
            or (math.isnan(best) and not math.isnan(current))
        )


def _resume(trainer: Trainer, path: Path, result: FitResult) -> None:
    """Continue ``trainer`` and ``result`` from the checkpoint at ``path`` (its model, optimizer, RNG)."""
    state = load_checkpoint(path, required=("model", "optimizer", "epoch", "history"))
    trainer.load_state(state, path)
    if "torch_rng" in state:
        try:
            torch.set_rng_state(state["torch_rng"])
        except (RuntimeError, TypeError) as err:
            raise CheckpointError(f"{path}: bad RNG state ({err})") from None
    history = state["history"]
    if not isinstance(history, list) or len(history) != trainer.epoch or not all(map(_is_row, history)):
        raise CheckpointError(
            f"{path}: history is not one row of numbers per epoch up to epoch {trainer.epoch}"
        )
    result.history = list(history)
    result.best_metric = float(state.get("best_metric", result.best_metric))
    result.best_epoch = int(state.get("best_epoch", -1))
    result.waited = int(state.get("waited", 0))
    result.finished = bool(state.get("finished"))


def _is_row(row: Any) -> bool:
    """One epoch's row of a checkpoint's history: names to numbers (what ``_row`` makes)."""
    return isinstance(row, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, int | float)) for k, v in row.items()
    )


def _row(trainer: Trainer, metrics: dict[str, float], seconds: float) -> dict[str, float]:
    return {"epoch": trainer.epoch, **metrics, "lr": trainer.lr, "seconds": seconds}


def _log_row(row: dict[str, float], epochs: int) -> None:
    shown = "  ".join(f"{k}={v:.4g}" for k, v in row.items() if k not in ("epoch", "seconds"))
    log.info("epoch %d/%d  %s  (%.1fs)", row["epoch"], epochs, shown, row["seconds"])


def fit(
    trainer: Trainer,
    epochs: int,
    monitor: Monitor | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    extra_state: dict[str, Any] | None = None,
    resume: bool = False,
    on_epoch_end: EpochHook = None,
    replan: Replan | None = None,
    progress: bool = True,
) -> FitResult:
    """Train for ``epochs`` epochs (validating after each), stop early as ``monitor`` says, checkpoint.

    With ``checkpoint_dir``, ``last.pt`` (the trainer's state, history, RNG state) is written after every
    epoch and ``best.pt`` when the monitored metric improves. ``resume=True`` continues from ``last.pt`` and
    ends with the same metrics as an uninterrupted run with the same seed. ``extra_state`` (plain types) is
    stored in both checkpoints, e.g. the resolved config. ``replan``, after each epoch (before its
    checkpoint), returns the run's length from then on.
    """
    monitor = monitor or Monitor()
    result = FitResult(best_metric=math.inf if monitor.mode == "min" else -math.inf)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else None
    if resume and ckpt_dir and (ckpt_dir / "last.pt").exists():
        _resume(trainer, ckpt_dir / "last.pt", result)
        if result.finished:
            log.info("%s: run already finished; nothing to resume", ckpt_dir / "last.pt")
            return result
        log.info("resuming from epoch %d of %d", trainer.epoch + 1, epochs)
    while trainer.epoch < epochs:
        started = time.perf_counter()
        label = f"epoch {trainer.epoch + 1}/{epochs}" if progress else None
        metrics = trainer.train_epoch(progress=label)
        row = _row(trainer, metrics, time.perf_counter() - started)
        result.history.append(row)
        current = row.get(monitor.metric, row.get("train_loss", math.nan))
        improved = monitor.improved(result, current)
        if improved:
            result.best_metric, result.best_epoch, result.waited = current, trainer.epoch, 0
        else:
            result.waited += 1
        _log_row(row, epochs)
        stop = monitor.patience is not None and result.waited >= monitor.patience
        if on_epoch_end is not None and on_epoch_end(trainer.epoch, row) is False:
            stop = True
        if replan is not None:
            epochs = replan(trainer, result.history)
        if ckpt_dir:
            _save(trainer, result, ckpt_dir, improved, stop or trainer.epoch == epochs, extra_state)
        if stop:
            result.stopped_early = trainer.epoch < epochs
            break
    return result


def _save(
    trainer: Trainer,
    result: FitResult,
    ckpt_dir: Path,
    improved: bool,
    finished: bool,
    extra_state: dict[str, Any] | None,
) -> None:
    state = {
        **trainer.state(),
        "history": result.history,
        "best_metric": result.best_metric,
        "best_epoch": result.best_epoch,
        "waited": result.waited,
        "torch_rng": torch.get_rng_state(),
        "finished": finished,
        **(extra_state or {}),
    }
    if improved:
        save_checkpoint(ckpt_dir / "best.pt", state)
    save_checkpoint(ckpt_dir / "last.pt", state)
