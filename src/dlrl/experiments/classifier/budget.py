"""epochs=auto: how many epochs fit the time budget on this machine, timed on a few real batches before
training, which recipe (full, narrow or short) makes the most of them, and the line that says so (chosen
epochs, recipe, precision, ETA)."""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlrl.config.classifier import ClassifierConfig, stored_warmup
from dlrl.data.images import ImageData
from dlrl.experiments.classifier.model import (
    build_model,
    make_step,
    native_bf16,
    predict,
    prediction_view_count,
    training_batches,
    use_bf16,
)
from dlrl.progress import format_seconds
from dlrl.rundir import RunDir
from dlrl.train.checkpoint import load_checkpoint
from dlrl.train.optim import DEFAULT_WARMUP_SHARE, make_optimization, onecycle_of_new_length
from dlrl.train.trainer import Trainer, train_one_epoch

log = logging.getLogger(__name__)

# Timing an epoch (for epochs=auto and the ETA): a few batches untimed (allocations, kernels), then timed.
WARMUP_BATCHES, TIMED_BATCHES = 3, 40
# epochs=auto: the run's length is settled again after its first epochs, from their own times. A few hundred
# batches timed beforehand are a second of a shared machine whose speed moves by a third within seconds
# (a 2-core cloud EPYC: timed 3.60 s per epoch, then ran at 3.01, so 36 epochs where 43 fitted).
REPLAN_AFTER = 3
# recipe=auto keeps the first recipe of which this share of max_epochs fits the budget: the full one's width
# and shifts pay off over about 60 of its 90 epochs (91.44-91.52% at 60 with native bf16 and AMX; cut to the
# 38-49 that fit without AMX 91.1%, like the short recipe's).
ENOUGH_OF_MAX_EPOCHS = 2 / 3


@dataclass
class EpochPlan:
    """How many epochs a run trains and why, with the timings behind an epochs=auto choice."""

    epochs: int
    source: str  # "config": given; "time_budget": timed here; "checkpoint": the interrupted run's choice
    precision: str  # "bf16" or "fp32": the matmuls' arithmetic
    seconds_per_epoch: float | None = None  # estimated: training batches and validation
    test_seconds: float | None = None  # estimated: the final test prediction (every view)
    timed_batches: int = 0
    recipe: str = "full"  # a key of ClassifierConfig.RECIPES
    recipe_changes: dict[str, Any] = field(default_factory=dict)  # what that recipe changed
    full_seconds_per_epoch: float | None = None  # recipe=auto chose another recipe: the full one's timing
    first_epochs: int | None = None  # set again after REPLAN_AFTER epochs: the epochs chosen before training
    replanned_seconds_per_epoch: float | None = None  # ... at this speed, the mean of those epochs

    @property
    def eta_seconds(self) -> float | None:
        if self.seconds_per_epoch is None or self.test_seconds is None:
            return None
        return self.epochs * self.seconds_per_epoch + self.test_seconds


def epochs_within(budget: float, seconds_per_epoch: float, max_epochs: int) -> int:
    """Whole epochs that fit ``budget`` seconds, at least 1 and at most ``max_epochs``."""
    if not seconds_per_epoch > 0:
        return max_epochs
    return max(1, min(max_epochs, math.floor(budget / seconds_per_epoch)))


def time_schedule(cfg: ClassifierConfig, data: ImageData, device: torch.device) -> tuple[float, float, int]:
    """(seconds per epoch, seconds of the test prediction, batches timed), estimated from a few training
    steps of a scratch network of ``cfg`` (the classifier's own step, optimizer, batch size and
    augmentation) and one forward pass over up to 2,048 validation images. Changes no state of the run: the
    global RNG is restored, so the chosen epochs train exactly as if they had been given."""
    bf16 = use_bf16(cfg, device)
    gpus = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        scratch = build_model(cfg, data.image_shape, len(data.classes)).to(device)
        batches = training_batches(cfg, data)
        epochs = cfg.epochs if isinstance(cfg.epochs, int) else cfg.max_epochs  # the schedule's, as built
        optimizer, _, _ = make_optimization(scratch.parameters(), cfg.optim, epochs, len(batches))
        step = make_step(cfg.label_smoothing, bf16)
        stream = iter(batches)
        warmup = min(WARMUP_BATCHES, max(len(batches) - 1, 0))
        timed = min(TIMED_BATCHES, len(batches) - warmup)
        clip = cfg.optim.grad_clip
        if warmup:
            train_one_epoch(scratch, itertools.islice(stream, warmup), step, optimizer, device, clip)
        seconds = []
        for _ in range(timed):
            started = time.perf_counter()
            train_one_epoch(scratch, itertools.islice(stream, 1), step, optimizer, device, clip)
            seconds.append(time.perf_counter() - started)
        # The median: a batch slowed by another process on a shared machine must not cost the run epochs.
        per_batch = float(np.median(seconds)) if seconds else 0.0
        probe = (data.val_x if len(data.val_x) else data.test_x)[:2048]
        started = time.perf_counter()
        predict(scratch, probe, device, bf16=bf16)
        per_image = (time.perf_counter() - started) / max(len(probe), 1)
    views = prediction_view_count(cfg)
    test_passes = views + 1 if views > 1 else 1  # the averaged views, then the single-view accuracy
    per_epoch = per_batch * len(batches) + per_image * len(data.val_x)
    return per_epoch, per_image * len(data.test_x) * test_passes, timed


