"""dlrl run (being moved here)."""

from dlrl.experiments.run_all import add_parser

__all__ = ["add_parser"]
