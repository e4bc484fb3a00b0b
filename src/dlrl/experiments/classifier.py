"""Part 1b: a feed-forward classifier on MNIST or Fashion-MNIST."""

from __future__ import annotations

import copy
import itertools
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlrl.config import build_config, read_config_file
from dlrl.config.classifier import ClassifierConfig
from dlrl.data.augment import random_hflip, random_shift, translate
from dlrl.data.batching import Batch, Batches
from dlrl.data.images import ImageData, load_images
from dlrl.models.mlp import MLPClassifier, WeightEMA
from dlrl.progress import format_seconds
from dlrl.rundir import RunDir
from dlrl.train.checkpoint import load_checkpoint, load_model_state, restore_model
from dlrl.train.fit import Monitor, fit
from dlrl.train.kfold import Pool, pool_trainer
from dlrl.train.optim import make_optimization
from dlrl.train.trainer import Trainer, train_one_epoch
from dlrl.tuning.adapter import PoolAdapter
from dlrl.utils import cpu_seconds, resolve_device
from dlrl.viz.classification import (
    confusion_matrix,
    plot_architecture,
    plot_confusion_matrix,
    plot_per_class_accuracy,
)
from dlrl.viz.common import image_grid, plot_curves

log = logging.getLogger(__name__)

TARGETS: list[dict[str, Any]] = [
    {
        "metric": "test_accuracy",
        "op": ">=",
        "value": 0.915,
        "label": "fashion-mnist, default config: test accuracy at least 91.5% (feed-forward, no convs; on a "
        "CPU with native bf16: an fp32-only CPU fits fewer epochs in the budget, its target is 91.0%)",
        "reference": "tutorial MLP with a DataLoader 88.0% after 5 epochs; PyTorch examples CNN 91.6% after "
        "3 epochs (about 220 s); scikit-learn MLPClassifier 87.0%",
    },
    {
        "metric": "train_seconds",
        "op": "<=",
        "value": 180.0,
        "label": "fashion-mnist, default config: training within 3 minutes on 2 CPU cores",
        "reference": "tutorial MLP: 9.6 s per epoch",
    },
]


def build_model(cfg: ClassifierConfig, image_shape: tuple[int, ...], num_classes: int) -> MLPClassifier:
    m = cfg.model
    return MLPClassifier(
        image_shape, num_classes, m.hidden_sizes, m.activation, m.dropout, m.input_dropout, m.batch_norm
    )


