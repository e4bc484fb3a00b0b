"""Render a run directory into one self-contained ``report.html``: images inline, no network, no scripts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from dlrl.progress import format_seconds
from dlrl.report.collect import ReportView, read_run
from dlrl.utils import atomic_write_text

if TYPE_CHECKING:
    import jinja2

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"

STATUS_TEXT = {
    "done": "done",
    "failed": "failed",
    "interrupted": "interrupted",
    "skipped": "skipped",
    "incomplete": "incomplete",
    "pending": "not run yet",
}


def _environment() -> jinja2.Environment:
    import jinja2  # here, not at the top: every dlrl command imports this module, few write a report

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dlrl.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = format_seconds
    env.globals["status_text"] = STATUS_TEXT
    return env


def render(view: ReportView) -> str:
    return _environment().get_template("report.html.j2").render(report=view)


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``run_dir/report.html`` (or ``out``) from the run directory alone; returns its path."""
    view = read_run(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    atomic_write_text(path, render(view))
    log.debug("report written: %s", path)
    return path
