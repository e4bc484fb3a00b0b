"""What the Python API returns: typed results with the summary numbers, the run directory, the figures
(matplotlib Figures, shown inline in a notebook) and the trained model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrl.config import ExperimentConfig
from dlrl.errors import DlrlError
from dlrl.experiments import get_experiment
from dlrl.rundir import RunDir


@dataclass
class ExperimentResult:
    """One experiment run. ``result["test_mse"]`` reads the summary; ``result.model`` loads the trained model
    from the run's checkpoints (the one the run tested)."""

    experiment: str
    run_dir: Path
    config: ExperimentConfig
    summary: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict, repr=False)  # name -> matplotlib Figure

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    @property
    def targets(self) -> list[dict[str, Any]]:
        """The experiment's targets with what was measured and whether each was met (targets.json)."""
        path = self.run_dir / "targets.json"
        return json.loads(path.read_text()) if path.is_file() else []

    @property
    def model(self) -> Any:
        """The trained model (a torch nn.Module), rebuilt from config.yaml and loaded from its checkpoint."""
        module = get_experiment(self.experiment).load()
        if not hasattr(module, "load_model"):
            raise AttributeError(f"'{self.experiment}' runs have no single model to load")
        return module.load_model(RunDir(self.run_dir))

    def show(self, *names: str) -> None:
        """Display figures in a notebook as the run wrote them (RUN/figures/NAME.png), without drawing them
        again as ``display(result.figures[name])`` does (a tenth of a second to a second per figure)."""
        from IPython.display import Image, display  # ipykernel's: a notebook's (notebooks or test extra)

        paths = [self.run_dir / "figures" / f"{name}.png" for name in names]
        missing = [path.stem for path in paths if not path.is_file()]
        if missing:
            written = sorted(path.stem for path in (self.run_dir / "figures").glob("*.png"))
            raise DlrlError(f"{self.run_dir}: no figure {', '.join(missing)} (written: {', '.join(written)})")
        display(*(Image(filename=str(path)) for path in paths))


@dataclass
class SearchResult:
    """One hyperparameter search: the summary, the best config found and the run directory (trials.csv)."""

    experiment: str
    run_dir: Path
    summary: dict[str, Any]
    best_config: ExperimentConfig

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    @property
    def trials(self) -> list[dict[str, Any]]:
        """One row per trial (trials.csv): status, epochs, best mean metric over folds, parameters."""
        return RunDir(self.run_dir).read_metrics("trials.csv")
