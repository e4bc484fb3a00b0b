"""Part 1a: a 1-D regression network on synthetic data with gaps in x, or on the user's CSV.

The main network is trained with validation, early stopping and weight decay; a small bootstrap ensemble
of the same architecture, trained side by side in one batched model, gives the uncertainty band of the fit.
Losses are computed on standardised y; reported MSEs are in the data's own units.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlrl.config import build_config, read_config_file
from dlrl.config.regression import RegressionConfig
from dlrl.data.batching import Batch
from dlrl.data.regression import RegressionData, from_csv, gap_grid, synthetic
from dlrl.models.regression import RegressionEnsemble, RegressionNet
from dlrl.rundir import RunDir
from dlrl.train.checkpoint import load_checkpoint, load_model_state, restore_model
from dlrl.train.fit import FitResult, Monitor, fit
from dlrl.train.kfold import Pool, pool_trainer
from dlrl.train.optim import make_optimization
from dlrl.train.trainer import Trainer
from dlrl.tuning.adapter import PoolAdapter
from dlrl.utils import resolve_device

log = logging.getLogger(__name__)

TARGETS: list[dict[str, Any]] = [
    {
        "metric": "test_mse_over_noise_var",
        "op": "<=",
        "value": 1.10,
        "label": "synthetic data: test MSE at most 1.10 x the noise variance",
        "reference": "1.0 x the noise variance is the best any model can do",
    },
]

GRID_POINTS = 400  # x values for the fitted curve and the activation maps


def load_data(cfg: RegressionConfig) -> RegressionData:
    d = cfg.data
    if d.csv is not None:
        return from_csv(d.csv, d.val_fraction, d.test_fraction, d.split_seed)
    return synthetic(d.num_points, d.noise_std, d.val_fraction, d.test_points, d.split_seed)


def validate(cfg: RegressionConfig) -> None:
    """Read the CSV (if any) before the run directory is written, so bad files leave nothing behind."""
    if cfg.data.csv is not None:
        load_data(cfg)  # reads and splits the CSV: every check of its values


def build_model(cfg: RegressionConfig) -> RegressionNet:
    m = cfg.model
    return RegressionNet(m.hidden_sizes, m.activation, m.dropout)


def build_ensemble(cfg: RegressionConfig) -> RegressionEnsemble:
    m = cfg.model
    return RegressionEnsemble(cfg.ensemble, m.hidden_sizes, m.activation, m.dropout, seed=cfg.seed + 1)


def mse_step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x, y = batch[0], batch[1]
    loss = torch.mean((model(x) - y) ** 2)
    return loss, {}


def ensemble_step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Bootstrap-weighted MSE per member, averaged over members; without weights (validation) plain MSE.

    batch: x (B, 1), y (B, 1), optional weights (B, K) = how often each point is in each member's resample."""
    x, y = batch[0], batch[1]
    errors = (model(x) - y.unsqueeze(0)).squeeze(-1) ** 2  # (K, B)
    if len(batch) > 2:
        weights = batch[2].T  # (K, B)
        loss = ((errors * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)).mean()
    else:
        loss = errors.mean()
    return loss, {}


@torch.no_grad()
def predict(model: nn.Module, data: RegressionData, x: np.ndarray, device: torch.device) -> np.ndarray:
    """Predictions in the data's units for raw x (N,): (N,) for a net, (K, N) for an ensemble."""
    model.eval()
    inputs = torch.as_tensor(data.x_scaler.forward(x), dtype=torch.float32).reshape(-1, 1).to(device)
    return data.y_scaler.inverse(model(inputs).squeeze(-1).double().cpu().numpy())


def bootstrap_weights(n: int, members: int, seed: int) -> torch.Tensor:
    """(n, members) Poisson(1) counts: each member trains on its own bootstrap resample of the data."""
    return torch.as_tensor(np.random.default_rng(seed).poisson(1.0, size=(n, members)), dtype=torch.float32)


