"""``dlrl regression | classify | autoencoder | finetune | dqn``: one command per experiment, and
``dlrl evaluate RUN_DIR``, which recomputes a finished run's test metrics."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dlrl.cli.common import add_experiment_arguments, config_epilog, headline
from dlrl.config import read_config_file
from dlrl.errors import DlrlError
from dlrl.experiments import EXPERIMENTS, ExperimentEntry, get_experiment
from dlrl.rundir import RunDir


def add_parser(subparsers: Any, formatter: type) -> None:
    for entry in EXPERIMENTS.values():
        add_experiment_parser(subparsers, entry, formatter)
    evaluate = subparsers.add_parser(
        "evaluate",
        help="recompute test metrics of a run from the checkpoint it tested",
        description="Recompute the test metrics of RUN_DIR from the checkpoint the run tested "
        "(checkpoints/best.pt, or last.pt where the experiment tests the final weights).",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.set_defaults(handler=cmd_evaluate)


def add_experiment_parser(subparsers: Any, entry: ExperimentEntry, formatter: type) -> None:
    """``dlrl <experiment>``: run options, the experiment's flags, its config keys in the help."""
    parser = subparsers.add_parser(
        entry.cli_name,
        help=entry.help,
        description=entry.help,
        formatter_class=formatter,
        epilog=config_epilog(entry.config_cls()),
    )
    add_experiment_arguments(parser, entry)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Re-evaluate RUN_DIR with its experiment's ``evaluate(run_dir)``; print the scalar metrics."""
    run_dir = RunDir(args.run_dir)
    if not run_dir.config_path.is_file():
        is_run_all = (run_dir.path / "sections.json").is_file()
        hint = " (a 'dlrl run' directory: evaluate one of its sections)" if is_run_all else ""
        raise DlrlError(f"{run_dir.path}: not a dlrl run directory (no config.yaml){hint}")
    experiment = read_config_file(run_dir.config_path).get("experiment")
    if not isinstance(experiment, str):
        raise DlrlError(f"{run_dir.config_path}: has no 'experiment' key")
    module = get_experiment(experiment).load()
    if not hasattr(module, "evaluate"):
        raise DlrlError(f"{run_dir.path}: '{experiment}' runs cannot be re-evaluated")
    print(json.dumps(headline(module.evaluate(run_dir)), indent=2))
    return 0
