"""Helpers of the reliability tests (imported by them; conftest.py puts this folder on sys.path): a
regression run small enough to repeat many times, real dlrl processes to SIGKILL, the checks every failed
run must pass."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# Regression: 6 epochs of a tiny net and a 2-member ensemble, about a second in-process.
REGRESSION = [
    "data.num_points=200",
    "data.test_points=400",
    "model.hidden_sizes=[8,8]",
    "epochs=6",
    "ensemble=2",
    "batch_size=32",
    "device=cpu",
    "threads=1",
    "figures=false",
]
# Keys of a summary that measure time, not results: they differ between any two runs.
TIMING_WORDS = ("seconds", "per_second", "eta", "started", "resumed", "wall", "cpu_")


def results(summary: dict) -> dict:
    """A summary without its timings: what must be identical between a resumed and an uninterrupted run."""
    return {k: v for k, v in summary.items() if not any(word in k for word in TIMING_WORDS)}


def read_summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def one_error_line(stderr: str) -> str:
    """The single line of a failed command (log lines above it are allowed, a traceback is not)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("dlrl: ")]
    assert len(lines) == 1 and stderr.rstrip().endswith(lines[0]), stderr
    return lines[0]


def dlrl_process(*argv: str, cwd: Path | None = None) -> subprocess.Popen:
    """A real ``dlrl`` process (its own session, so a SIGKILL reaches it and nothing else)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "dlrl", "-q", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 120.0, process: subprocess.Popen | None = None):
    """Poll ``condition`` every 20 ms until it holds; fails if ``process`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"process ended ({process.returncode}) before the condition held:\n{out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.02)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL: no handler, no finally block, no atexit runs."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
