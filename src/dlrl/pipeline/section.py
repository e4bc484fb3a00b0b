"""One section of ``dlrl run``: its config (resolved before anything runs), its run directory, its run."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from dlrl.errors import DlrlError
from dlrl.experiments import EXPERIMENTS, get_experiment
from dlrl.experiments.runner import resolve_config, run_experiment
from dlrl.pipeline.sections import Section
from dlrl.pipeline.state import RunSettings
from dlrl.rundir import RunDir, choose_run_dir
from dlrl.tuning.cluster import ClusterInfo, attached

log = logging.getLogger(__name__)

# Experiments made of independent jobs that run as Ray tasks when attached to a cluster (DQN: one per agent).
JOB_EXPERIMENTS = ("dqn",)


def uses_cluster(section: Section) -> bool:
    """Whether ``dlrl run --address`` sends this section to the cluster: searches and DQN's agents; the rest,
    and a search's final training of its best config, run on this machine."""
    return section.searched is not None or section.experiment in JOB_EXPERIMENTS


def check_cluster(settings: RunSettings, configs: dict[str, Any], cluster: ClusterInfo | None) -> None:
    """Before anything runs: every section sent to the cluster fits on its nodes (and a search on nodes of
    other machines has storage they share)."""
    if cluster is None:
        return
    for section in settings.sections:
        config = configs[section.name]
        if isinstance(config, str) or not uses_cluster(section):
            continue
        where = f"section '{section.name}'"
        if section.searched:
            cluster.check_cpus(config.tune.cpus_per_trial, f"{where}: tune.cpus_per_trial")
            if config.tune.storage is None and not cluster.on_this_machine():
                raise DlrlError(
                    f"{where}: the cluster's nodes run on other machines; set {section.name}.tune.storage to "
                    "a directory every node shares, or a URI (s3://...)"
                )
        else:
            cluster.check_cpus(config.threads or 1, f"{where}: threads")


def resolve_configs(settings: RunSettings) -> dict[str, Any]:
    """Section name -> validated config, or the error text for a section whose experiment is unavailable.

    Done before anything runs, so a typo in --set stops the run at once, not after an hour.
    """
    configs: dict[str, Any] = {}
    for section in settings.sections:
        try:
            configs[section.name] = _resolve_config(section, settings)
        except DlrlError as err:
            raise DlrlError(f"section '{section.name}': {err}") from None
    return configs


def _resolve_config(section: Section, settings: RunSettings) -> Any:
    overrides = settings.sets.get(section.name)
    if section.searched:
        # why here: the search imports torch and the tune layer; `dlrl --help` imports this module
        from dlrl.experiments.search import resolve_search

        options = {"seed": settings.seed}
        return resolve_search(section.searched, quick=settings.quick, options=options, overrides=overrides)
    entry = EXPERIMENTS.get(section.experiment)
    if entry is None:
        return f"experiment '{section.experiment}' is not available in this version of dlrl"
    options = {"seed": settings.seed, **section.overrides}
    data_dir = settings.data_dir
    if data_dir and "data" in entry.config_cls().model_fields and section.experiment != "regression":
        options["data.data_dir"] = data_dir
    return resolve_config(entry, quick=settings.quick, options=options, overrides=overrides)


def run_section(
    section: Section,
    config: Any,
    out: Path,
    resume: bool,
    failed_before: bool,
    cluster: ClusterInfo | None = None,
) -> None:
    """Run one section into ``out/<section>``; raises what the experiment or search raises.

    config: from ``resolve_configs`` (an error text fails the section). failed_before: it failed last time.
    cluster: where a search's trials and DQN's agents run (``uses_cluster``); None: this machine.
    """
    if not uses_cluster(section):
        cluster = None
    if isinstance(config, str):
        raise DlrlError(config)
    path = out / section.name
    if section.searched:
        # why here: the search imports torch and the tune layer; `dlrl --help` imports this module
        from dlrl.experiments.search import run_search

        # Continues an interrupted search, then trains and tests its best config.
        address = cluster.address if cluster is not None else None
        run_search(config, path, resume=(path / "config.yaml").is_file(), address=address, train_best=True)
        return
    entry = get_experiment(section.experiment)
    run_dir, created, section_resume = _section_dir(section, config, path, resume, failed_before)
    with attached(cluster):
        run_experiment(entry, config, run_dir, section_resume, created)


def _section_dir(
    section: Section, config: Any, path: Path, resume: bool, failed_before: bool
) -> tuple[RunDir, bool, bool]:
    """(run_dir, created, resume) of a section: continue an interrupted or failed one where possible.

    A section that failed last time and whose config has changed since (the fix of its failure may well
    change it) starts afresh; an interrupted one must match, as with any ``--resume``.
    """
    section_resume = resume and (path / "config.yaml").exists()
    try:
        run_dir, created = choose_run_dir(section.name, config, path, section_resume)
    except DlrlError as err:
        if not (section_resume and failed_before):
            raise
        log.warning("%s: failed last time and cannot be continued (%s); starting afresh", section.name, err)
        shutil.rmtree(path)
        run_dir, created = choose_run_dir(section.name, config, path, False)
        section_resume = False
    return run_dir, created, section_resume
