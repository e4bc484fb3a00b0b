"""One function per experiment, the same validation and one-line errors as the CLI (which calls them).

    result = dlrl.regression(epochs=50, optim={"lr": 3e-3})     # keyword overrides, nested or dotted
    result = dlrl.classify("my.yaml", quick=True)              # a config file, a dict or a config object
    result["test_accuracy"], result.figures["confusion_matrix"], result.model

Layering, later wins: defaults < quick < config < keyword overrides. Nothing is written before the config,
the run directory and the experiment's own checks (a CSV, a parent run) have passed.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dlrl.api.results import ExperimentResult
from dlrl.config import ExperimentConfig, layer_config, read_config_file
from dlrl.errors import ConfigError, RunDirError
from dlrl.experiments import ExperimentEntry, get_experiment
from dlrl.experiments.runner import run_experiment
from dlrl.rundir import RunDir, choose_run_dir
from dlrl.tuning.cluster import ClusterInfo, attached, inspect_cluster

log = logging.getLogger(__name__)

ConfigInput = ExperimentConfig | Mapping[str, Any] | str | Path | None


def dotted(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1e-3}, "data.limit": 500}`` -> ``{"optim.lr": 1e-3, "data.limit": 500}``."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value) if isinstance(value, Path) else value  # run dirs, CSVs
    return flat


def config_data(cls: type[ExperimentConfig], name: str, config: ConfigInput) -> dict[str, Any] | None:
    """``config`` as the content of a config file: a config object of the experiment, a dict shaped like a
    config file, or a YAML/TOML file path (read here)."""
    if isinstance(config, ExperimentConfig):
        if not isinstance(config, cls):
            raise ConfigError(f"config: a {type(config).__name__}, but {name} takes a {cls.__name__}")
        return config.model_dump(mode="json")
    if isinstance(config, Mapping):
        return json.loads(json.dumps(config, default=str))  # a deep copy of plain values
    if isinstance(config, str | Path):
        return read_config_file(config)
    if config is None:
        return None
    raise ConfigError(
        f"config: expected a {cls.__name__}, a dict or a YAML/TOML file path, got {type(config).__name__}"
    )


def resolve_config(
    entry: ExperimentEntry,
    config: ConfigInput = None,
    quick: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """The validated config of ``entry`` from defaults < quick < ``config`` < ``overrides``."""
    cls = entry.config_cls()
    data = config_data(cls, entry.name, config)
    source = str(config) if isinstance(config, str | Path) else "config"
    return layer_config(cls, entry.name, data, source, dotted(overrides or {}) or None, quick)


def check_options(out: Any, resume: Any, quick: Any) -> None:
    if out is not None and not isinstance(out, str | Path):
        raise ConfigError(f"out: expected a directory path, got {type(out).__name__}")
    for name, value in (("resume", resume), ("quick", quick)):
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected True or False, got {value!r}")


def run_config(
    config: ExperimentConfig,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    keep_figures: bool = True,
) -> ExperimentResult:
    """Run a resolved config of its experiment (``config.experiment``); what every entry point ends in."""
    check_options(out, resume, False)
    entry = get_experiment(config.experiment)
    chosen, created = choose_run_dir(entry.name, config, out, resume)
    log.info("%s: run directory %s", entry.name, chosen.path)
    run_dir = RunDir(chosen.path, keep_figures=keep_figures)
    summary = run_experiment(entry, config, run_dir, resume, created)
    return ExperimentResult(entry.name, run_dir.path, config, summary, dict(run_dir.kept_figures or {}))


def run(
    experiment: str,
    config: ConfigInput = None,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    quick: bool = False,
    **overrides: Any,
) -> ExperimentResult:
    """Run experiment ``experiment`` (a registry name) and return its result; see the module docstring."""
    check_options(out, resume, quick)
    cfg = resolve_config(get_experiment(experiment), config, quick, overrides)
    return run_config(cfg, out=out, resume=resume)


def evaluate(run_dir: str | Path) -> dict[str, Any]:
    """Recompute a finished run's test metrics from the checkpoint it tested (its experiment's evaluate)."""
    directory = RunDir(run_dir)
    if not directory.config_path.is_file():
        is_run_all = (directory.path / "sections.json").is_file()
        hint = " (a 'dlrl run' directory: evaluate one of its sections)" if is_run_all else ""
        raise RunDirError(f"{directory.path}: not a dlrl run directory (no config.yaml){hint}")
    experiment = read_config_file(directory.config_path).get("experiment")
    if not isinstance(experiment, str):
        raise ConfigError(f"{directory.config_path}: has no 'experiment' key")
    module = get_experiment(experiment).load()
    if not hasattr(module, "evaluate"):
        raise RunDirError(f"{directory.path}: '{experiment}' runs cannot be re-evaluated")
    return module.evaluate(directory)


def regression(config: ConfigInput = None, **options: Any) -> ExperimentResult:
    """Part 1a: the 1-D regression network (synthetic data with gaps, or ``data={"csv": PATH}``).

    Options: out, resume, quick, and any config key (``epochs=100``, ``optim={"lr": 1e-3}``)."""
    return run("regression", config, **options)


def classify(config: ConfigInput = None, **options: Any) -> ExperimentResult:
    """Part 1b: the feed-forward classifier on MNIST / Fashion-MNIST (``data={"dataset": ...}``)."""
    return run("classifier", config, **options)


def autoencoder(config: ConfigInput = None, **options: Any) -> ExperimentResult:
    """Part 2: the convolutional AutoEncoder; ``variant="dae"`` or ``"vae"``; ``folds=K`` for K-fold CV."""
    return run("autoencoder", config, **options)


def finetune(config: ConfigInput = None, **options: Any) -> ExperimentResult:
    """Part 2: an AutoEncoder run's encoder fine-tuned for classification (``encoder_run=RUN_DIR``)."""
    return run("finetune", config, **options)


def dqn(config: ConfigInput = None, *, address: str | None = None, **options: Any) -> ExperimentResult:
    """Part 3: DQN on Gymnasium classic control (``env="CartPole-v1"``, ``seeds=[0, 1, 2]``, ...);
    ``address="HOST:PORT"`` (or RAY_ADDRESS) trains the agents as Ray tasks on that cluster."""
    with cluster(address):
        return run("dqn", config, **options)


@contextlib.contextmanager
def cluster(address: str | None) -> Iterator[ClusterInfo | None]:
    """Inside, DQN's agents run as Ray tasks on the cluster at ``address`` (or RAY_ADDRESS), checked first
    (one DlrlError line for an unreachable cluster, its token or version); no address: local processes."""
    info = inspect_cluster(address)
    with attached(info):
        yield info
