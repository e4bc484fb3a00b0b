"""The public Python API: one function per experiment, typed results, one exception family.

    import dlrl
    result = dlrl.regression(quick=True)          # or dlrl.classify / autoencoder / finetune / dqn
    result["test_mse"], result.run_dir, result.figures["fit"], result.model
    search = dlrl.tune("regression", quick=True, search={"num_samples": 8})
    everything = dlrl.run(quick=True)              # every section, one run directory, report.html

Every function validates like the CLI (which calls these functions) and raises a ``dlrl.DlrlError``
subclass with the CLI's one-line message: ``ConfigError``, ``DataError``, ``CheckpointError``,
``RunDirError``. Nothing is written before validation passes.
"""

from dlrl.api.experiments import autoencoder, classify, dqn, evaluate, finetune, regression
from dlrl.api.experiments import run as experiment
from dlrl.api.notebook import check, one_line_errors
from dlrl.api.results import ExperimentResult, SearchResult
from dlrl.api.rl import play
from dlrl.api.run import run
from dlrl.api.search import tune
from dlrl.errors import CheckpointError, ConfigError, DataError, DlrlError, RunDirError
from dlrl.pipeline.runner import RunResult

__all__ = [
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
]
