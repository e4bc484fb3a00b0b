"""``dlrl.tune(...)``: a hyperparameter search of one experiment with Ray Tune, K-fold CV in every trial."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlrl.api.experiments import ConfigInput, check_options, config_data, dotted
from dlrl.api.results import SearchResult
from dlrl.config import build_config, read_config_file
from dlrl.experiments import get_adapter
from dlrl.experiments import search as experiment_search
from dlrl.tuning.setup import SearchSetup
from dlrl.tuning.setup import resolve_search as resolve_adapter_search


def _text(value: Any) -> str:
    """A value as override text (parsed back as YAML), so the API goes through the CLI's validation."""
    return value if isinstance(value, str) else json.dumps(value)


def resolve(
    experiment: str,
    config: ConfigInput = None,
    quick: bool = False,
    search: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> SearchSetup:
    """The experiment's base config and the search settings. ``search``: keys of the search (num_samples,
    folds, metric, scheduler, space={...}, ...), as a config file's ``tune:`` section holds them."""
    adapter = get_adapter(experiment)
    data = config_data(adapter.config_cls, experiment, config)
    items = [f"{key}={_text(value)}" for key, value in dotted(overrides or {}).items()]
    search = dict(search or {})
    space = search.pop("space", None) or {}  # each parameter's distribution is one value, not dotted further
    items += [f"tune.{key}={_text(value)}" for key, value in dotted(search).items()]
    items += [f"tune.space.{name}={_text(spec)}" for name, spec in space.items()]
    file = config if isinstance(config, str | Path) else data
    return resolve_adapter_search(adapter, file, items, quick)


def tune(
    experiment: str,
    config: ConfigInput = None,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    quick: bool = False,
    address: str | None = None,
    train_best: bool = False,
    baseline: bool = False,
    search: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> SearchResult:
    """Search ``experiment``'s hyperparameters with Ray Tune (Optuna TPE + ASHA by default), e.g.
    ``dlrl.tune("regression", quick=True, search={"num_samples": 20, "folds": 5})``; ``train_best`` then
    trains the best config on the full training data and tests it once (RUN/best/)."""
    check_options(out, resume, quick)
    setup = resolve(experiment, config, quick, search, overrides)
    return run_setup(setup, out=out, resume=resume, address=address, train_best=train_best, baseline=baseline)


def run_setup(
    setup: SearchSetup,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    address: str | None = None,
    train_best: bool = False,
    baseline: bool = False,
) -> SearchResult:
    """Run a resolved search (what ``tune`` and the CLI end in)."""
    run_dir, summary = experiment_search.run_search(setup, out, resume, address, train_best, baseline)
    best_path = run_dir.path / "best_config.yaml"
    best = build_config(setup.adapter.config_cls, read_config_file(best_path), str(best_path))
    return SearchResult(setup.experiment, run_dir.path, summary, best)
