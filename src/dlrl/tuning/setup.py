"""A search resolved and checked before Ray starts: the experiment's config and the search settings
(`SearchSetup`), the run directory to write or resume, and every check that needs files, data, the storage or
the cluster. Nothing here imports Ray."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlrl.config import ExperimentConfig, layer_config, read_config_file
from dlrl.config.tune import RESUME_FREE_KEYS, TuneConfig
from dlrl.data.kfold import kfold_indices
from dlrl.errors import ConfigError, DlrlError
from dlrl.rundir import (
    DEFAULT_RUNS_ROOT,
    RunDir,
    first_difference,
    fresh_run_path,
    holds_anything,
    latest_run_path,
)
from dlrl.tuning.adapter import TuneAdapter
from dlrl.tuning.cluster import ClusterInfo, inspect_cluster
from dlrl.tuning.space import load_tune_config
from dlrl.tuning.storage import check_storage
from dlrl.utils import usable_cores


@dataclass
class SearchSetup:
    """A resolved search: the experiment's base config, the search settings and what to optimise."""

    adapter: TuneAdapter
    base: ExperimentConfig
    tune: TuneConfig
    metric: str
    mode: str

    @property
    def experiment(self) -> str:
        return self.adapter.name

    def as_dict(self) -> dict[str, Any]:
        """config.yaml of the search run: the experiment config plus a 'tune' section."""
        tune = self.tune.model_dump(mode="json", exclude_none=True)
        tune.update({"metric": self.metric, "mode": self.mode})
        tune["space"] = {k: v.model_dump(mode="json", exclude_none=True) for k, v in self.tune.space.items()}
        return {**self.base.model_dump(mode="json"), "tune": tune}


def resolve_search(
    adapter: TuneAdapter,
    config_file: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    quick: bool = False,
    options: dict[str, Any] | None = None,
    tune_options: dict[str, Any] | None = None,
) -> SearchSetup:
    """Experiment config (defaults < --quick < file < options < key=value) and search settings (shipped
    space < --quick < the file's 'tune:' section < tune options < tune.key=value).

    config_file: a YAML/TOML file, or its content as a dict (the Python API's config)."""
    cls = adapter.config_cls
    if isinstance(config_file, dict):
        file_data, config_file = dict(config_file), "config dict"
    else:
        file_data = read_config_file(config_file) if config_file is not None else None
    user_tune = file_data.pop("tune", None) if file_data is not None else None
    tune_overrides = [item[len("tune.") :] for item in overrides or [] if item.startswith("tune.")]
    plain = [item for item in overrides or [] if not item.startswith("tune.")]
    base = layer_config(cls, adapter.name, file_data, str(config_file), plain, quick, options)
    tune_cfg = load_tune_config(
        adapter.name,
        cls,
        base.model_dump(mode="json"),
        user_tune,
        str(config_file or ""),
        quick,
        tune_options,
        tune_overrides,
    )
    metric = tune_cfg.metric or adapter.metric
    if metric not in adapter.metrics:
        raise ConfigError(f"--metric {metric}: {adapter.name} reports {', '.join(adapter.metrics)}")
    if tune_cfg.mode:
        mode = tune_cfg.mode
    elif metric == adapter.metric:
        mode = adapter.mode
    else:
        mode = "max" if any(word in metric for word in ("acc", "reward", "return", "psnr")) else "min"
    return SearchSetup(adapter, base, tune_cfg, metric, mode)


def _latest(experiment: str, root: Path) -> Path | None:
    return latest_run_path(f"tune-{experiment}", root)


def choose_search_dir(
    setup: SearchSetup, out: str | Path | None, resume: bool, root: Path = DEFAULT_RUNS_ROOT
) -> tuple[RunDir, bool]:
    """(run_dir, created): a new empty directory, or with ``resume`` the given/latest search of this kind."""
    if not resume:
        path = fresh_run_path(f"tune-{setup.experiment}", out, root)
        return RunDir(path), not path.exists()
    path = Path(out) if out else _latest(setup.experiment, root)
    if path is None:
        raise DlrlError(
            f"--resume: no earlier 'tune {setup.experiment}' run under {root}/; pass --out RUN_DIR"
        )
    config_path = path / "config.yaml"
    if not config_path.is_file():
        if path.is_dir() and not holds_anything(path):  # killed before it wrote anything: start afresh
            return RunDir(path), False
        raise DlrlError(f"--resume: {path} is not a dlrl run directory (no config.yaml)")
    stored = read_config_file(config_path)
    if "tune" not in stored:
        raise DlrlError(
            f"--resume: {path} is a '{stored.get('experiment')}' run, not a search (no 'tune' section)"
        )
    if stored.get("experiment") != setup.experiment:
        raise DlrlError(
            f"--resume: {path} is a search of '{stored.get('experiment')}', not '{setup.experiment}'"
        )
    current = setup.as_dict()
    for config in (stored, current):
        for key in ("device", "threads"):
            config.pop(key, None)
        for key in RESUME_FREE_KEYS:
            config["tune"].pop(key, None)
    diff = first_difference(stored, current)
    if diff:
        raise DlrlError(
            f"--resume: settings differ from the interrupted search in {path} ({diff}); resume with "
            f"the same options, or --config {config_path}"
        )
    return RunDir(path), False


def check_before_ray(setup: SearchSetup, address: str | None) -> tuple[int, ClusterInfo | None]:
    """Checks that need files, data, the storage or the cluster, before anything is written or Ray starts
    in this process; returns the pool size and the cluster (None: a new local Ray)."""
    folds = setup.tune.folds
    if folds < 2:
        raise ConfigError(f"--folds {folds}: K-fold cross validation needs at least 2 folds")
    setup.adapter.validate(setup.base)
    pool = setup.adapter.num_samples(setup.adapter.load_data(setup.base))
    if folds > pool:
        raise ConfigError(f"--folds {folds}: more folds than the {pool} training samples")
    kfold_indices(pool, folds, setup.base.seed)
    if setup.tune.storage is not None:
        check_storage(setup.tune.storage)
    cpus = setup.tune.cpus_per_trial
    cluster = inspect_cluster(address)
    if cluster is None:
        if cpus > usable_cores():
            raise ConfigError(f"--cpus-per-trial {cpus:g}: this machine has {usable_cores()} CPUs")
        return pool, None
    cluster.check_cpus(cpus, f"--cpus-per-trial {cpus:g}")
    if setup.tune.storage is None and not cluster.on_this_machine():
        machines = ", ".join(sorted(cluster.machines))
        raise ConfigError(
            f"{cluster.given}: the cluster's nodes run on other machines ({machines}), which cannot write "
            "into this run directory: give --storage a directory every node shares, or a URI (s3://...)"
        )
    return pool, cluster