def train(
    model: nn.Module,
    step: Any,
    cfg: RegressionConfig,
    data: RegressionData,
    checkpoint_dir: Path,
    resume: bool,
    device: torch.device,
    seed: int,
    hook: Any = None,
    extra: tuple[torch.Tensor, ...] = (),
) -> FitResult:
    train_batches = data.dataset("train").loader(cfg.batch_size, shuffle=True, seed=seed, extra=extra)
    optimizer, scheduler, per_batch = make_optimization(
        model.parameters(), cfg.optim, cfg.epochs, len(train_batches)
    )
    trainer = Trainer(
        model,
        step,
        optimizer,
        train_batches,
        data.dataset("val").loader(4096),
        device=device,
        scheduler=scheduler,
        scheduler_per_batch=per_batch,
        grad_clip=cfg.optim.grad_clip,
    )
    return fit(
        trainer,
        cfg.epochs,
        Monitor("val_loss", "min", cfg.patience),
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        on_epoch_end=hook,
        extra_state={"config": cfg.model_dump(mode="json")},
        progress=False,
    )


def run(cfg: RegressionConfig, run_dir: RunDir, resume: bool = False) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    data = load_data(cfg)
    model = build_model(cfg).to(device)
    started = time.perf_counter()
    result = train(
        model,
        mse_step,
        cfg,
        data,
        run_dir.checkpoints,
        resume,
        device,
        cfg.seed,
        run_dir.metrics_hook(resume),
    )
    train_seconds = time.perf_counter() - started
    run_dir.write_metrics(result.history)
    ensemble = None
    if cfg.ensemble:
        ensemble = build_ensemble(cfg).to(device)
        weights = bootstrap_weights(len(data.train_x), cfg.ensemble, cfg.seed + 1)
        train(
            ensemble,
            ensemble_step,
            cfg,
            data,
            run_dir.checkpoints / "ensemble",
            resume,
            device,
            cfg.seed + 1,
            extra=(weights,),
        )
    metrics, curves = evaluate_models(cfg, data, model, ensemble, run_dir, device)
    if cfg.figures:
        write_figures(cfg, data, model, curves, result.history, run_dir, device)
    return {
        "data_source": data.source,
        "train_points": len(data.train_x),
        "val_points": len(data.val_x),
        "test_points": len(data.test_x),
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "train_seconds": round(train_seconds, 2),
        **metrics,
    }


