"""bench/resume_sweep.py at its tiny budgets on one row: a regression run SIGKILLed twice, once inside
a checkpoint write, resumed until it finishes, and its results identical to an uninterrupted run's. The whole
sweep (every experiment, `dlrl run`, search and DQN included) is the benchmark; tests/rl/test_resume.py and
tests/reliability/test_dqn_killed_agents.py kill DQN runs, tests/pipeline/test_runner.py a `dlrl run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench" / "resume_sweep.py"


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_killed_anywhere_and_resumed_ends_identical(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--only",
            "regression",
            "--kills",
            "2",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=2300,
    )
    table = json.loads(done.stdout)
    assert done.returncode == 0, (table, done.stderr[-2000:])
    for row in table["rows"]:
        assert row["identical"] and row["final_exit"] == 0, row
        assert row["landed"] == 2 and any("checkpoint write" in p["kill"] for p in row["kill_points"]), row
    assert table["identical"] == table["experiments"] == 1
