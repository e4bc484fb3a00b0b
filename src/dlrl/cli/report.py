"""``dlrl report RUN_DIR``: rebuild report.html from a run directory, without retraining."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any, formatter: type) -> None:
    parser = subparsers.add_parser(
        "report",
        help="rebuild the HTML report of a run directory (no retraining)",
        formatter_class=formatter,
        description="Write RUN_DIR/report.html from the files in RUN_DIR alone (no retraining):\n"
        "a 'dlrl run' directory (every section), a single experiment's run directory, or a 'dlrl tune'\n"
        "directory.\n"
        "One self-contained file: images embedded, no scripts, no network needed to view it.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument(
        "--out", metavar="FILE", help="where to write the report (default: RUN_DIR/report.html)"
    )
    parser.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from dlrl.report import build_report  # keeps dlrl --help fast: jinja2

    print(f"report: {build_report(args.run_dir, args.out)}")
    return 0
