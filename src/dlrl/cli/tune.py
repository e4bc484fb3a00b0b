"""``dlrl tune EXPERIMENT``: the command-line face of :mod:`dlrl.experiments.search`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dlrl.cli.common import add_run_options, headline
from dlrl.experiments import get_adapter, searchable

DESCRIPTION = """\
Hyperparameter search with Ray Tune (Optuna TPE + ASHA by default). Every trial runs K-fold cross
validation on the experiment's training data (the test set is never seen) and reports, per epoch, the
mean validation metric over the folds and its spread, so that ASHA can stop bad trials early.

Writes RUN/trials.csv, RUN/metrics.csv, RUN/best_config.yaml (train it with `dlrl EXPERIMENT --config`),
RUN/figures/ and RUN/summary.json; Ray's own log goes to RUN/ray.log. Ctrl-C stops cleanly; continue with
the same command plus --resume. On a cluster (--address): trials.csv names each trial's node, a trial whose
node is lost is retried from its last checkpoint (--max-failures), and --storage keeps the trials where
every node can write them. Search spaces: dlrl/configs/tune/EXPERIMENT.yaml, overridden by a 'tune:'
section in --config FILE or by tune.KEY=VALUE (tune.space.optim.lr.high=0.1).
"""


def _intermixed(base: type[argparse.ArgumentParser]) -> type[argparse.ArgumentParser]:
    """A parser class that accepts positionals after options (``tune regression --quick epochs=5``)."""

    class IntermixedParser(base):  # type: ignore[misc, valid-type]
        _inside = False

        def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
            if self._inside:  # parse_known_intermixed_args calls back into parse_known_args
                return super().parse_known_args(args, namespace)
            self._inside = True
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._inside = False

    return IntermixedParser


def add_parser(subparsers: Any, formatter: type) -> None:
    base_class = subparsers._parser_class
    subparsers._parser_class = _intermixed(base_class)  # EXPERIMENT, options and key=value in any order
    try:
        parser = subparsers.add_parser(
            "tune",
            help="hyperparameter search with Ray Tune and K-fold CV",
            description=DESCRIPTION,
            formatter_class=formatter,
        )
    finally:
        subparsers._parser_class = base_class
    parser.add_argument("experiment", metavar="EXPERIMENT", help=f"one of: {', '.join(searchable())}")
    add_run_options(parser)
    group = parser.add_argument_group("search")
    group.add_argument(
        "--num-samples", type=int, metavar="N", help="trials to sample (default: the space file's)"
    )
    group.add_argument("--time-budget", type=float, metavar="SECONDS", help="stop the search after this long")
    group.add_argument(
        "--max-concurrent", type=int, metavar="N", help="trials at a time (default: CPUs / cpus-per-trial)"
    )
    group.add_argument(
        "--search", choices=["optuna", "random", "grid"], help="search algorithm (default: optuna)"
    )
    group.add_argument("--scheduler", choices=["asha", "fifo"], help="trial scheduler (default: asha)")
    group.add_argument(
        "--folds", type=int, metavar="K", help="K-fold cross validation inside every trial (>= 2)"
    )
    group.add_argument("--metric", help="validation metric to optimise (default: the experiment's)")
    group.add_argument("--mode", choices=["min", "max"], help="minimise or maximise --metric")
    group.add_argument("--cpus-per-trial", type=float, metavar="N", help="CPUs (and torch threads) per trial")
    group.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="attach to a running Ray cluster (also: RAY_ADDRESS); default: a local Ray",
    )
    group.add_argument(
        "--storage",
        metavar="PATH_OR_URI",
        help="trials and checkpoints in a directory every node shares, or a URI such as s3://bucket/path "
        "(copied into RUN/search afterwards); default: the run directory",
    )
    group.add_argument(
        "--max-failures",
        type=int,
        metavar="N",
        help="retries of a failed trial (a lost node), each from its last checkpoint "
        "(default: 2 on a cluster, 0 on this machine)",
    )
    group.add_argument(
        "--train-best",
        action="store_true",
        help="then train the best config on the full training data into RUN/best (test once)",
    )
    group.add_argument(
        "--baseline",
        action="store_true",
        help="also train the untuned config into RUN/baseline, for comparison",
    )
    parser.set_defaults(handler=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from dlrl.api.search import run_setup  # keeps dlrl --help fast: ray, torch
    from dlrl.experiments.search import resolve_search  # keeps dlrl --help fast: torch

    options: dict[str, Any] = {"seed": args.seed, "device": args.device}
    data_field = get_adapter(args.experiment).config_cls.model_fields.get("data")
    if (
        args.data_dir
        and data_field is not None
        and "data_dir" in getattr(data_field.annotation, "model_fields", {})
    ):
        options["data.data_dir"] = args.data_dir
    tune_options = {
        "num_samples": args.num_samples,
        "time_budget": args.time_budget,
        "max_concurrent": args.max_concurrent,
        "search": args.search,
        "scheduler": args.scheduler,
        "folds": args.folds,
        "metric": args.metric,
        "mode": args.mode,
        "cpus_per_trial": args.cpus_per_trial,
        "storage": args.storage,
        "max_failures": args.max_failures,
    }
    setup = resolve_search(args.experiment, args.config, args.overrides, args.quick, options, tune_options)
    result = run_setup(
        setup,
        out=args.out,
        resume=args.resume,
        address=args.address,
        train_best=args.train_best,
        baseline=args.baseline,
    )
    print(json.dumps(headline(result.summary), indent=2))
    print(f"best config: {result.run_dir / 'best_config.yaml'}")
    print(f"run directory: {result.run_dir}")
    return 0
