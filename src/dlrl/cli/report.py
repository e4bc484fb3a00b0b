"""dlrl report (being moved here)."""

from dlrl.report.command import add_parser

__all__ = ["add_parser"]
