"""The ``dlrl`` command line: parses arguments, calls experiments, maps user errors to one line and exit 2.

One module per command group, each with ``add_parser(subparsers, formatter)``; every subcommand is a thin
shell over a function a test can call directly.
"""

from __future__ import annotations

import argparse
import os
import sys

from dlrl.cli import data, experiments, report, rl, run, tune
from dlrl.cli.common import ArgumentParser, HelpFormatter, configure_logging
from dlrl.errors import DlrlError

# In the order `dlrl --help` lists their commands.
COMMAND_MODULES = (experiments, data, run, report, rl, tune)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="dlrl",
        description="Deep learning and reinforcement learning, end to end: data, training, search, report.\n"
        "`dlrl run --quick` runs every experiment with small budgets and writes RUN_DIR/report.html.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.add_parser(subparsers, HelpFormatter)
    return parser


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
