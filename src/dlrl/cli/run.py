"""``dlrl run``: every experiment into one run directory and one report (the work is in dlrl.pipeline)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from dlrl.pipeline.sections import SECTIONS
from dlrl.progress import format_seconds

if TYPE_CHECKING:
    from dlrl.pipeline.runner import RunResult


def add_parser(subparsers: Any, formatter: type) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run every experiment and write one HTML report",
        formatter_class=formatter,
        description="Run the whole project end to end into one run directory and write RUN_DIR/report.html\n"
        "(rewritten after every section, so a partial report always exists). A failing section is recorded\n"
        "in the report and the others still run; the exit code is 1 if any section failed.\n\n"
        "Sections: " + ", ".join(f"{s.name} ({s.part})" for s in SECTIONS),
        epilog="Examples:\n"
        "  dlrl run --quick                       every section with small budgets (minutes)\n"
        "  dlrl run --only part1 --out runs/p1    Part 1 only, full budgets\n"
        "  dlrl run --quick --set classifier.epochs=1 --set classifier.data.limit=500\n"
        "  dlrl run --resume --out runs/p1        after Ctrl-C: skip finished sections, continue the rest\n"
        "  dlrl report runs/p1                    rebuild runs/p1/report.html without retraining",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=None,
        help="small budgets for every section (the README's main command)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for every section (default: 0)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default: runs/run-<timestamp>)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue --out DIR (or the latest run): skip finished sections, continue the "
        "interrupted one from its checkpoint; the profile and --set of the run are reused",
    )
    parser.add_argument(
        "--only", metavar="LIST", help="comma-separated parts or sections to run, e.g. part1,dqn"
    )
    parser.add_argument("--skip", metavar="LIST", help="comma-separated parts or sections to leave out")
    parser.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        dest="sets",
        help="config override for one section, e.g. classifier.epochs=1 (repeatable)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="directory with IDX files (also: DLRL_DATA_DIR)")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log every section's metrics.csv as TensorBoard scalars into RUN_DIR/tensorboard/ "
        "(needs the optional 'tensorboard' package)",
    )
    parser.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="run the search's trials and DQN's agents on a running Ray cluster (also: RAY_ADDRESS); "
        "the other sections run here",
    )
    parser.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from dlrl.api.run import run  # keeps dlrl --help fast: the API imports torch, ray

    result = run(
        quick=args.quick,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        only=args.only,
        skip=args.skip,
        sets=args.sets,
        data_dir=args.data_dir,
        tensorboard=args.tensorboard,
        address=args.address,
    )
    _print_result(result)
    failed = result.failed()
    if failed:
        print(f"failed sections: {', '.join(failed)} (details in the report and {result.status_path})")
        return 1
    return 0


def _print_result(result: RunResult) -> None:
    print(f"{'section':<14} {'status':<12} {'wall':>8} {'cpu':>8}")
    for name in result.sections:
        entry = result.status.get(name, {})
        print(
            f"{name:<14} {entry.get('status', '?'):<12} {format_seconds(entry.get('seconds')):>8} "
            f"{format_seconds(entry.get('cpu_seconds')):>8}"
        )
    print(f"total wall time {format_seconds(result.seconds)}")
    print(f"report: {result.report_path}")
