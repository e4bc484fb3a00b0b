"""The notebooks executed in a real Jupyter kernel at quick budgets, each once per session, by the same
notebooks/execute.py that ``make notebooks`` runs (executed copy and HTML page included)."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# Looked up, not imported: importing them takes seconds, and every pytest-xdist worker collects every test.
MISSING = [name for name in ("nbclient", "ipykernel") if importlib.util.find_spec(name) is None]
if MISSING:
    pytest.skip(
        f"the notebook tests need {MISSING} (the test extra: pip install -e '.[test]')",
        allow_module_level=True,
    )

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ("part1_regression_ffn", "part2_autoencoders", "part3_dqn")


def load_executor() -> ModuleType:
    """notebooks/execute.py as a module (it is a script beside the notebooks, not part of the package)."""
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS_DIR / "execute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Executed:
    name: str
    nb: Any  # the executed notebook (nbformat node), progress bars included
    runs: Path  # its runs: the notebook's `out`
    html: Path
    error: dict[str, Any] | None
    seconds: float


@pytest.fixture(scope="session")
def executor() -> ModuleType:
    return load_executor()


@pytest.fixture(scope="session")
def executed(executor: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Executed]:
    """``executed(name)``: the notebook run at quick budget (once per session; the first test pays)."""
    root = tmp_path_factory.mktemp("notebooks")
    done: dict[str, Executed] = {}

    def run(name: str) -> Executed:
        if name not in done:
            started = time.perf_counter()
            nb, error = executor.run(NOTEBOOKS_DIR / f"{name}.ipynb", root, {"quick": True}, timeout=600)
            seconds = time.perf_counter() - started
            done[name] = Executed(name, nb, root / name, root / f"{name}.html", error, seconds)
        return done[name]

    return run
