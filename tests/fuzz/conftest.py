"""The fuzz tests: properties over every reader of outside input (IDX files, configs and overrides,
checkpoints, run directories). Their helpers are in fuzz_support.py, put on sys.path here; the session
ends with how many inputs were tried."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fuzz_support


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not fuzz_support.TRIED:
        return
    failed = [r for r in terminalreporter.stats.get("failed", []) if "tests/fuzz/" in r.nodeid]
    terminalreporter.write_line(f"{fuzz_support.summary_line()}; {len(failed)} uncaught (failed properties)")
    if terminalreporter.config.get_verbosity() > 0 or fuzz_support.FUZZ:
        for line in fuzz_support.outcome_lines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny finished runs of regression, classifier, autoencoder and finetune (see fuzz_runs.py)."""
    from fuzz_runs import make_runs

    return make_runs(tmp_path_factory.mktemp("finished"))
