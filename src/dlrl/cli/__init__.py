"""The ``dlrl`` command line: parses arguments, calls experiments, maps user errors to one line and exit 2.

Every subcommand is a thin wrapper over a function a test can call directly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from dlrl.cli.common import ArgumentParser, HelpFormatter, add_experiment_parser, configure_logging, headline
from dlrl.errors import DlrlError


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dlrl.config import read_config_file
    from dlrl.experiments import get_experiment
    from dlrl.rundir import RunDir

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


def _cmd_data(args: argparse.Namespace) -> int:
    from dlrl.data import sources

    names = [args.dataset] if args.dataset else list(sources.DATASETS)
    for name in names:
        spec = sources.get_spec(name)
        found = sources.locate(spec, args.data_dir)
        if args.action == "info":
            where = f"{found.directory} ({found.origin})" if found else "no local copy"
            if name == "mnist" and not found:
                where += "; falls back to the shipped 10,000-image sample"
            print(f"{name}: {where}")
            print(f"  searched: {', '.join(str(d) for _, d in sources.candidate_dirs(spec, args.data_dir))}")
            print(f"  mirrors: {' '.join(sources.mirrors_for(spec))}")
        elif args.action == "fetch":
            target = sources.download_root(args.data_dir) / name
            sources.fetch(spec, target)
            print(f"{name}: downloaded and verified in {target}")
        else:
            if found is None and name == "mnist":
                found = sources.sample_files()
            if found is None:
                if args.dataset:
                    raise DlrlError(f"{name}: no local copy to verify (see 'dlrl data info {name}')")
                print(f"{name}: no local copy, skipped")
                continue
            print(f"{name} ({found.origin}, {found.directory}):")
            for line in sources.verify(found):
                print(f"  {line}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from dlrl.experiments import EXPERIMENTS

    parser = ArgumentParser(
        prog="dlrl",
        description="Deep learning and reinforcement learning, end to end: data, training, search, report.\n"
        "`dlrl run --quick` runs every experiment with small budgets and writes RUN_DIR/report.html.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in EXPERIMENTS.values():
        add_experiment_parser(subparsers, entry)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="recompute test metrics of a run from the checkpoint it tested",
        description="Recompute the test metrics of RUN_DIR from the checkpoint the run tested "
        "(checkpoints/best.pt, or last.pt where the experiment tests the final weights).",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.set_defaults(handler=_cmd_evaluate)

    data = subparsers.add_parser(
        "data",
        help="find, download and verify datasets",
        formatter_class=HelpFormatter,
        description="info: where each dataset would be read from; fetch: download from the official mirrors "
        "(md5-checked, retried); verify: read every file and compare checksums.",
    )
    data.add_argument("action", choices=["info", "fetch", "verify"])
    data.add_argument("dataset", nargs="?", choices=["mnist", "fashion-mnist"], help="default: all")
    data.add_argument("--data-dir", metavar="DIR", help="directory to search first / download into")
    data.set_defaults(handler=_cmd_data)

    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers, HelpFormatter)
    return parser


# Command groups with a module of their own in dlrl/cli/: each has add_parser(subparsers, formatter).
COMMAND_MODULES = ["dlrl.cli.run", "dlrl.cli.report", "dlrl.cli.rl", "dlrl.cli.tune"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args.handler(args) or 0)
    except DlrlError as err:
        print(f"dlrl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; continue with the same command plus --resume" if hasattr(args, "resume") else ""
        print(f"dlrl: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
