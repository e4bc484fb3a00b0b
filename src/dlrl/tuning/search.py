"""``dlrl tune``'s driver: run Ray Tune on a resolved and checked search (``dlrl.tuning.setup``), write the
results.

Everything that can be wrong with the input (experiment, space, folds, address, resume target) is found
before Ray starts and removes the run directory it would have created. Layout of a search run::

    RUN/config.yaml        experiment config + 'tune:' section (`dlrl tune EXP --config` re-runs the search)
    RUN/env.json
    RUN/ray.log            Ray's and Optuna's own log output
    RUN/search/            Ray Tune's experiment directory (trials, checkpoints, state for --resume)
    RUN/trials.csv         one row per trial: status, epochs, best mean metric over folds, its spread, params
    RUN/metrics.csv        one row per trial and epoch (means and spreads over folds)
    RUN/best_config.yaml   `dlrl EXP --config RUN/best_config.yaml` trains it on the full training data
    RUN/figures/           metric vs each parameter, learning curves of the best trials, parallel coordinates
    RUN/summary.json       "kind": "search"; the experiment layer adds RUN/best/ and RUN/baseline/
                           (ordinary runs of the best and the untuned config) when asked
"""

from __future__ import annotations

import logging
import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dlrl.config import ExperimentConfig
from dlrl.errors import ConfigError, DlrlError
from dlrl.rundir import DEFAULT_RUNS_ROOT, RunDir, cleanup_on_error, run_lock
from dlrl.tuning.cluster import ClusterError, ClusterInfo
from dlrl.tuning.results import EXPERIMENT_DIR, write_results
from dlrl.tuning.setup import SearchSetup, check_before_ray, choose_search_dir
from dlrl.tuning.space import grid_size, grid_space, optuna_space
from dlrl.tuning.storage import copy_home, holds, storage_root
from dlrl.utils import atomic_write_text

log = logging.getLogger("dlrl.tuning")


