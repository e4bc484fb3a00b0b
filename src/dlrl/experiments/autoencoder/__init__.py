"""Part 2: convolutional AutoEncoder (ae), denoising AutoEncoder (dae) and variational AutoEncoder (vae).

One experiment, three variants sharing the conv encoder/decoder. Optional K-fold cross validation on the
training split first (validation loss per fold, mean and spread), then the final model on the whole
training split, scored on the test split; then the latent space (t-SNE and PCA of test encodings) and a PCA
reconstruction baseline at the same dimension d.

model.py: the parts (model, data step, loss step, trainer); evaluation.py: test metrics; latent.py: PCA and
t-SNE; figures.py; cv.py: K-fold cross validation; adapter.py: what `dlrl tune autoencoder` searches.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import torch

from dlrl.config import build_config, read_config_file
from dlrl.config.autoencoder import AutoEncoderConfig
from dlrl.data.images import load_images
from dlrl.errors import CheckpointError, DataError
from dlrl.experiments.autoencoder.adapter import AutoEncoderAdapter
from dlrl.experiments.autoencoder.cv import cross_validate
from dlrl.experiments.autoencoder.evaluation import encode_all, pca_baseline, reconstruct_all, test_metrics
from dlrl.experiments.autoencoder.figures import write_figures
from dlrl.experiments.autoencoder.latent import latent_analysis, run_tsne
from dlrl.experiments.autoencoder.model import build_model, load_trained, make_trainer
from dlrl.rundir import RunDir
from dlrl.train.fit import Monitor, fit
from dlrl.utils import resolve_device

log = logging.getLogger(__name__)

__all__ = [
    "TARGETS",
    "AutoEncoderAdapter",
    "build_model",
    "encode_all",
    "evaluate",
    "load_model",
    "load_trained",
    "reconstruct_all",
    "run",
    "run_tsne",
]

TARGETS: list[dict[str, Any]] = [
    {
        "metric": "mse_reduction_vs_pca",
        "op": ">=",
        "value": 0.30,
        "label": "test reconstruction MSE at least 30% below PCA with d components",
        "reference": "PCA fitted on the same training images, same d",
    },
    {
        "metric": "tsne_seconds",
        "op": "<=",
        "value": 60.0,
        "label": "t-SNE of the test encodings (10,000 on full datasets) within 60 s",
        "reference": "",
    },
]


def run(cfg: AutoEncoderConfig, run_dir: RunDir, resume: bool = False) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    data = load_images(cfg.data)
    if data.image_shape != (1, 28, 28):
        raise DataError(f"the AutoEncoder needs 1x28x28 images, {data.dataset} has {data.image_shape}")
    cv = cross_validate(cfg, data, run_dir, resume) if cfg.folds else {}

    torch.manual_seed(cfg.seed)  # the final model does not depend on whether CV ran before it
    trainer = make_trainer(cfg, build_model(cfg).to(device), data.train_x, data.val_x, device)
    started = time.perf_counter()
    result = fit(
        trainer,
        cfg.epochs,
        Monitor("val_loss", "min", cfg.patience),
        checkpoint_dir=run_dir.checkpoints,
        extra_state={"config": cfg.model_dump(mode="json"), "variant": cfg.variant},
        resume=resume,
        on_epoch_end=run_dir.metrics_hook(resume),
    )
    train_seconds = time.perf_counter() - started
    run_dir.write_metrics(result.history)
    model = load_trained(cfg, run_dir, device)
    metrics = test_metrics(cfg, model, data, device)
    pca_mse, pca_recon = pca_baseline(data.train_x, data.test_x, cfg.model.latent_dim)
    latent: dict[str, Any] = {}
    if cfg.figures:  # the latent-space analysis too: its results are figures
        latent = latent_analysis(cfg, model, data, device, run_dir)
        write_figures(cfg, model, data, result.history, metrics, pca_recon, run_dir, device)
    summary: dict[str, Any] = {
        "variant": cfg.variant,
        "dataset": data.dataset,
        "data_origin": data.origin,
        "sample_data": data.is_sample,
        "train_images": len(data.train_x),
        "test_images": len(data.test_x),
        "latent_dim": cfg.model.latent_dim,
        "hidden_dim": cfg.model.hidden_dim,
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_metric,
        "train_seconds": round(train_seconds, 2),
        "seconds_per_epoch": round(float(np.mean([r["seconds"] for r in result.history])), 2),
        **{k: v for k, v in metrics.items() if not isinstance(v, dict)},
        "pca_test_mse": pca_mse,
        "mse_reduction_vs_pca": 1.0 - metrics["test_mse"] / pca_mse,
        **latent,
        **{k: v for k, v in cv.items() if k != "cv"},
        "folds": cfg.folds or 0,
    }
    if cv:
        summary["cv"] = cv["cv"]
    if "psnr_by_level" in metrics:
        summary["psnr_by_level"] = metrics["psnr_by_level"]
    return summary


def evaluate(run_dir: RunDir) -> dict[str, Any]:
    """Recompute the test metrics of a finished run from checkpoints/best.pt."""
    cfg = build_config(AutoEncoderConfig, read_config_file(run_dir.config_path), str(run_dir.config_path))
    device = resolve_device(cfg.device)
    data = load_images(cfg.data)
    model = load_trained(cfg, run_dir, device)
    metrics = test_metrics(cfg, model, data, device)
    pca_mse, _ = pca_baseline(data.train_x, data.test_x, cfg.model.latent_dim)
    metrics["pca_test_mse"] = pca_mse
    metrics["mse_reduction_vs_pca"] = 1.0 - metrics["test_mse"] / pca_mse
    if not math.isfinite(metrics["test_mse"]):
        raise CheckpointError(f"{run_dir.checkpoints / 'best.pt'}: model produces non-finite reconstructions")
    return metrics


def load_model(run_dir: RunDir) -> Any:
    """The trained AutoEncoder or VAE of a finished run (checkpoints/best.pt), on the config's device."""
    cfg = build_config(AutoEncoderConfig, read_config_file(run_dir.config_path), str(run_dir.config_path))
    return load_trained(cfg, run_dir, resolve_device(cfg.device)).eval()
