"""K-fold cross validation of the AutoEncoder on its training split, with the one K-fold driver.

The folds are the ones ``dlrl tune autoencoder`` trains in each trial (the adapter's fold trainers), in
lockstep; the state of all folds is checkpointed after every epoch (checkpoints/cv.pt), so an interrupted
run resumes mid-CV exactly.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dlrl.config.autoencoder import AutoEncoderConfig
from dlrl.data.images import ImageData
from dlrl.data.kfold import kfold_indices
from dlrl.experiments.autoencoder.adapter import AutoEncoderAdapter
from dlrl.rundir import RunDir
from dlrl.train.checkpoint import load_checkpoint, save_checkpoint
from dlrl.train.kfold import Pool, build_folds, run_folds
from dlrl.viz.autoencoder import plot_fold_curves

log = logging.getLogger(__name__)

CV_CHECKPOINT = "cv.pt"


def cross_validate(cfg: AutoEncoderConfig, data: ImageData, run_dir: RunDir, resume: bool) -> dict[str, Any]:
    """Train ``cfg.folds`` folds of the training split in lockstep; results in cv.json, cv_metrics.csv."""
    adapter = AutoEncoderAdapter()
    pool = Pool(data.train_x, None)
    splits = kfold_indices(len(pool), cfg.folds, cfg.seed)
    trainers = build_folds(
        lambda fold, train_idx, val_idx: adapter.fold_trainer(cfg, pool, train_idx, val_idx, fold),
        splits,
        cfg.seed,
    )
    path = run_dir.checkpoints / CV_CHECKPOINT
    resume_state = load_checkpoint(path) if resume and path.is_file() else None

    def report(row: dict[str, float], state: dict[str, Any] | None) -> None:
        if state is not None:
            save_checkpoint(path, state)
        log.info(
            "cv epoch %d/%d: val_loss %.5g ± %.2g",
            row["epoch"],
            cfg.epochs,
            row["val_loss"],
            row["val_loss_std"],
        )

    result = run_folds(trainers, cfg.epochs, report, metric="val_loss", resume_state=resume_state)
    histories = result.fold_histories
    run_dir.write_metrics(
        [{"fold": fold + 1, **row} for fold, history in enumerate(histories) for row in history],
        "cv_metrics.csv",
    )
    per_fold = {}
    for fold, history in enumerate(histories, 1):
        losses = [row["val_loss"] for row in history]
        best = int(np.nanargmin(losses)) if not np.isnan(losses).all() else 0
        per_fold[f"fold{fold}"] = {
            "best_val_loss": losses[best],
            "final_val_loss": losses[-1],
            "best_epoch": best + 1,
        }
    run_dir.write_json("cv.json", per_fold)
    run_dir.save_figure(plot_fold_curves(histories), "cv_folds")
    best_losses = np.array([fold["best_val_loss"] for fold in per_fold.values()])
    return {
        "cv_val_loss_mean": float(best_losses.mean()),
        "cv_val_loss_std": float(best_losses.std(ddof=1)) if len(best_losses) > 1 else 0.0,
        "cv_val_loss_min": float(best_losses.min()),
        "cv_val_loss_max": float(best_losses.max()),
        "cv": per_fold,
    }
