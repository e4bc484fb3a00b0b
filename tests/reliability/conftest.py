"""Fixtures of the reliability tests; their helpers are in reliability_support.py (put on sys.path here)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dlrl.cli import main

sys.path.insert(0, str(Path(__file__).parent))

from reliability_support import REGRESSION, read_summary, results


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``cli("regression", "--out", ...)`` -> (exit code, stdout, stderr), in-process."""

    def call(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["-q", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.fixture(scope="session")
def reference_regression(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The results of one uninterrupted tiny regression run: what every resumed run must end with."""
    out = tmp_path_factory.mktemp("reference") / "regression"
    assert main(["-q", "regression", "--out", str(out), *REGRESSION]) == 0
    return results(read_summary(out))