def evaluate_models(
    cfg: RegressionConfig,
    data: RegressionData,
    model: RegressionNet,
    ensemble: RegressionEnsemble | None,
    run_dir: RunDir,
    device: torch.device,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load the best checkpoints and score: test MSE (and vs noise and true function for synthetic data).

    Returns (metrics, curves): curves holds the fitted curve on a grid (and the ensemble's band) for the
    figures."""
    path = run_dir.checkpoints / "best.pt"
    load_model_state(model, load_checkpoint(path, required=("model",))["model"], path)
    test_pred = predict(model, data, data.test_x, device)
    val_pred = predict(model, data, data.val_x, device)
    metrics: dict[str, Any] = {
        "test_mse": float(np.mean((test_pred - data.test_y) ** 2)),
        "best_val_mse": float(np.mean((val_pred - data.val_y) ** 2)),
    }
    lo = min(data.train_x.min(), data.val_x.min(), data.test_x.min())
    hi = max(data.train_x.max(), data.val_x.max(), data.test_x.max())
    margin = 0.05 * (hi - lo)
    grid = np.linspace(lo - margin, hi + margin, GRID_POINTS)
    curves: dict[str, Any] = {"grid": grid, "fit": predict(model, data, grid, device), "band": None}
    members = None
    if ensemble is not None:
        path = run_dir.checkpoints / "ensemble" / "best.pt"
        load_model_state(ensemble, load_checkpoint(path, required=("model",))["model"], path)
        members = predict(ensemble, data, grid, device)  # (K, GRID_POINTS)
        curves["band"] = (members.mean(axis=0), members.std(axis=0))
        ensemble_test = predict(ensemble, data, data.test_x, device).mean(axis=0)
        metrics["ensemble_test_mse"] = float(np.mean((ensemble_test - data.test_y) ** 2))
    if data.is_synthetic:
        assert data.true_fn is not None and data.noise_std is not None
        noise_var = data.noise_std**2
        inside = gap_grid()
        gap_pred = predict(model, data, inside, device)
        metrics.update(
            {
                "noise_var": noise_var,
                "test_mse_over_noise_var": metrics["test_mse"] / noise_var,
                "test_mse_vs_true": float(np.mean((test_pred - data.true_fn(data.test_x)) ** 2)),
                "gap_mse_vs_true": float(np.mean((gap_pred - data.true_fn(inside)) ** 2)),
            }
        )
        if ensemble is not None:
            gap_members = predict(ensemble, data, inside, device)
            mean, std = gap_members.mean(axis=0), gap_members.std(axis=0)
            # How often the true function lies inside the +-2 sd band where there is no data.
            metrics["gap_band_coverage"] = float(np.mean(np.abs(data.true_fn(inside) - mean) <= 2 * std))
            metrics["gap_band_mean_sd"] = float(std.mean())
            metrics["data_band_mean_sd"] = float(
                predict(ensemble, data, data.test_x, device).std(axis=0).mean()
            )
    return metrics, curves


def write_figures(
    cfg: RegressionConfig,
    data: RegressionData,
    model: RegressionNet,
    curves: dict[str, Any],
    history: list[dict[str, float]],
    run_dir: RunDir,
    device: torch.device,
) -> None:
    # Imported here: a search trial or a run with figures=false never loads matplotlib (~0.6 s per process).
    from dlrl.viz.common import plot_curves
    from dlrl.viz.regression import plot_activations, plot_fit, plot_weight_histograms

    grid = curves["grid"]
    true_curve = data.true_fn(grid) if data.true_fn is not None else None
    run_dir.save_figure(
        plot_fit(
            data.train_x,
            data.train_y,
            grid,
            curves["fit"],
            true_curve,
            curves["band"],
            data.gaps,
            val_x=data.val_x,
            val_y=data.val_y,
        ),
        "fit",
    )
    layers = [
        (name, layer.weight.detach().cpu().numpy(), layer.bias.detach().cpu().numpy())
        for name, layer in model.linear_layers()
    ]
    run_dir.save_figure(plot_weight_histograms(layers), "weight_histograms")
    model.eval()
    with torch.no_grad():
        inputs = torch.as_tensor(data.x_scaler.forward(grid), dtype=torch.float32).reshape(-1, 1).to(device)
        activations = [a.cpu().numpy() for a in model.hidden_activations(inputs)]
    run_dir.save_figure(plot_activations(grid, activations, cfg.model.activation, data.gaps), "activations")
    run_dir.save_figure(
        plot_curves(
            history, {"MSE (standardised y)": ["train_loss", "val_loss"]}, log_y=["MSE (standardised y)"]
        ),
        "learning_curves",
    )


def evaluate(run_dir: RunDir) -> dict[str, Any]:
    """Recompute the test metrics of a finished run from its best checkpoints."""
    cfg = build_config(RegressionConfig, read_config_file(run_dir.config_path), str(run_dir.config_path))
    device = resolve_device(cfg.device)
    data = load_data(cfg)
    model = build_model(cfg).to(device)
    ensemble = build_ensemble(cfg).to(device) if cfg.ensemble else None
    return evaluate_models(cfg, data, model, ensemble, run_dir, device)[0]


def load_model(run_dir: RunDir) -> RegressionNet:
    """The trained network of a finished run (its best checkpoint), on the config's device."""
    cfg = build_config(RegressionConfig, read_config_file(run_dir.config_path), str(run_dir.config_path))
    model = build_model(cfg)
    restore_model(model, run_dir.checkpoints / "best.pt")
    return model.to(resolve_device(cfg.device)).eval()


class RegressionAdapter(PoolAdapter):
    """``dlrl tune regression``: MSE on held-out folds of the training + validation points."""

    name = "regression"
    command = "regression"
    config_cls = RegressionConfig
    metric = "val_mse"
    mode = "min"
    metrics = ("val_mse", "val_loss", "train_mse", "train_loss")

    def validate(self, cfg: RegressionConfig) -> None:
        validate(cfg)

    def load_data(self, cfg: RegressionConfig) -> Pool:
        """Training + validation points, standardised as the experiment does (scalers of its train part)."""
        data = load_data(cfg)
        train, val = data.dataset("train"), data.dataset("val")
        return Pool(torch.cat([train.x, val.x]), torch.cat([train.y, val.y]), extra=data.y_scaler.std)

    def fold_trainer(
        self, cfg: RegressionConfig, data: Pool, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> Trainer:
        y_var = float(data.extra) ** 2

        def step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            loss, metrics = mse_step(model, batch)
            return loss, {**metrics, "mse": loss.detach() * y_var}  # MSE in the data's units, like test_mse

        return pool_trainer(cfg, build_model(cfg), step, data, train_idx, val_idx, fold, val_batch_size=4096)
