"""The package's layers (DESIGN.md, pyproject's [tool.importlinter]): no import against the layer order and
no import cycle, checked by import-linter on the installed source, imports inside functions included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.fail("lint-imports not installed (pip install -e '.[test]')")
    done = subprocess.run(
        [lint, "--no-cache", str(ROOT / "pyproject.toml")], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return done.stdout


def test_layers_and_no_cycles() -> None:
    out = _lint_imports()
    assert "Contracts: 2 kept, 0 broken" in out


def test_a_backward_import_breaks_the_contract(tmp_path: Path) -> None:
    """The contract can fail: a copy of the package whose data layer imports the experiments is refused."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "dlrl", copy / "dlrl", ignore=shutil.ignore_patterns("__pycache__"))
    bad = copy / "dlrl" / "data" / "images.py"
    bad.write_text(bad.read_text() + "\nfrom dlrl.experiments import EXPERIMENTS  # noqa: E402\n")
    config = tmp_path / "pyproject.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run(
        [lint, "--no-cache", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "dlrl.data.images -> dlrl.experiments" in done.stdout
