"""Turning command-line choices into a validated config and a run directory, and running an experiment.

Shared by the per-experiment commands, ``dlrl run`` and ``dlrl tune``: whatever the CLI does, a test can
do by calling these functions.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dlrl.config import ExperimentConfig, apply_overrides, build_config, read_config_file
from dlrl.errors import ConfigError, DlrlError
from dlrl.experiments import ExperimentEntry
from dlrl.rundir import RunDir

log = logging.getLogger(__name__)

DEFAULT_RUNS_ROOT = Path("runs")


def resolve_config(
    entry: ExperimentEntry,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    quick: bool = False,
    options: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """Defaults < --quick profile < --config file < CLI options (dotted keys) < key=value overrides."""
    file_data = read_config_file(config_file) if config_file is not None else None
    return layer_config(
        entry.config_cls(), entry.name, file_data, str(config_file), overrides, quick, options
    )


def layer_config(
    cls: type[ExperimentConfig],
    name: str,
    file_data: dict[str, Any] | None,
    file_source: str,
    overrides: list[str] | None = None,
    quick: bool = False,
    options: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """Validate experiment ``name``'s config from its layers; ``file_data`` is the --config file's content."""
    data: dict[str, Any] = {"experiment": name}
    source = "defaults"
    if quick:
        data = apply_overrides(data, cls.QUICK)
    if file_data is not None:
        if "experiment" in file_data and file_data["experiment"] != name:
            raise ConfigError(f"{file_source}: is a config for '{file_data['experiment']}', not '{name}'")
        data = _merge(data, file_data)
        source = file_source
    if options:
        data = apply_overrides(data, {k: v for k, v in options.items() if v is not None})
    if overrides:
        data = apply_overrides(data, overrides, source="override")
        source = f"{source} + overrides" if file_data is not None else "overrides"
    return build_config(cls, data, source)


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def new_run_path(experiment: str, root: Path = DEFAULT_RUNS_ROOT) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{experiment}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{experiment}-{stamp}-{suffix}"
    return path


def fresh_run_path(name: str, out: str | Path | None, root: Path = DEFAULT_RUNS_ROOT) -> Path:
    """``out``, or a new runs/<name>-<timestamp>; refused if it already holds anything (a run to --resume)."""
    path = Path(out) if out else new_run_path(name, root)
    if path.exists() and any(path.iterdir()):
        raise DlrlError(f"--out {path}: directory exists and is not empty (use --resume to continue it)")
    return path


def latest_run_path(
    experiment: str, root: Path = DEFAULT_RUNS_ROOT, marker: str = "config.yaml"
) -> Path | None:
    """The newest ``<experiment>-<timestamp>[-N]`` directory under ``root`` holding ``marker``."""
    pattern = re.compile(rf"{re.escape(experiment)}-(\d{{8}}-\d{{6}})(?:-(\d+))?")
    candidates = []
    for path in root.glob(f"{experiment}-*"):
        match = pattern.fullmatch(path.name)
        if match and (path / marker).is_file():
            candidates.append((match.group(1), int(match.group(2) or 1), path))
    return max(candidates)[2] if candidates else None


# Keys that may change between an interrupted run and its resumption: where it runs, not what it computes.
RESUME_FREE_KEYS = ("device", "threads")


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """'key: a in the run, b now' for the first leaf where two nested dicts differ, else None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in dict.fromkeys([*a, *b]):
            diff = first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    return None if a == b else f"{prefix.rstrip('.')}: {a!r} in the run, {b!r} now"


def choose_run_dir(
    entry_name: str,
    config: ExperimentConfig,
    out: str | Path | None,
    resume: bool,
    root: Path = DEFAULT_RUNS_ROOT,
) -> tuple[RunDir, bool]:
    """(run_dir, created): a new directory, or with ``resume`` the given/latest one, checked to match."""
    if resume:
        path = Path(out) if out else latest_run_path(entry_name, root)
        if path is None:
            raise DlrlError(f"--resume: no earlier '{entry_name}' run under {root}/; pass --out RUN_DIR")
        if not (path / "config.yaml").is_file():
            if path.exists() and any(path.iterdir()):
                raise DlrlError(f"--resume: {path} is not a dlrl run directory (no config.yaml)")
            return RunDir(path), not path.exists()
        stored = read_config_file(path / "config.yaml")
        current = config.model_dump(mode="json")
        if stored.get("experiment") != current.get("experiment"):
            raise DlrlError(
                f"--resume: {path} is a '{stored.get('experiment')}' run, not '{current.get('experiment')}'"
            )
        for key in RESUME_FREE_KEYS:
            stored.pop(key, None)
            current.pop(key, None)
        diff = first_difference(stored, current)
        if diff:
            raise DlrlError(
                f"--resume: config differs from the interrupted run in {path} ({diff}); resume with the same "
                f"options, or --config {path / 'config.yaml'}"
            )
        return RunDir(path), False
    return RunDir(fresh_run_path(entry_name, out, root)), True


@contextmanager
def cleanup_on_error(run_dir: RunDir, created: bool) -> Iterator[None]:
    """Remove a run directory this invocation created if it fails on bad input: no half-written output."""
    try:
        yield
    except DlrlError:
        if created and run_dir.path.exists():
            shutil.rmtree(run_dir.path, ignore_errors=True)
        raise


def default_threads() -> int:
    """Torch threads when a config leaves them open: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_experiment(
    entry: ExperimentEntry,
    config: ExperimentConfig,
    run_dir: RunDir,
    resume: bool = False,
    created: bool = True,
) -> dict[str, Any]:
    """Create the run directory, record config and environment, run, and return the summary."""
    from dlrl.utils import configure_torch, resolve_device, seed_everything

    module = entry.load()
    with cleanup_on_error(run_dir, created):
        if hasattr(module, "validate"):
            module.validate(config)  # checks that need files (a CSV, a parent run) before writing anything
        run_dir.write_config(config)  # first, so that a directory with anything in it is a resumable run
        run_dir.create()

        # Always set: inside `dlrl run` an earlier section's setting must not carry over to this one.
        configure_torch(config.threads or default_threads())
        run_dir.write_env(config.seed, str(resolve_device(config.device)), {"experiment": entry.name})
        seed_everything(config.seed)
        started = time.perf_counter()
        summary = module.run(config, run_dir, resume)
        summary.setdefault("seconds", round(time.perf_counter() - started, 2))
        run_dir.write_summary(summary)
    return summary
