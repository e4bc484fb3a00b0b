"""dlrl tune (being moved here)."""

from dlrl.tune.cli import add_parser

__all__ = ["add_parser"]
