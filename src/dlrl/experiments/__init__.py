"""Experiments: each module wires config + data + model + loop + figures into
``run(config, run_dir, resume)``.

The registry maps a CLI name to its config class and module, imported lazily so that ``dlrl --help``
does not import torch-heavy code (Ray, Gymnasium) it does not need.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExperimentEntry:
    name: str
    help: str
    config: str  # "module:Class"
    module: str  # module with run(config, run_dir, resume) -> summary and evaluate(run_dir) -> metrics
    command: str = ""  # CLI subcommand, if not the name
    # Extra CLI flags that set config keys: (flag, dotted config key, argparse keyword arguments)
    options: tuple[tuple[str, str, dict[str, Any]], ...] = ()

    @property
    def cli_name(self) -> str:
        return self.command or self.name

    def config_cls(self) -> Any:
        module, _, cls = self.config.partition(":")
        return getattr(importlib.import_module(module), cls)

    def load(self) -> Any:
        return importlib.import_module(self.module)


EXPERIMENTS: dict[str, ExperimentEntry] = {
    entry.name: entry
    for entry in [
        ExperimentEntry(
            "regression",
            "Part 1a: 1-D regression network (synthetic data with gaps, or your CSV)",
            "dlrl.config.regression:RegressionConfig",
            "dlrl.experiments.regression",
            options=(
                ("--csv", "data.csv", {"metavar": "FILE", "help": "two-column x,y CSV (header optional)"}),
            ),
        ),
        ExperimentEntry(
            "classifier",
            "Part 1b: feed-forward classifier on MNIST / Fashion-MNIST",
            "dlrl.config.classifier:ClassifierConfig",
            "dlrl.experiments.classifier",
            command="classify",
            options=(("--dataset", "data.dataset", {"choices": ["mnist", "fashion-mnist"]}),),
        ),
        ExperimentEntry(
            "autoencoder",
            "Part 2: convolutional AutoEncoder, denoising (dae) or variational (vae), latent-space analysis",
            "dlrl.config.autoencoder:AutoEncoderConfig",
            "dlrl.experiments.autoencoder",
            options=(
                (
                    "--variant",
                    "variant",
                    {"choices": ["ae", "dae", "vae"], "help": "model variant (default: ae)"},
                ),
                ("--folds", "folds", {"type": int, "metavar": "K", "help": "K-fold cross validation first"}),
                ("--dataset", "data.dataset", {"choices": ["mnist", "fashion-mnist"]}),
            ),
        ),
        ExperimentEntry(
            "finetune",
            "Part 2: a trained AutoEncoder's encoder + classifier head, frozen / fine-tuned / from scratch",
            "dlrl.config.autoencoder:FinetuneConfig",
            "dlrl.experiments.finetune",
            options=(
                ("--encoder-run", "encoder_run", {"metavar": "RUN_DIR", "help": "AutoEncoder run directory"}),
            ),
        ),
        ExperimentEntry(
            "dqn",
            "Part 3: DQN on Gymnasium classic control (also: dlrl rl train | evaluate | play)",
            "dlrl.config.dqn:DQNConfig",
            "dlrl.experiments.dqn",
            options=(
                (
                    "--env",
                    "env",
                    {
                        "metavar": "ID",
                        "help": "Gymnasium id: CartPole-v1 (default), Acrobot-v1, "
                        "MountainCar-v0 ship presets",
                    },
                ),
                (
                    "--seeds",
                    "seeds",
                    {"metavar": "LIST", "help": "seeds to train in parallel, e.g. 0,1,2,3,4"},
                ),
                (
                    "--exploration",
                    "explorations",
                    {
                        "metavar": "LIST",
                        "help": "epsilon, softmax, or both (epsilon,softmax) on the same seeds",
                    },
                ),
                (
                    "--workers",
                    "workers",
                    {"type": int, "metavar": "N", "help": "parallel processes (default: cores)"},
                ),
            ),
        ),
    ]
}


def get_experiment(name: str) -> ExperimentEntry:
    from dlrl.errors import DlrlError

    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise DlrlError(f"unknown experiment '{name}' (choose from {', '.join(EXPERIMENTS)})") from None
