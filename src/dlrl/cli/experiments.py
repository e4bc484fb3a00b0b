"""``dlrl regression | classify | autoencoder | finetune | dqn``: one command per experiment, and
``dlrl evaluate RUN_DIR``, which recomputes a finished run's test metrics."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dlrl.cli.common import add_experiment_arguments, config_epilog, headline
from dlrl.experiments import EXPERIMENTS, ExperimentEntry


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
    from dlrl.api.experiments import evaluate  # keeps dlrl --help fast: the API imports matplotlib, ray

    print(json.dumps(headline(evaluate(args.run_dir)), indent=2))
    return 0
