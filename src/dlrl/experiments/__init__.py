"""Experiments: each module wires config + data + model + trainer + figures into
``run(config, run_dir, resume) -> summary``, and may export ``validate(config)``, ``evaluate(run_dir)``,
``load_model(run_dir)``, ``TARGETS`` and a tune adapter (``dlrl.tuning.adapter.TuneAdapter``).

The registry maps a name to its config class, module and adapter as "module:attribute" strings, imported
lazily so that ``dlrl --help`` does not import torch-heavy code (Ray, Gymnasium) it does not need. Adding
an experiment: write its module and config, then ``register(ExperimentEntry(...))`` (README: "Add an
experiment").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from dlrl.errors import DlrlError


@dataclass(frozen=True)
class ExperimentEntry:
    name: str
    help: str
    config: str  # "module:Class"
    module: str  # module with run(config, run_dir, resume) -> summary and evaluate(run_dir) -> metrics
    command: str = ""  # CLI subcommand, if not the name
    adapter: str = ""  # "module:Class" of its tune adapter; empty: `dlrl tune` cannot search it
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

    def tune_adapter(self) -> Any:
        """A new instance of the experiment's tune adapter."""
        module, _, attribute = self.adapter.partition(":")
        return getattr(importlib.import_module(module), attribute)()


EXPERIMENTS: dict[str, ExperimentEntry] = {
    entry.name: entry
    for entry in [
        ExperimentEntry(
            "regression",
            "Part 1a: 1-D regression network (synthetic data with gaps, or your CSV)",
            "dlrl.config.regression:RegressionConfig",
            "dlrl.experiments.regression",
            adapter="dlrl.experiments.regression:RegressionAdapter",
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
            adapter="dlrl.experiments.classifier:ClassifierAdapter",
            options=(("--dataset", "data.dataset", {"choices": ["mnist", "fashion-mnist"]}),),
        ),
        ExperimentEntry(
            "autoencoder",
            "Part 2: convolutional AutoEncoder, denoising (dae) or variational (vae), latent-space analysis",
            "dlrl.config.autoencoder:AutoEncoderConfig",
            "dlrl.experiments.autoencoder",
            adapter="dlrl.experiments.autoencoder:AutoEncoderAdapter",
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
            adapter="dlrl.experiments.dqn.adapter:DQNTuneAdapter",
            options=(
                (
                    "--env",
                    "env",
                    {
                        "metavar": "ID",
                        "help": "Gymnasium id: CartPole-v1 (default), Acrobot-v1, "
                        "MountainCar-v0, LunarLander-v3 ship presets",
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


def register(entry: ExperimentEntry) -> None:
    """Add (or replace) an experiment: the CLI, the API, ``dlrl tune`` and the report pick it up."""
    EXPERIMENTS[entry.name] = entry


def get_experiment(name: str) -> ExperimentEntry:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise DlrlError(f"unknown experiment '{name}' (choose from {', '.join(EXPERIMENTS)})") from None


def searchable() -> list[str]:
    """Names of the experiments ``dlrl tune`` can search."""
    return [name for name, entry in EXPERIMENTS.items() if entry.adapter]


def get_adapter(name: str) -> Any:
    """The tune adapter of experiment ``name``; an unknown or unsearchable name is a one-line DlrlError."""
    if name not in searchable():
        raise DlrlError(f"tune: unknown experiment '{name}' (choose from {', '.join(searchable())})")
    return EXPERIMENTS[name].tune_adapter()
