"""Report layer: a run directory in, one self-contained ``report.html`` out (``dlrl report RUN_DIR``)."""

from __future__ import annotations

from pathlib import Path

REPORT_NAME = "report.html"


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``run_dir/report.html`` (or ``out``) from the run directory alone; returns its path."""
    from dlrl.report.render import build_report as _build

    return _build(run_dir, out)


__all__ = ["REPORT_NAME", "build_report"]