def _searcher(setup: SearchSetup) -> tuple[Any, dict[str, Any], int, int]:
    """(search algorithm, param_space, num_samples, trials in all): a grid, or Optuna (TPE or random)."""
    import optuna  # heavy: only when a search is made
    from ray.tune.search.optuna import OptunaSearch

    cfg = setup.tune
    if cfg.search == "grid":
        return None, grid_space(cfg), 1, grid_size(cfg)
    seed = setup.base.seed
    if cfg.search == "random":
        sampler: Any = optuna.samplers.RandomSampler(seed=seed)
    else:
        startup = cfg.startup_trials or min(10, max(2, cfg.num_samples // 2))
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    search_alg = OptunaSearch(space=optuna_space(cfg), metric=setup.metric, mode=setup.mode, sampler=sampler)
    return search_alg, {}, cfg.num_samples, cfg.num_samples


def _scheduler(setup: SearchSetup, epochs: int) -> Any:
    """ASHA (stops bad trials at grace_period, grace*rf, ... epochs) or FIFO (every trial to the end)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler  # ray only when a search is made

    cfg = setup.tune
    if cfg.scheduler != "asha":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        metric=setup.metric,
        mode=setup.mode,
        max_t=epochs,
        grace_period=min(epochs, cfg.grace_period or max(1, epochs // 4)),
        reduction_factor=cfg.reduction_factor,
    )


def experiment_location(setup: SearchSetup, run_dir: RunDir) -> tuple[str, str]:
    """(Ray's storage_path, experiment name): RUN/search, or STORAGE/<run directory name> with --storage."""
    if setup.tune.storage is None:
        return str(run_dir.path.resolve()), EXPERIMENT_DIR
    return storage_root(setup.tune.storage), run_dir.path.name


def max_failures(setup: SearchSetup, cluster: ClusterInfo | None) -> int:
    """Retries of a failed trial: a cluster loses nodes, while a failure on this machine is a bug."""
    if setup.tune.max_failures is not None:
        return setup.tune.max_failures
    return 2 if cluster is not None else 0


def _make_tuner(
    setup: SearchSetup, run_dir: RunDir, resume: bool, cpus: float, cluster: ClusterInfo | None
) -> Any:
    from ray import tune  # ray only once a search is made: `dlrl --help` stays fast

    from dlrl.tuning.raysession import ProgressCallback, trial_dirname  # imports ray
    from dlrl.tuning.trial import tune_trainable

    cfg = setup.tune
    epochs = setup.adapter.epochs(setup.base)
    threads = max(1, math.ceil(cfg.cpus_per_trial))
    trainable = tune.with_resources(
        tune.with_parameters(
            tune_trainable,
            adapter=setup.adapter,
            base=setup.base.model_dump(mode="json"),
            folds=cfg.folds,
            split_seed=setup.base.seed,
            threads=threads,
            checkpoint_every=cfg.checkpoint_every or max(1, epochs // 10),
            metric=setup.metric,
        ),
        {"cpu": cfg.cpus_per_trial},
    )
    storage_path, name = experiment_location(setup, run_dir)
    path = f"{storage_path.rstrip('/')}/{name}"
    if resume and tune.Tuner.can_restore(path):
        log.info("resuming the search in %s", path)
        return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    search_alg, param_space, num_samples, total = _searcher(setup)
    scheduler = _scheduler(setup, epochs)
    concurrent = cfg.max_concurrent or max(1, int(cpus // cfg.cpus_per_trial))
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=concurrent,
            time_budget_s=cfg.time_budget,
            reuse_actors=True,  # a new trial reuses a finished one's process: no Python + torch start-up each
            trial_dirname_creator=trial_dirname,
            trial_name_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            verbose=0,
            callbacks=[ProgressCallback(setup.metric, setup.mode, total, epochs, list(cfg.space))],
            # Each num_to_keep-th checkpoint forces a state snapshot: keep 2, checkpoint ~10x per trial.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            # A trial whose node is lost restarts from its last checkpoint on another node.
            failure_config=tune.FailureConfig(max_failures=max_failures(setup, cluster)),
        ),
    )


@dataclass
class SearchResult:
    run_dir: RunDir
    summary: dict[str, Any]  # also in RUN/summary.json
    best_config: ExperimentConfig  # also in RUN/best_config.yaml


def run_search(
    setup: SearchSetup,
    out: str | Path | None = None,
    resume: bool = False,
    address: str | None = None,
    root: Path = DEFAULT_RUNS_ROOT,
) -> SearchResult:
    """Run (or resume) the search and write its results.

    Raises DlrlError for bad input before Ray starts (removing a directory it created), KeyboardInterrupt
    after saving what there is if the search was interrupted (continue with ``resume=True``).
    """
    started = time.perf_counter()
    run_dir, created = choose_search_dir(setup, out, resume, root)
    with run_lock(run_dir.path, fresh=created):  # a second dlrl process on this directory is refused
        return _run_search(setup, run_dir, created, resume, address, started)


def _run_search(
    setup: SearchSetup, run_dir: RunDir, created: bool, resume: bool, address: str | None, started: float
) -> SearchResult:
    with cleanup_on_error(run_dir, created):
        _, cluster = check_before_ray(setup, address)
        storage = setup.tune.storage
        if storage is not None and not resume and holds(storage, run_dir.path.name):
            raise ConfigError(
                f"--storage {storage}: already holds a search named {run_dir.path.name}; choose another --out"
            )
        atomic_write_text(run_dir.config_path, yaml.safe_dump(setup.as_dict(), sort_keys=False))
        run_dir.write_env(
            setup.base.seed, setup.base.device, {"experiment": setup.experiment, "command": "tune"}
        )
    try:
        timing = _fit_tuner(setup, run_dir, resume, cluster)
    except ClusterError:  # attaching failed: nothing ran, nothing to keep
        if created:
            shutil.rmtree(run_dir.path, ignore_errors=True)
        raise
    expected = grid_size(setup.tune) if setup.tune.search == "grid" else setup.tune.num_samples
    budget = setup.tune.time_budget
    out_of_time = budget is not None and timing["search_seconds"] >= budget - 1.0
    # raises KeyboardInterrupt for an interrupted search (Tune itself returns normally on Ctrl-C)
    summary, best_config = write_results(setup, run_dir, timing, expected, out_of_time)
    summary = {"kind": "search", **summary, "seconds": round(time.perf_counter() - started, 2)}
    run_dir.write_summary(summary)
    return SearchResult(run_dir, summary, best_config)


def _fit_tuner(
    setup: SearchSetup, run_dir: RunDir, resume: bool, cluster: ClusterInfo | None
) -> dict[str, Any]:
    """Start (or attach to) Ray, run the Tuner to the end; returns Ray's and the search's timing.

    With --storage, the search's directory there is copied into RUN/search afterwards (also after Ctrl-C
    or a failed search), so the run directory is complete on this machine."""
    from ray.tune import TuneError  # ray only once a search really runs: `dlrl --help` stays fast

    from dlrl.tuning.raysession import ray_session  # imports ray

    with ray_session(run_dir.path / "ray.log", cluster) as session:
        if session.cpus < setup.tune.cpus_per_trial:  # a node left since the check
            raise ClusterError(
                f"--cpus-per-trial {setup.tune.cpus_per_trial:g}: the cluster has {session.cpus:g} CPUs"
            )
        tuner = _make_tuner(setup, run_dir, resume, session.cpus, cluster)
        log.info(
            "tune %s: %s search, %s scheduler, %d-fold CV, metric %s (%s); Ray: %s, %g CPUs on %d node%s, "
            "up in %.1fs",
            setup.experiment,
            setup.tune.search,
            setup.tune.scheduler,
            setup.tune.folds,
            setup.metric,
            setup.mode,
            session.address,
            session.cpus,
            session.nodes,
            "s" if session.nodes != 1 else "",
            session.start_seconds,
        )
        search_started = time.perf_counter()
        sigint = signal.getsignal(signal.SIGINT)
        try:
            tuner.fit()
        except TuneError as err:
            raise DlrlError(
                f"search failed: {str(err).splitlines()[0]} (details in {run_dir.path / 'ray.log'})"
            ) from None
        finally:
            # Tune swaps in its own Ctrl-C handler and leaves it there: afterwards Ctrl-C must interrupt again
            signal.signal(signal.SIGINT, sigint)
            _bring_home(setup, run_dir)
        search_seconds = time.perf_counter() - search_started
    storage_path, name = experiment_location(setup, run_dir)
    return {
        "ray_start_seconds": round(session.start_seconds, 2),
        "ray_shutdown_seconds": round(session.shutdown_seconds, 2),
        "search_seconds": round(search_seconds, 2),
        "ray_cpus": session.cpus,
        "ray_address": session.address,
        "ray_nodes": session.nodes,
        "storage": f"{storage_path.rstrip('/')}/{name}",
        "max_failures": max_failures(setup, cluster),
    }


def _bring_home(setup: SearchSetup, run_dir: RunDir) -> None:
    """Copy STORAGE/<name> into RUN/search (--storage only); a failed copy is logged, not raised over the
    search's own outcome."""
    if setup.tune.storage is None:
        return
    storage_path, name = experiment_location(setup, run_dir)
    try:
        copy_home(storage_path, name, run_dir.path / EXPERIMENT_DIR)
    except Exception as err:
        log.error("copying %s/%s into %s failed: %s", storage_path, name, run_dir.path / EXPERIMENT_DIR, err)


__all__ = ["SearchResult", "run_search"]
