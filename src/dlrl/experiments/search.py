"""A hyperparameter search of one experiment: its adapter handed to the tune layer, then (when asked) the
best and the untuned config trained as ordinary runs in RUN/best/ and RUN/baseline/ and tested once."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from dlrl.config import ExperimentConfig
from dlrl.experiments import get_adapter, get_experiment
from dlrl.experiments.runner import run_experiment
from dlrl.rundir import DEFAULT_RUNS_ROOT, RunDir
from dlrl.tuning import search as tune_search
from dlrl.tuning.setup import SearchSetup
from dlrl.tuning.setup import resolve_search as resolve_adapter_search

log = logging.getLogger("dlrl.tuning")


def resolve_search(
    experiment: str,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    quick: bool = False,
    options: dict[str, Any] | None = None,
    tune_options: dict[str, Any] | None = None,
) -> SearchSetup:
    """Experiment config (defaults < --quick < file < options < key=value) and search settings (shipped
    space < --quick < the file's 'tune:' section < tune options < tune.key=value)."""
    adapter = get_adapter(experiment)
    return resolve_adapter_search(adapter, config_file, overrides, quick, options, tune_options)


def run_search(
    setup: SearchSetup,
    out: str | Path | None = None,
    resume: bool = False,
    address: str | None = None,
    train_best: bool = False,
    baseline: bool = False,
    root: Path = DEFAULT_RUNS_ROOT,
) -> tuple[RunDir, dict[str, Any]]:
    """Run (or resume) the search, then train the best / untuned config if asked; returns the run
    directory and the summary (also in RUN/summary.json, with best_test_* / baseline_test_* added)."""
    result = tune_search.run_search(setup, out, resume, address, root)
    summary = result.summary
    started = time.perf_counter()
    for wanted, name, config in (
        (train_best, "best", result.best_config),
        (baseline, "baseline", setup.base),
    ):
        if wanted:
            summary.update(train_final(setup.experiment, config, result.run_dir, name))
            summary["seconds"] = round(summary["seconds"] + time.perf_counter() - started, 2)
            started = time.perf_counter()
            result.run_dir.write_summary(summary)
    return result.run_dir, summary


def train_final(experiment: str, config: ExperimentConfig, run_dir: RunDir, name: str) -> dict[str, Any]:
    """Train ``config`` as an ordinary run in RUN/<name>/ (full training data, one test evaluation);
    returns its test metrics as ``<name>_test_*``. A finished one is read, an interrupted one resumed."""
    sub = run_dir.sub(name)
    if sub.summary_path.is_file():
        final = sub.read_summary()
    else:
        log.info("training the %s config on the full training data into %s", name, sub.path)
        final = run_experiment(
            get_experiment(experiment),
            config,
            sub,
            resume=sub.config_path.is_file(),
            created=not sub.path.exists(),
        )
    tests = {k: v for k, v in final.items() if k.startswith("test_") and isinstance(v, int | float)}
    return {f"{name}_{k}": v for k, v in tests.items()}
