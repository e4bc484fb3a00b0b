"""``dlrl tune dqn``: each "fold" of a trial is one more seed; one "epoch" is eval_every env steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlrl.config.dqn import DQNConfig
from dlrl.experiments.dqn.jobs import validate
from dlrl.rl.loop import DQNTrainer
from dlrl.utils import derived_seed


class DQNSeedTrainer:
    """The tune layer's FoldTrainer for DQN: trains ``eval_every`` steps per call, reports the evaluation."""

    def __init__(self, cfg: DQNConfig, seed: int):
        self.trainer = DQNTrainer(cfg, cfg.explorations[0], seed)

    def train_epoch(self) -> dict[str, float]:
        trainer = self.trainer
        if not trainer.done:
            trainer.train(trainer.step + trainer.cfg.eval_every)
        result = trainer.result
        recent = [e["return"] for e in result.episodes[-10:]]
        last = result.evals[-1]["eval_mean"] if result.evals else float("nan")
        # once stopped early at stop_return, the last evaluation stands for the remaining epochs
        return {
            "val_return": last,
            "val_best_return": result.best_eval,
            "train_return": float(np.mean(recent)) if recent else float("nan"),
        }

    def state(self) -> dict[str, Any]:
        return self.trainer.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self.trainer.load_state(state)


class DQNTuneAdapter:
    """``dlrl tune dqn``: the objective is the greedy evaluation return, averaged over the trial's seeds."""

    name = "dqn"
    command = "dqn"
    config_cls = DQNConfig
    metric = "val_return"
    mode = "max"
    metrics = ("val_return", "val_best_return", "train_return")

    def validate(self, cfg: DQNConfig) -> None:
        validate(cfg)

    def load_data(self, cfg: DQNConfig) -> None:
        validate(cfg)  # nothing to load: checks the env id once per trial

    def num_samples(self, data: Any) -> int:
        return 1000  # the K-fold split is unused: fold k only picks the seed

    def epochs(self, cfg: DQNConfig) -> int:
        return -(-cfg.total_steps // cfg.eval_every)

    def fold_trainer(
        self, cfg: DQNConfig, data: Any, train_idx: np.ndarray, val_idx: np.ndarray, fold: int
    ) -> DQNSeedTrainer:
        return DQNSeedTrainer(cfg, derived_seed(cfg.seed, fold))
