"""Turning command-line choices into a validated config and a run directory, and running an experiment.

Shared by the per-experiment commands, ``dlrl run`` and ``dlrl tune``: whatever the CLI does, a test can
do by calling these functions.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from dlrl.config import ExperimentConfig, layer_config, read_config_file
from dlrl.experiments import ExperimentEntry
from dlrl.rundir import RunDir, cleanup_on_error, run_lock
from dlrl.utils import configure_torch, resolve_device, seed_everything, usable_cores

log = logging.getLogger(__name__)


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


def run_experiment(
    entry: ExperimentEntry,
    config: ExperimentConfig,
    run_dir: RunDir,
    resume: bool = False,
    created: bool = True,
) -> dict[str, Any]:
    """Create the run directory, record config and environment, run, and return the summary."""
    module = entry.load()
    # The lock outside the clean-up: a refused second process must not remove the first one's directory.
    with run_lock(run_dir.path, fresh=created), cleanup_on_error(run_dir, created):
        if hasattr(module, "validate"):
            module.validate(config)  # checks that need files (a CSV, a parent run) before writing anything
        run_dir.write_config(config)  # first, so that a directory with anything in it is a resumable run
        run_dir.create()

        # Always set: inside `dlrl run` an earlier section's setting must not carry over to this one.
        configure_torch(config.threads or usable_cores())
        run_dir.write_env(config.seed, str(resolve_device(config.device)), {"experiment": entry.name})
        seed_everything(config.seed)
        started = time.perf_counter()
        summary = module.run(config, run_dir, resume)
        summary.setdefault("seconds", round(time.perf_counter() - started, 2))
        summary = {"kind": "experiment", "experiment": entry.name, **summary}
        run_dir.write_targets(getattr(module, "TARGETS", []), summary)
        run_dir.write_summary(summary)  # last: a run directory with a summary.json has finished
    return summary
