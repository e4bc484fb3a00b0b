"""``dlrl.run(...)``: every section of the project into one run directory, with report.html."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dlrl.api.experiments import check_options, dotted
from dlrl.errors import ConfigError
from dlrl.pipeline.runner import RunResult, run_all
from dlrl.pipeline.sections import parse_sets, select_sections
from dlrl.pipeline.state import RunSettings, resume_settings, resume_target
from dlrl.pipeline.tensorboard import check_tensorboard
from dlrl.rundir import fresh_run_path
from dlrl.tuning.cluster import inspect_cluster


def set_items(sets: Mapping[str, Mapping[str, Any]] | Sequence[str] | None) -> list[str]:
    """``{"classifier": {"epochs": 1}}`` or ``["classifier.epochs=1"]`` -> ``["classifier.epochs=1"]``."""
    if sets is None:
        return []
    if isinstance(sets, Mapping):
        items = []
        for section, keys in sets.items():
            if not isinstance(keys, Mapping):
                raise ConfigError(f"sets['{section}']: expected a dict of config keys, got {keys!r}")
            for key, value in dotted(keys).items():
                items.append(f"{section}.{key}={value if isinstance(value, str) else json.dumps(value)}")
        return items
    if isinstance(sets, str) or not all(isinstance(item, str) for item in sets):
        raise ConfigError("sets: expected a dict {section: {key: value}} or a list of 'SECTION.KEY=VALUE'")
    return list(sets)


def run(
    *,
    quick: bool | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    only: str | Sequence[str] | None = None,
    skip: str | Sequence[str] | None = None,
    sets: Mapping[str, Mapping[str, Any]] | Sequence[str] | None = None,
    data_dir: str | Path | None = None,
    tensorboard: bool = False,
    address: str | None = None,
) -> RunResult:
    """Run every section (or ``only`` / ``skip`` some: parts or section names) into one run directory and
    write its report.html. ``resume=True`` continues ``out`` (or the latest run) with its own settings.
    A failing section is recorded and the others still run: check ``result.failed()`` / the report.
    ``address="HOST:PORT"`` (or RAY_ADDRESS): the search's trials and DQN's agents run on that Ray cluster,
    the other sections here; run.json says where each ran."""
    check_options(out, resume, bool(quick))
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ConfigError(f"seed: expected an integer, got {seed!r}")
    only_text = only if isinstance(only, str) or only is None else ",".join(only)
    skip_text = skip if isinstance(skip, str) or skip is None else ",".join(skip)
    items = set_items(sets)
    data = str(data_dir) if data_dir is not None else None
    if tensorboard:
        check_tensorboard()
    cluster = inspect_cluster(address)  # before anything is written: reachable, its token and Ray version
    if resume:
        target = resume_target(out)
        settings = resume_settings(
            target, quick=quick, seed=seed, set_items=items, data_dir=data, only=only_text, skip=skip_text
        )
    else:
        sections = select_sections(only_text, skip_text, quick=bool(quick))  # quick: no full-only section
        settings = RunSettings(sections, bool(quick), seed or 0, parse_sets(items), data)
        target = fresh_run_path("run", out)
    return run_all(target, settings, resume=resume, tensorboard=tensorboard, cluster=cluster)