def plan_epochs(
    cfg: ClassifierConfig, data: ImageData, device: torch.device, run_dir: RunDir, resume: bool
) -> tuple[ClassifierConfig, EpochPlan]:
    """The config this run trains and how many epochs: as configured, the interrupted run's choice on
    resume, or (epochs=auto) as many as fit ``cfg.time_budget`` at the speed timed on this machine, capped
    at ``cfg.max_epochs``; with recipe=auto, in the recipe that fits enough of them (ENOUGH_OF_MAX_EPOCHS).
    The config returned has its epochs and recipe settled, as config.yaml records them."""
    precision = "bf16" if use_bf16(cfg, device) else "fp32"
    last = run_dir.checkpoints / "last.pt"
    if cfg.epochs == "auto" and resume and last.is_file():
        stored = load_checkpoint(last).get("config", {})
        chosen = stored.get("epochs")
        if isinstance(chosen, int) and not isinstance(chosen, bool):
            recipe = stored["recipe"] if stored.get("recipe") in ClassifierConfig.RECIPES else "full"
            cfg = cfg.with_recipe(recipe)[0]
            warmup = stored_warmup(stored)
            plan = EpochPlan(chosen, "checkpoint", precision, recipe=recipe)
            return settled(cfg, chosen, recipe, warmup), plan
    recipe = "full" if cfg.recipe == "auto" else cfg.recipe
    given, (cfg, changes) = cfg, cfg.with_recipe(recipe)
    # Timed for the ETA too when the epochs are given: a second or two of a run that takes minutes.
    timing = time_schedule(cfg, data, device)
    if cfg.epochs != "auto":
        plan = EpochPlan(int(cfg.epochs), "config", precision, *timing, recipe, changes)
        return settled(cfg, plan.epochs, recipe), plan
    full_per_epoch = None
    if cfg.recipe == "auto":
        full_timing, enough = timing, ENOUGH_OF_MAX_EPOCHS * cfg.max_epochs
        for fallback in list(ClassifierConfig.RECIPES)[1:]:  # narrow, then short
            if epochs_within(cfg.time_budget, timing[0], cfg.max_epochs) >= enough:
                break
            recipe, (cfg, changes) = fallback, given.with_recipe(fallback)
            timing = time_schedule(cfg, data, device) if changes else full_timing
            full_per_epoch = full_timing[0]
    epochs = epochs_within(cfg.time_budget, timing[0], cfg.max_epochs)
    plan = EpochPlan(epochs, "time_budget", precision, *timing, recipe, changes, full_per_epoch)
    return settled(cfg, epochs, recipe, round(DEFAULT_WARMUP_SHARE * epochs, 2)), plan


def settled(
    cfg: ClassifierConfig, epochs: int, recipe: str, warmup_epochs: float | None = None
) -> ClassifierConfig:
    """``cfg`` with its epochs and recipe as chosen (what config.yaml records: --config re-runs them), and
    with epochs=auto, one-cycle's warm-up fixed in epochs (unless given): the length can change during it
    (``Replanner``) without changing a step of the schedule so far."""
    update: dict[str, Any] = {"epochs": epochs, "recipe": recipe}
    optim = cfg.optim
    if warmup_epochs is not None and optim.schedule == "onecycle" and optim.warmup_epochs is None:
        update["optim"] = optim.model_copy(update={"warmup_epochs": warmup_epochs})
    return cfg.model_copy(update=update)