def build_network(cfg: ClassifierConfig, image_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The MLP, wrapped with a moving average of its weights when ``cfg.ema_decay`` is set."""
    model = build_model(cfg, image_shape, num_classes)
    return WeightEMA(model, cfg.ema_decay) if cfg.ema_decay else model


def live_model(network: nn.Module) -> MLPClassifier:
    return network.model if isinstance(network, WeightEMA) else network  # type: ignore[return-value]


def native_bf16() -> bool:
    """The CPU computes bf16 itself (AVX512-BF16 or AMX); elsewhere torch emulates it, slower than fp32."""
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return native is not None and bool(native())


def use_bf16(cfg: ClassifierConfig, device: torch.device) -> bool:
    """bf16 autocast for the matmuls: as asked, or 'auto': on CUDA and on CPUs with native bf16."""
    if cfg.precision != "auto":
        return cfg.precision == "bf16"
    if device.type == "cuda":
        return True
    return device.type == "cpu" and native_bf16()


def make_step(label_smoothing: float = 0.0, bf16: bool = False):
    def step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y = batch
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        logits = logits.float()
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        accuracy = (logits.argmax(dim=1) == y).float().mean()
        return loss, {"accuracy": accuracy}

    return step


def hflip_enabled(cfg: ClassifierConfig) -> bool:
    """Horizontal flips: as configured, or by default only for Fashion-MNIST (a mirrored digit is wrong)."""
    return cfg.augment.hflip if cfg.augment.hflip is not None else cfg.data.dataset == "fashion-mnist"


def make_augment(cfg: ClassifierConfig):
    hflip = hflip_enabled(cfg)
    if not cfg.augment.max_shift and not hflip:
        return None

    def augment(batch: Batch, generator: torch.Generator) -> Batch:
        x, y = batch
        x = random_shift(x, cfg.augment.max_shift, generator)
        if hflip:
            x = random_hflip(x, generator)
        return x, y

    return augment


ONE_PIXEL = ((-1, 0), (1, 0), (0, -1), (0, 1))


def prediction_views(x: torch.Tensor, mirror: bool = False, shift: bool = False) -> list[torch.Tensor]:
    """The images whose predictions are averaged at test time: ``x``; with ``shift`` also ``x`` moved one
    pixel up, down, left and right; with ``mirror`` also the mirror image of each of those."""
    views = [x]
    if shift:
        views += [translate(x, dy, dx) for dy, dx in ONE_PIXEL]
    if mirror:
        views += [view.flip(-1) for view in views]
    return views


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    batch_size: int = 2048,
    bf16: bool = False,
    mirror: bool = False,
    shift: bool = False,
) -> torch.Tensor:
    """Logits for all of ``x``, in eval mode, averaged over ``prediction_views`` (one view unless asked)."""
    model.eval()
    outputs = []
    for i in range(0, len(x), batch_size):
        views = prediction_views(x[i : i + batch_size].to(device), mirror, shift)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = sum(model(view).float() for view in views) / len(views)
        outputs.append(logits.cpu())
    return torch.cat(outputs)


def architecture_layers(model: MLPClassifier) -> list[tuple[str, str, int]]:
    """(name, output shape, parameters) per block, for the diagram: Linear+BN+act+dropout count as one."""
    layers = [("Input", "x".join(map(str, model.input_shape)), 0)]
    for module in model.net:
        if isinstance(module, nn.Linear):
            layers.append(("Linear", f"{module.out_features}", sum(p.numel() for p in module.parameters())))
        elif isinstance(module, nn.BatchNorm1d):
            name, shape, params = layers[-1]
            layers[-1] = (name + "+BN", shape, params + sum(p.numel() for p in module.parameters()))
        elif isinstance(module, nn.ReLU | nn.GELU | nn.SiLU | nn.Tanh):
            name, shape, params = layers[-1]
            layers[-1] = (f"{name}+{type(module).__name__}", shape, params)
        elif isinstance(module, nn.Dropout):
            name, shape, params = layers[-1]
            layers[-1] = (name, f"{shape}, dropout {module.p:g}", params)
        elif isinstance(module, nn.Flatten):
            layers.append(("Flatten", str(int(np.prod(model.input_shape))), 0))
    name, shape, params = layers[-1]
    layers[-1] = ("Linear (logits)", shape, params)
    return layers


def make_trainer(cfg: ClassifierConfig, model: nn.Module, data: ImageData, device: torch.device) -> Trainer:
    """The network's trainer on the training split (augmented), validated on the validation split."""
    train_batches = Batches(
        data.train_x,
        data.train_y,
        batch_size=cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        transform=make_augment(cfg),
    )
    optimizer, scheduler, per_batch = make_optimization(
        live_model(model).parameters(), cfg.optim, cfg.epochs, len(train_batches)
    )
    if isinstance(model, WeightEMA):
        # Validation (so best.pt) and test use the averaged weights; they are part of every checkpoint.
        optimizer.register_step_post_hook(lambda *_: model.update())
    bf16 = use_bf16(cfg, device)
    return Trainer(
        model,
        make_step(cfg.label_smoothing, bf16),
        optimizer,
        train_batches,
        Batches(data.val_x, data.val_y, batch_size=1024),
        device=device,
        eval_step=make_step(bf16=bf16),
        scheduler=scheduler,
        scheduler_per_batch=per_batch,
        grad_clip=cfg.optim.grad_clip,
    )


# Timing an epoch (for epochs=auto and the ETA): a few batches untimed (allocations, kernels), then timed.
WARMUP_BATCHES, TIMED_BATCHES = 3, 40


@dataclass
class EpochPlan:
    """How many epochs a run trains and why, with the timings behind an epochs=auto choice."""

    epochs: int
    source: str  # "config": given; "time_budget": timed here; "checkpoint": the interrupted run's choice
    precision: str  # "bf16" or "fp32": the matmuls' arithmetic
    seconds_per_epoch: float | None = None  # estimated: training batches and validation
    test_seconds: float | None = None  # estimated: the final test prediction (every view)
    timed_batches: int = 0

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


def prediction_options(cfg: ClassifierConfig) -> dict[str, bool]:
    """``predict``'s ``mirror`` and ``shift`` for the test prediction (see ``prediction_views``)."""
    return {
        "mirror": hflip_enabled(cfg) and cfg.augment.test_hflip,
        "shift": cfg.augment.max_shift > 0 and cfg.augment.test_shift,
    }


def prediction_view_count(cfg: ClassifierConfig) -> int:
    """How many views of each test image the final prediction averages."""
    views = prediction_options(cfg)
    return (5 if views["shift"] else 1) * (2 if views["mirror"] else 1)


def time_schedule(
    cfg: ClassifierConfig, model: nn.Module, data: ImageData, device: torch.device
) -> tuple[float, float, int]:
    """(seconds per epoch, seconds of the test prediction, batches timed), estimated from a few training
    steps of a copy of ``model`` (the classifier's own step, optimizer, batch size and augmentation) and one
    forward pass over up to 2,048 validation images. Changes no state of the run: the model is a copy and
    the global RNG is restored, so the chosen epochs train exactly as if they had been given."""
    bf16 = use_bf16(cfg, device)
    gpus = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        scratch = copy.deepcopy(live_model(model))
        batches = Batches(
            data.train_x,
            data.train_y,
            batch_size=cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            transform=make_augment(cfg),
        )
        optimizer, _, _ = make_optimization(scratch.parameters(), cfg.optim, 1, len(batches))
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
    cfg: ClassifierConfig,
    model: nn.Module,
    data: ImageData,
    device: torch.device,
    run_dir: RunDir,
    resume: bool,
) -> EpochPlan:
    """The epochs this run trains: as configured, the interrupted run's choice on resume, or (epochs=auto)
    as many as fit ``cfg.time_budget`` at the speed timed on this machine, capped at ``cfg.max_epochs``."""
    precision = "bf16" if use_bf16(cfg, device) else "fp32"
    last = run_dir.checkpoints / "last.pt"
    if cfg.epochs == "auto" and resume and last.is_file():
        chosen = load_checkpoint(last).get("config", {}).get("epochs")
        if isinstance(chosen, int) and not isinstance(chosen, bool):
            return EpochPlan(chosen, "checkpoint", precision)
    # Timed for the ETA too when the epochs are given: a second or two of a run that takes minutes.
    per_epoch, test_seconds, timed = time_schedule(cfg, model, data, device)
    if cfg.epochs != "auto":
        return EpochPlan(int(cfg.epochs), "config", precision, per_epoch, test_seconds, timed)
    epochs = epochs_within(cfg.time_budget, per_epoch, cfg.max_epochs)
    return EpochPlan(epochs, "time_budget", precision, per_epoch, test_seconds, timed)


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


