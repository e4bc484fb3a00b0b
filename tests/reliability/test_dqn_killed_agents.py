"""`dlrl rl train` with two agents trained one after the other, SIGKILLed while the second one is in the
middle of its training (a real process, no handler runs): --resume keeps the first agent as it finished,
continues the second from its last checkpoint (not from the start, not as if it had finished), and the run
ends as the uninterrupted one. (Replaces a resume test whose agent had already finished training.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_support import wait_for

TWO_AGENTS = ["--seeds", "0,1", "--exploration", "epsilon", "--workers", "1"]
STEPS = 800  # per agent: four evaluations, each writing last.pt, so the kill lands inside the second
TINY = [f"total_steps={STEPS}", "learning_starts=200", "buffer_size=1000", "batch_size=32", "eval_every=200"]
TINY += ["eval_episodes=2", "final_episodes=3", "model.hidden_sizes=[32]", "exploration.epsilon_steps=500"]
TINY += ["checkpoint_every=null"]  # last.pt at every evaluation
TINY += ["figures=false"]  # the figures over seeds hold none of the numbers compared
TIMING = ("seconds", "per_second", "resumed_from", "checkpoint_")  # checkpoint_: file sizes


def _train(out: Path, resume: bool) -> subprocess.Popen:
    argv = [sys.executable, "-m", "dlrl", "-q", "rl", "train", *TWO_AGENTS, "--out", str(out), *TINY]
    return subprocess.Popen(
        [*argv, *(["--resume"] if resume else [])],
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _results(out: Path) -> dict:
    found = {}
    for agent in ("epsilon-seed0", "epsilon-seed1"):
        record = json.loads((out / agent / "result.json").read_text())
        found[agent] = {k: v for k, v in record.items() if not any(word in k for word in TIMING)}
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_in_the_middle_of_the_second_agent(tmp_path: Path) -> None:
    reference = _train(tmp_path / "reference", resume=False)
    killed = tmp_path / "killed"
    process = _train(killed, resume=False)
    second = killed / "epsilon-seed1" / "checkpoints" / "last.pt"
    wait_for(second.is_file, timeout=600, process=process)  # the first agent is done, the second under way
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    first = (killed / "epsilon-seed0" / "result.json").read_text()
    assert not (killed / "epsilon-seed1" / "result.json").exists()

    resumed = _train(killed, resume=True)
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err
    assert (killed / "epsilon-seed0" / "result.json").read_text() == first  # kept, not trained again
    record = json.loads((killed / "epsilon-seed1" / "result.json").read_text())
    assert 0 < record["resumed_from"] < STEPS and record["steps"] == STEPS
    ours, theirs = _results(killed), _results(tmp_path / "reference")
    assert ours == theirs, {
        k: (v, theirs["epsilon-seed1"].get(k))
        for k, v in ours["epsilon-seed1"].items()
        if v != theirs["epsilon-seed1"].get(k)
    }
