"""The ``dlrl`` command line: parses arguments, calls experiments, maps user errors to one line and exit 2
(a write that failed: exit 1), anything unexpected to one "internal error" line, its traceback in a file, and
exit 1.

One module per command group, each with ``add_parser(subparsers, formatter)``; every subcommand is a thin
shell over a function a test can call directly.
"""

from __future__ import annotations

import argparse
import os
import sys

from dlrl.cli import data, experiments, report, rl, run, tune
from dlrl.cli.common import ArgumentParser, HelpFormatter, configure_logging, internal_error
from dlrl.errors import DlrlError, OutputError, shown

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
    resume_hint = "; continue with the same command plus --resume" if hasattr(args, "resume") else ""
    try:
        return int(args.handler(args) or 0)
    except DlrlError as err:
        hint = resume_hint if isinstance(err, OutputError) else ""
        print(f"dlrl: error: {shown(err, limit=1000)}{hint}", file=sys.stderr)  # one line, whatever it quotes
        return err.exit_code
    except KeyboardInterrupt:
        print(f"dlrl: interrupted{resume_hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:  # a bug, or a failure nobody foresaw: one line, the traceback kept in a file
        return internal_error(err, inline=args.verbose > 0)


if __name__ == "__main__":
    sys.exit(main())