def run(cfg: ClassifierConfig, run_dir: RunDir, resume: bool = False) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    data = load_images(cfg.data)
    model = build_network(cfg, data.image_shape, len(data.classes)).to(device)
    plan = plan_epochs(cfg, model, data, device, run_dir, resume)
    if cfg.epochs != plan.epochs:
        # The choice goes into config.yaml: `--config RUN/config.yaml` re-runs these epochs, untimed.
        cfg = cfg.model_copy(update={"epochs": plan.epochs})
        run_dir.write_config(cfg)
    log.info("%s", describe_plan(cfg, plan, device))
    trainer = make_trainer(cfg, model, data, device)
    started, cpu_started = time.perf_counter(), cpu_seconds(children=False)
    result = fit(
        trainer,
        cfg.epochs,
        Monitor("val_accuracy", "max", cfg.patience),
        checkpoint_dir=run_dir.checkpoints,
        extra_state={"config": cfg.model_dump(mode="json")},
        resume=resume,
        on_epoch_end=run_dir.metrics_hook(resume),
    )
    train_seconds = time.perf_counter() - started
    # CPU time of this process: what the run costs; on a shared host wall time says how busy the host was.
    train_cpu_seconds = cpu_seconds(children=False) - cpu_started
    run_dir.write_metrics(result.history)
    metrics, arrays = evaluate_model(cfg, model, data, run_dir, device)
    if cfg.figures:
        write_figures(cfg, model, data, result.history, arrays, run_dir)
    return {
        "dataset": data.dataset,
        "data_origin": data.origin,
        "sample_data": data.is_sample,
        "train_images": len(data.train_x),
        "test_images": len(data.test_x),
        "parameters": sum(p.numel() for p in live_model(model).parameters()),
        "ema": bool(cfg.ema_decay),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "best_val_accuracy": result.best_metric,
        "train_seconds": round(train_seconds, 2),
        "train_cpu_seconds": round(train_cpu_seconds, 2),
        "seconds_per_epoch": round(float(np.mean([r["seconds"] for r in result.history])), 2),
        **plan_summary(cfg, plan),
        **metrics,
    }


def checkpoint_to_test(cfg: ClassifierConfig) -> str:
    if cfg.test_checkpoint == "auto":
        return "best" if cfg.patience else "last"
    return cfg.test_checkpoint


