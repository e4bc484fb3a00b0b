"""Part 2: fine-tuning a trained AutoEncoder's encoder for classification.

The encoder of an ``autoencoder`` run (its z, or a VAE's mu) plus a small head is trained three ways for each
number of labelled training images (class-balanced subsets of the AE run's training split):
``frozen`` (only the head learns), ``finetuned`` (everything learns, the encoder at a lower rate) and
``scratch`` (the same network from a random initialisation). Test accuracy on the AE run's test split.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlrl.config import build_config, read_config_file
from dlrl.config.autoencoder import AutoEncoderConfig, FinetuneConfig
from dlrl.data.batching import Batch, Batches
from dlrl.data.images import ImageData, load_images
from dlrl.errors import CheckpointError, ConfigError, DlrlError, shown
from dlrl.experiments.autoencoder import build_model, load_trained
from dlrl.models.autoencoder import AutoEncoder, EncoderClassifier
from dlrl.models.vae import VAE, MeanEncoder
from dlrl.rundir import RunDir
from dlrl.train.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from dlrl.train.optim import make_optimization
from dlrl.train.trainer import Trainer
from dlrl.utils import derived_seed, resolve_device
from dlrl.viz.autoencoder import plot_accuracy_vs_labels

log = logging.getLogger(__name__)

MODES = ("frozen", "finetuned", "scratch")

TARGETS: list[dict[str, Any]] = [
    {
        "metric": "finetune_gain_1000",
        "op": ">=",
        "value": 0.0,
        "label": "fine-tuned encoder beats the from-scratch classifier with 1,000 labels (accuracy gain)",
        "reference": "same network trained from a random initialisation",
    },
]


def resolve_encoder_run(cfg: FinetuneConfig, run_dir: RunDir | None = None) -> Path:
    """The AE run directory: as given (absolute or from the current directory), else beside ``run_dir``."""
    if not cfg.encoder_run:
        raise ConfigError(
            "finetune needs the AutoEncoder run: --encoder-run RUN_DIR (or encoder_run=RUN_DIR)"
        )
    path = Path(cfg.encoder_run).expanduser()
    if not path.is_absolute() and not path.exists() and run_dir is not None:
        sibling = run_dir.path.parent / path
        if sibling.exists():
            return sibling
    return path


def load_encoder_run(path: Path, device: torch.device) -> tuple[AutoEncoderConfig, AutoEncoder | VAE]:
    """The AE run's config and trained model; anything else is a one-line DlrlError naming the directory."""
    config_path = path / "config.yaml"
    if not path.is_dir():
        raise DlrlError(f"encoder_run {path}: no such run directory")
    if not config_path.is_file():
        raise DlrlError(f"encoder_run {path}: not a dlrl run directory (no config.yaml)")
    stored = read_config_file(config_path)
    if stored.get("experiment") != "autoencoder":
        kind = shown(stored.get("experiment"))
        raise DlrlError(f"encoder_run {path}: is a '{kind}' run, not an autoencoder run")
    cfg = build_config(AutoEncoderConfig, stored, str(config_path))
    model = load_trained(cfg, RunDir(path), device)
    return cfg, model


def validate(cfg: FinetuneConfig) -> None:
    """Check the encoder run before anything is written (when it is found from the current directory)."""
    path = resolve_encoder_run(cfg)
    if path.exists() or path.is_absolute():
        load_encoder_run(path, torch.device("cpu"))


def pretrained_encoder(model: AutoEncoder | VAE) -> nn.Module:
    return MeanEncoder(model) if isinstance(model, VAE) else model.encoder


def balanced_subset(labels: np.ndarray, count: int | str, num_classes: int, seed: int) -> np.ndarray:
    """Indices of ``count`` images, as equal per class as possible, from a seeded permutation ('all': all)."""
    if count == "all" or int(count) >= len(labels):
        return np.arange(len(labels))
    order = np.random.default_rng(seed).permutation(len(labels))
    per_class = [order[labels[order] == c] for c in range(num_classes)]
    chosen: list[int] = []
    rank = 0
    while len(chosen) < int(count):
        for members in per_class:
            if rank < len(members) and len(chosen) < int(count):
                chosen.append(int(members[rank]))
        rank += 1
    return np.sort(np.array(chosen))


def make_classifier(
    ae_cfg: AutoEncoderConfig,
    cfg: FinetuneConfig,
    num_classes: int,
    mode: str,
    pretrained: AutoEncoder | VAE | None,
) -> EncoderClassifier:
    """Encoder (pretrained copy, or a fresh one for 'scratch') + head."""
    source = pretrained if mode != "scratch" and pretrained is not None else build_model(ae_cfg)
    encoder = pretrained_encoder(source)
    if mode != "scratch":
        encoder = copy.deepcopy(encoder)
    return EncoderClassifier(
        encoder, ae_cfg.model.latent_dim, num_classes, cfg.head_hidden, freeze_encoder=mode == "frozen"
    )


def _step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits, y), {"accuracy": (logits.argmax(1) == y).float().mean()}