class Replanner:
    """epochs=auto, after REPLAN_AFTER epochs: the run's length set again to what fits ``time_budget`` at
    the speed those epochs ran, while the one-cycle warm-up (fixed in epochs) is still under
    way, so the schedule so far is the one the new length gives from the start: config.yaml then records the
    new length and `--config RUN/config.yaml` re-runs it."""

    def __init__(self, cfg: ClassifierConfig, plan: EpochPlan, run_dir: RunDir, state: dict[str, Any]):
        self.cfg, self.plan, self.run_dir, self.state = cfg, plan, run_dir, state

    @staticmethod
    def applies(cfg: ClassifierConfig, plan: EpochPlan) -> bool:
        warmup = cfg.optim.warmup_epochs
        onecycle = cfg.optim.schedule == "onecycle" and warmup is not None and warmup >= REPLAN_AFTER
        return plan.source == "time_budget" and (cfg.optim.schedule == "none" or onecycle)

    def __call__(self, trainer: Trainer, history: list[dict[str, float]]) -> int:
        if trainer.epoch != REPLAN_AFTER or len(history) != REPLAN_AFTER:
            return self.cfg.epochs
        spent = sum(row["seconds"] for row in history)
        # The mean, first epoch included: on the 2-core EPYC the first ran ~20% slower and the next two faster
        # than the rest (4.1, 3.3, 3.3 s, then 3.85 s on average); their median overran the budget by 16%.
        per_epoch = spent / len(history)
        left = epochs_within(self.cfg.time_budget - spent, per_epoch, self.cfg.max_epochs - trainer.epoch)
        epochs = max(trainer.epoch + left, math.floor(self.cfg.optim.warmup_epochs or 0) + 1)
        self.plan.first_epochs, self.plan.replanned_seconds_per_epoch = self.cfg.epochs, per_epoch
        if epochs != self.cfg.epochs:
            if trainer.scheduler is not None:
                steps = len(trainer.train_batches)
                trainer.scheduler = onecycle_of_new_length(trainer.scheduler, self.cfg.optim, epochs, steps)
            self.cfg = self.cfg.model_copy(update={"epochs": epochs})
            self.run_dir.write_config(self.cfg)
            self.state["config"] = self.cfg.model_dump(mode="json")  # what the checkpoints hold
            self.plan.epochs = epochs
        log.info(
            "classifier: %d epochs (%s after %d epochs of %.2f s; timed %.2f s per epoch before training)",
            epochs,
            "kept" if epochs == self.plan.first_epochs else f"not {self.plan.first_epochs}",
            trainer.epoch,
            per_epoch,
            self.plan.seconds_per_epoch or math.nan,
        )
        return epochs


def describe_plan(cfg: ClassifierConfig, plan: EpochPlan, device: torch.device) -> str:
    """The line printed before training: epochs and why, precision and why, ETA."""
    if plan.source == "config":
        why = "as configured"
    elif plan.source == "checkpoint":
        why = "chosen by the interrupted run"
    else:
        assert plan.seconds_per_epoch is not None
        fit_budget = math.floor(cfg.time_budget / plan.seconds_per_epoch)
        timing = f"{plan.seconds_per_epoch:.2f} s per epoch, timed on {plan.timed_batches} batches"
        why = (
            f"max_epochs; {fit_budget} would fit time_budget={cfg.time_budget:g} s at {timing}"
            if fit_budget > cfg.max_epochs
            else f"what fits time_budget={cfg.time_budget:g} s at {timing}"
        )
    if plan.recipe != "full" and plan.full_seconds_per_epoch is not None:
        changed = ", ".join(f"{key}={value}" for key, value in plan.recipe_changes.items())
        fit_full = epochs_within(cfg.time_budget, plan.full_seconds_per_epoch, cfg.max_epochs)
        why += (
            f"; {plan.recipe} recipe ({changed or 'as given'}): the full one fits {fit_full} of max_epochs="
            f"{cfg.max_epochs} at {plan.full_seconds_per_epoch:.2f} s per epoch"
        )
    elif plan.recipe != "full":
        why += f"; {plan.recipe} recipe"
    if cfg.precision != "auto":
        arithmetic = f"precision={cfg.precision}"
    elif device.type == "cpu":
        arithmetic = "this CPU computes bf16 natively" if native_bf16() else "no native bf16 on this CPU"
    else:
        arithmetic = device.type
    eta = (
        f", ETA {format_seconds(plan.eta_seconds)} (training + test prediction)"
        if plan.eta_seconds is not None
        else ""
    )
    return f"classifier: {plan.epochs} epochs ({why}), {plan.precision} ({arithmetic}){eta}"


def cpu_model() -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo), for the summary: results depend on it."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def plan_summary(cfg: ClassifierConfig, plan: EpochPlan) -> dict[str, Any]:
    """What the summary records about the schedule's choice (so a result says which machine shaped it)."""
    return {
        "epochs": plan.epochs,
        "epochs_source": plan.source,
        "epochs_before_training": plan.first_epochs,  # set when the first epochs settled the length again
        "replanned_seconds_per_epoch": _rounded(plan.replanned_seconds_per_epoch),
        "recipe": plan.recipe,
        "full_recipe_seconds_per_epoch": _rounded(plan.full_seconds_per_epoch),
        "time_budget": cfg.time_budget if plan.source == "time_budget" else None,
        "estimated_seconds_per_epoch": _rounded(plan.seconds_per_epoch),
        "eta_seconds": _rounded(plan.eta_seconds),
        "precision": plan.precision,
        "native_bf16": native_bf16(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