def evaluate_model(
    cfg: ClassifierConfig, model: nn.Module, data: ImageData, run_dir: RunDir, device: torch.device
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Load the tested checkpoint into ``model`` and compute test metrics; returns (metrics, arrays for the
    figures: confusion matrix, predictions, labels)."""
    tested = checkpoint_to_test(cfg)
    path = run_dir.checkpoints / f"{tested}.pt"
    load_model_state(model, load_checkpoint(path, required=("model",))["model"], path)
    bf16 = use_bf16(cfg, device)
    mirror, shift = prediction_options(cfg).values()
    logits = predict(model, data.test_x, device, bf16=bf16, mirror=mirror, shift=shift)
    predictions = logits.argmax(dim=1).numpy()
    labels = data.test_y.numpy()
    cm = confusion_matrix(labels, predictions, len(data.classes))
    single = predictions
    if mirror or shift:
        single = predict(model, data.test_x, device, bf16=bf16).argmax(dim=1).numpy()
    return {
        "test_accuracy": float((predictions == labels).mean()),
        "test_accuracy_single_view": float((single == labels).mean()),
        "tested_checkpoint": tested,
        "test_time_flip": mirror,
        "test_time_shift": shift,
        "bf16": bf16,
        "test_loss": float(F.cross_entropy(logits, data.test_y).item()),
        "per_class_accuracy": {
            name: float(cm[i, i] / max(cm[i].sum(), 1)) for i, name in enumerate(data.classes)
        },
    }, {"cm": cm, "predictions": predictions, "labels": labels}


def write_figures(
    cfg: ClassifierConfig,
    model: nn.Module,
    data: ImageData,
    history: list[dict[str, float]],
    arrays: dict[str, np.ndarray],
    run_dir: RunDir,
) -> None:
    cm, predictions, labels = arrays["cm"], arrays["predictions"], arrays["labels"]
    run_dir.save_figure(
        plot_architecture(architecture_layers(live_model(model)), "MLP classifier"), "architecture"
    )
    run_dir.save_figure(plot_confusion_matrix(cm, data.classes), "confusion_matrix")
    run_dir.save_figure(plot_per_class_accuracy(cm, data.classes), "per_class_accuracy")
    run_dir.save_figure(
        plot_curves(
            history, {"loss": ["train_loss", "val_loss"], "accuracy": ["train_accuracy", "val_accuracy"]}
        ),
        "learning_curves",
    )
    wrong = np.flatnonzero(predictions != labels)[:32]
    if len(wrong):
        titles = [f"{data.classes[labels[i]]}→{data.classes[predictions[i]]}" for i in wrong]
        run_dir.save_figure(
            image_grid(data.test_x[wrong].numpy(), titles, title="Misclassified (true→predicted)"),
            "misclassified",
        )


def evaluate(run_dir: RunDir) -> dict[str, Any]:
    """Recompute the test metrics of a finished run from its best checkpoint."""
    cfg = build_config(ClassifierConfig, read_config_file(run_dir.config_path), str(run_dir.config_path))
    device = resolve_device(cfg.device)
    data = load_images(cfg.data)
    model = build_network(cfg, data.image_shape, len(data.classes)).to(device)
    return evaluate_model(cfg, model, data, run_dir, device)[0]


def load_model(run_dir: RunDir) -> nn.Module:
    """The trained network of a finished run (the checkpoint it tested), on the config's device."""
    cfg = build_config(ClassifierConfig, read_config_file(run_dir.config_path), str(run_dir.config_path))
    data = load_images(cfg.data)  # the image shape and classes the network was built for
    model = build_network(cfg, data.image_shape, len(data.classes))
    restore_model(model, run_dir.checkpoints / f"{checkpoint_to_test(cfg)}.pt")
    return model.to(resolve_device(cfg.device)).eval()


class ClassifierAdapter(PoolAdapter):
    """``dlrl tune classifier``: accuracy on held-out folds of the training + validation images."""

    name = "classifier"
    command = "classify"
    config_cls = ClassifierConfig
    metric = "val_accuracy"
    mode = "max"
    metrics = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")

    def epochs(self, cfg: ClassifierConfig) -> int:
        """A trial trains max_epochs when epochs=auto: trials compare configs at one schedule length, not
        at whatever each one's timing allowed on a busy machine."""
        return cfg.max_epochs if cfg.epochs == "auto" else int(cfg.epochs)

    def load_data(self, cfg: ClassifierConfig) -> Pool:
        data = load_images(cfg.data)
        return Pool(
            torch.cat([data.train_x, data.val_x]),
            torch.cat([data.train_y, data.val_y]),
            extra=(data.image_shape, len(data.classes)),
        )

    def fold_trainer(
        self, cfg: ClassifierConfig, data: Pool, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> Trainer:
        image_shape, num_classes = data.extra
        bf16 = use_bf16(cfg, resolve_device(cfg.device))  # the same arithmetic as the final run
        return pool_trainer(
            cfg.model_copy(update={"epochs": self.epochs(cfg)}),  # the schedule's length
            build_model(cfg, image_shape, num_classes),
            make_step(cfg.label_smoothing, bf16),
            data,
            train_idx,
            val_idx,
            fold,
            eval_step=make_step(bf16=bf16),
            transform=make_augment(cfg),
        )