def train_classifier(
    model: EncoderClassifier,
    cfg: FinetuneConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    seed: int,
    device: torch.device,
    encoder_lr_factor: float = 1.0,
) -> list[dict[str, float]]:
    """Train for max(epochs, enough epochs for min_steps steps); returns one row per epoch.

    The schedule restarts for each training; the encoder (unless frozen) learns at encoder_lr_factor x lr.
    """
    batches = Batches(x, y, batch_size=min(cfg.batch_size, len(x)), shuffle=True, seed=seed)
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / max(len(batches), 1)))
    groups: list[dict[str, Any]] = [{"params": list(model.head.parameters()), "lr": cfg.optim.lr}]
    if not model.freeze_encoder:
        groups.append({"params": list(model.encoder.parameters()), "lr": cfg.optim.lr * encoder_lr_factor})
    optimizer, scheduler, per_batch = make_optimization(groups, cfg.optim, epochs, len(batches))
    trainer = Trainer(
        model,
        _step,
        optimizer,
        batches,
        device=device,
        scheduler=scheduler,
        scheduler_per_batch=per_batch,
        grad_clip=cfg.optim.grad_clip,
    )
    return [{"epoch": epoch + 1, **trainer.train_epoch()} for epoch in range(epochs)]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(x), 2000):
        logits = model(x[start : start + 2000].to(device))
        correct += int((logits.argmax(1).cpu() == y[start : start + 2000]).sum())
    return correct / max(len(x), 1)


def _label_key(count: int | str, available: int) -> int:
    return available if count == "all" else min(int(count), available)


def train_mode(
    cfg: FinetuneConfig,
    ae_cfg: AutoEncoderConfig,
    pretrained: AutoEncoder | VAE,
    data: ImageData,
    index: np.ndarray,
    mode_index: int,
    path: Path,
    device: torch.device,
) -> tuple[float, list[dict[str, Any]]]:
    """Train the ``MODES[mode_index]`` classifier on the labelled images ``index``, test it, save it to
    ``path``; returns (test accuracy, history rows)."""
    mode, n = MODES[mode_index], len(index)
    torch.manual_seed(derived_seed(cfg.seed, mode_index, stride=100))
    num_classes = len(data.classes)
    model = make_classifier(ae_cfg, cfg, num_classes, mode, pretrained).to(device)
    factor = cfg.encoder_lr_factor if mode == "finetuned" else 1.0
    x, y = data.train_x[index], data.train_y[index]
    history = train_classifier(model, cfg, x, y, cfg.seed, device, factor)
    test_accuracy = accuracy(model, data.test_x, data.test_y, device)
    history = [{"labels": n, "mode": mode, **row} for row in history]  # type: ignore[dict-item]
    state = {
        "model": model.state_dict(),
        "mode": mode,
        "labels": n,
        "test_accuracy": test_accuracy,
        "history": history,
        "config": cfg.model_dump(mode="json"),
        "autoencoder_config": ae_cfg.model_dump(mode="json"),
        "num_classes": num_classes,
    }
    save_checkpoint(path, state)
    log.info("%5d labels, %-9s: test accuracy %.4f", n, mode, test_accuracy)
    return test_accuracy, history


def run(cfg: FinetuneConfig, run_dir: RunDir, resume: bool = False) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    encoder_run = resolve_encoder_run(cfg, run_dir)
    ae_cfg, pretrained = load_encoder_run(encoder_run, device)
    data = load_images(ae_cfg.data)
    table: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for count in cfg.labels:
        n = _label_key(count, len(data.train_x))
        index = balanced_subset(data.train_y.numpy(), count, len(data.classes), cfg.seed)
        table[str(n)] = {}
        for mode_index, mode in enumerate(MODES):
            path = run_dir.checkpoints / f"{mode}-{n}.pt"
            if resume and path.exists():  # trained before the interruption
                state = load_checkpoint(path, required=("model", "test_accuracy", "history"))
                table[str(n)][mode], history = float(state["test_accuracy"]), state["history"]
            else:
                table[str(n)][mode], history = train_mode(
                    cfg, ae_cfg, pretrained, data, index, mode_index, path, device
                )
            rows.extend(history)
            run_dir.write_metrics(rows)
    counts = [int(k) for k in table]
    run_dir.save_figure(
        plot_accuracy_vs_labels(
            counts,
            {mode: [table[str(c)][mode] for c in counts] for mode in MODES},
            f"Encoder from {encoder_run.name} ({ae_cfg.variant}, d={ae_cfg.model.latent_dim})",
        ),
        "accuracy_vs_labels",
    )
    summary: dict[str, Any] = {
        "encoder_run": str(encoder_run),
        "encoder_variant": ae_cfg.variant,
        "dataset": data.dataset,
        "sample_data": data.is_sample,
        "latent_dim": ae_cfg.model.latent_dim,
        "train_images": len(data.train_x),
        "test_images": len(data.test_x),
        "seconds_training": round(time.perf_counter() - started, 2),
    }
    for key, accs in table.items():
        summary.update({f"accuracy_{mode}_{key}": value for mode, value in accs.items()})
        summary[f"finetune_gain_{key}"] = accs["finetuned"] - accs["scratch"]
    summary["accuracy"] = table
    return summary


def evaluate(run_dir: RunDir) -> dict[str, Any]:
    """Recompute every test accuracy from the checkpoints of a finished fine-tuning run."""
    cfg = build_config(FinetuneConfig, read_config_file(run_dir.config_path), str(run_dir.config_path))
    device = resolve_device(cfg.device)
    paths = sorted(run_dir.checkpoints.glob("*-*.pt"))
    if not paths:
        raise CheckpointError(f"{run_dir.checkpoints}: no fine-tuning checkpoints")
    data = None
    metrics: dict[str, Any] = {}
    for path in paths:
        state = load_checkpoint(
            path, required=("model", "mode", "labels", "autoencoder_config", "num_classes")
        )
        ae_cfg = build_config(AutoEncoderConfig, state["autoencoder_config"], f"{path} (autoencoder_config)")
        if data is None:
            data = load_images(ae_cfg.data)
        model = make_classifier(ae_cfg, cfg, int(state["num_classes"]), "scratch", None)
        load_model_state(model, state["model"], path)
        model.to(device)
        metrics[f"accuracy_{state['mode']}_{state['labels']}"] = accuracy(
            model, data.test_x, data.test_y, device
        )
    return metrics
