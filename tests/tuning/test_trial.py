"""One trial without Ray: lockstep K folds, mean and spread over folds, determinism, exact resume."""

from __future__ import annotations

import pytest

from dlrl.config import apply_overrides
from dlrl.config.regression import RegressionConfig
from dlrl.data.kfold import kfold_indices
from dlrl.experiments import get_adapter
from dlrl.experiments.autoencoder import AutoEncoderAdapter
from dlrl.experiments.classifier import ClassifierAdapter
from dlrl.experiments.regression import RegressionAdapter
from dlrl.train.kfold import FoldTrainer, aggregate
from dlrl.tuning.trial import run_trial

from .conftest import TINY_REGRESSION

BASE = apply_overrides(RegressionConfig().model_dump(mode="json"), TINY_REGRESSION)
PARAMS = {"optim.lr": 0.01, "model.hidden_sizes": "[8, 8]", "batch_size": 16}


def test_aggregate_mean_and_population_std_over_folds():
    row = aggregate(
        [{"val_mse": 1.0, "train_loss": 2.0}, {"val_mse": 3.0, "train_loss": 2.0}], per_fold=("val_mse",)
    )
    assert row == {
        "val_mse": 2.0,
        "val_mse_std": 1.0,
        "val_mse_fold0": 1.0,
        "val_mse_fold1": 3.0,
        "train_loss": 2.0,
        "train_loss_std": 0.0,
    }


def _run(resume_state=None, stop_after=None, folds=3):
    rows, states = [], []

    def report(row, state):
        rows.append(row)
        states.append(state)
        if stop_after is not None and len(rows) == stop_after:
            raise KeyboardInterrupt

    try:
        run_trial(RegressionAdapter(), BASE, PARAMS, folds, 0, report=report, resume_state=resume_state)
    except KeyboardInterrupt:
        pass
    return rows, states


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_folds_in_lockstep_report_every_epoch_and_are_deterministic():
    rows, states = _run()
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert {"val_mse", "val_mse_std", "val_mse_fold2", "train_loss"} <= set(rows[0])
    assert rows[-1]["val_mse"] < rows[0]["val_mse"]  # it learns
    assert all(s is not None and len(s["folds"]) == 3 for s in states)
    again, _ = _run()
    assert _strip(again) == _strip(rows)


def test_resume_from_a_checkpoint_equals_an_uninterrupted_trial():
    full, _ = _run()
    first, states = _run(stop_after=2)
    rest, _ = _run(resume_state=states[1])
    assert [r["epoch"] for r in rest] == [3, 4]
    assert _strip(first + rest) == _strip(full)


def test_fold_splits_depend_only_on_the_seed():
    a, b, c = kfold_indices(120, 3, 0), kfold_indices(120, 3, 0), kfold_indices(120, 3, 1)
    assert all((x[1] == y[1]).all() for x, y in zip(a, b, strict=True))
    assert not all((x[1] == y[1]).all() for x, y in zip(a, c, strict=True))


def test_adapters_follow_the_interface():
    for adapter in (get_adapter("regression"), get_adapter("classifier")):
        assert adapter.metric in adapter.metrics and adapter.mode in ("min", "max")
    reg = RegressionAdapter()
    cfg = RegressionConfig.model_validate(BASE)
    data = reg.load_data(cfg)
    assert reg.num_samples(data) == 120  # training + validation points, never the test set
    trainer = reg.fold_trainer(cfg, data, *kfold_indices(120, 2, 0)[0], fold=0)
    assert isinstance(trainer, FoldTrainer)
    assert isinstance(ClassifierAdapter().config_cls.model_fields, dict)


def test_unknown_experiment():
    from dlrl.errors import DlrlError

    with pytest.raises(DlrlError, match="unknown experiment 'nope'"):
        get_adapter("nope")


@pytest.mark.parametrize("variant", ["dae", "vae"])
def test_autoencoder_folds_report_reconstruction_metrics(variant):
    from dlrl.config.autoencoder import AutoEncoderConfig

    over = {"data.limit": 200, "epochs": 2, "variant": variant, "vae.warmup_epochs": 2, "device": "cpu"}
    base = apply_overrides(AutoEncoderConfig().model_dump(mode="json"), over)
    rows = []
    run_trial(
        AutoEncoderAdapter(), base, {"optim.lr": 3e-3}, 2, 0, report=lambda row, state: rows.append(row)
    )
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"val_loss", "val_loss_std", "val_mse", "val_loss_fold1"} <= set(rows[-1])
    if variant == "vae":  # the KL warm-up follows each fold's own epoch: beta 0.5, then 1
        assert [r["train_beta"] for r in rows] == [0.5, 1.0]


def test_a_resumed_trials_repeated_epochs_count_once():
    import pandas as pd

    from dlrl.tuning.results import _history

    # checkpoint after epoch 1, interrupted after reporting epoch 2, resumed: epochs 2 and 3 reported again
    frame = pd.DataFrame({"epoch": [1, 2, 2, 3], "val_mse": [5.0, 4.0, 4.5, 3.0], "done": [False] * 4})
    assert _history(frame) == [
        {"epoch": 1, "val_mse": 5.0},
        {"epoch": 2, "val_mse": 4.5},
        {"epoch": 3, "val_mse": 3.0},
    ]


def test_dqn_trial_trains_one_seed_per_fold_and_resumes():
    """DQN's adapter: each fold is a seed, each epoch eval_every env steps; a resumed trial continues from
    the fold states. Not bit for bit yet: a DQN state holds no replay memory (open issue: exact resume)."""
    from dlrl.config.dqn import DQNConfig
    from dlrl.experiments.dqn.adapter import DQNTuneAdapter

    over = {
        "total_steps": 300,
        "learning_starts": 50,
        "eval_every": 100,
        "eval_episodes": 2,
        "confirm_episodes": None,
        "buffer_size": 500,
        "log_every": 50,
        "device": "cpu",
    }
    base = apply_overrides(DQNConfig(experiment="dqn").model_dump(mode="json"), over)
    adapter = DQNTuneAdapter()

    def trial(resume_state=None, stop_after=None):
        rows, states = [], []

        def report(row, state):
            rows.append(row)
            states.append(state)
            if stop_after is not None and len(rows) == stop_after:
                raise KeyboardInterrupt

        try:
            run_trial(adapter, base, {"lr": 1e-3}, 2, 0, report, resume_state=resume_state)
        except KeyboardInterrupt:
            pass
        return rows, states

    full, _ = trial()
    assert [r["epoch"] for r in full] == [1, 2, 3]
    assert {"val_return", "val_return_std", "val_return_fold1", "train_return"} <= set(full[0])
    again, _ = trial()
    assert _strip(again) == _strip(full)  # deterministic under the seed
    first, states = trial(stop_after=2)
    rest, _ = trial(resume_state=states[1])
    assert _strip(first) == _strip(full[:2]) and [r["epoch"] for r in rest] == [3]
