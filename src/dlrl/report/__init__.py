"""Report layer: a run directory in, one self-contained ``report.html`` out (``dlrl report RUN_DIR``).

It reads the run directory's files and nothing else: no experiment is imported.
"""

from dlrl.report.render import REPORT_NAME, build_report

__all__ = ["REPORT_NAME", "build_report"]
