"""dlrl: a deep-learning and reinforcement-learning curriculum project, end to end.

The public API (``dlrl.regression``, ``dlrl.classify``, ``dlrl.autoencoder``, ``dlrl.finetune``,
``dlrl.dqn``, ``dlrl.tune``, ``dlrl.run``, ``dlrl.play``, the notebook helpers ``dlrl.check`` and
``dlrl.one_line_errors``, the result types and the ``DlrlError`` family) lives in
``dlrl.api`` and is imported on first use: importing the package reads no data, starts no Ray and does not
import torch.
"""

from typing import Any

from dlrl.version import __version__

_API = (
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DlrlError",
    "ExperimentResult",
    "RunDirError",
    "RunResult",
    "SearchResult",
    "autoencoder",
    "check",
    "classify",
    "dqn",
    "evaluate",
    "experiment",
    "finetune",
    "one_line_errors",
    "play",
    "regression",
    "run",
    "tune",
)


def __getattr__(name: str) -> Any:
    if name in _API:
        import dlrl.api  # on first use only: it imports torch (seconds), which `import dlrl` must not

        return getattr(dlrl.api, name)
    raise AttributeError(f"module 'dlrl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), *_API]


__all__ = ["__version__", *_API]
