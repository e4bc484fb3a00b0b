"""dlrl rl (being moved here)."""

from dlrl.experiments.dqn import add_parser

__all__ = ["add_parser"]
