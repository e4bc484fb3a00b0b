"""One trial: the experiment's K folds trained in lockstep by the K-fold driver, the mean over folds
reported per epoch.

``run_trial`` is plain Python (no ray): it takes a ``report(metrics, state)`` callback and an optional
state to resume from. ``tune_trainable`` is the thin Ray Tune wrapper around it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from dlrl.data.kfold import kfold_indices
from dlrl.train.checkpoint import load_checkpoint, save_checkpoint
from dlrl.train.kfold import Report, build_folds, run_folds
from dlrl.tuning.adapter import TuneAdapter
from dlrl.tuning.space import apply_params
from dlrl.utils import configure_torch, seed_everything

CHECKPOINT_FILE = "trial.pt"


def run_trial(
    adapter: TuneAdapter,
    base: dict[str, Any],
    params: dict[str, Any],
    folds: int,
    split_seed: int,
    report: Report,
    resume_state: dict[str, Any] | None = None,
    checkpoint_every: int = 1,
    metric: str | None = None,
) -> list[dict[str, float]]:
    """Train ``folds`` folds of ``params`` applied to ``base`` for the config's epochs; returns the rows.

    Fold splits depend only on ``split_seed`` (the search seed), so every trial sees the same folds.
    A trial whose metric turns NaN/inf reports it once and stops.
    """
    cfg = apply_params(adapter.config_cls, base, params)
    seed_everything(cfg.seed)
    data = adapter.load_data(cfg)
    splits = kfold_indices(adapter.num_samples(data), folds, split_seed)
    trainers = build_folds(
        lambda fold, train_idx, val_idx: adapter.fold_trainer(cfg, data, train_idx, val_idx, fold),
        splits,
        cfg.seed,
    )
    result = run_folds(
        trainers,
        adapter.epochs(cfg),
        report,
        metric=metric or adapter.metric,
        resume_state=resume_state,
        checkpoint_every=checkpoint_every,
    )
    return result.history


def tune_trainable(
    params: dict[str, Any],
    *,
    adapter: TuneAdapter,
    base: dict[str, Any],
    folds: int,
    split_seed: int,
    threads: int,
    checkpoint_every: int,
    metric: str,
) -> None:
    """The Ray Tune function trainable: ``run_trial`` with tune.report / tune.get_checkpoint.

    Every report also says where the trial ran (``node``: the Ray node id; Tune adds ``node_ip``) and the
    epoch of the checkpoint it was (re)started from (``restored_from``, 0 for a fresh start): trials.csv
    shows both, and a trial retried after its node was lost shows the move."""
    import ray  # ray only in the worker: the plain trial runs and tests without it
    from ray import tune

    configure_torch(threads)
    resume_state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume_state = load_checkpoint(Path(directory) / CHECKPOINT_FILE)
    where = {
        "node": ray.get_runtime_context().get_node_id(),
        "restored_from": int(resume_state["epoch"]) if resume_state is not None else 0,
    }

    def report(row: dict[str, Any], state: dict[str, Any] | None) -> None:
        row = {**row, **where}
        if state is None:
            tune.report(row)
            return
        with tempfile.TemporaryDirectory(prefix="dlrl-trial-") as directory:
            save_checkpoint(Path(directory) / CHECKPOINT_FILE, state)
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(directory))

    run_trial(adapter, base, params, folds, split_seed, report, resume_state, checkpoint_every, metric)
