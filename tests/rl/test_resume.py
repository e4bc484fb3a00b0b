"""Exact resume: a DQN run stopped anywhere and resumed ends bit for bit as the uninterrupted run.

In-process (a trainer's state mid-episode, for state and pixel agents) and end to end: `dlrl rl train` in a
subprocess killed with SIGKILL at random moments, then `--resume`d until it finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dlrl.config.dqn import DQNConfig
from dlrl.rl.loop import DQNTrainer, train_dqn
from dlrl.rundir import RunDir
from dlrl.train.checkpoint import load_checkpoint

STATE = {
    "total_steps": 600,
    "learning_starts": 100,
    "buffer_size": 500,
    "batch_size": 32,
    "eval_every": 150,
    "eval_episodes": 2,
    "target_update": 50,
    "log_every": 50,
    "reset_every": 250,  # weights re-drawn from torch's global generator: it must be restored too
    "checkpoint_every": None,
    "model": {"hidden_sizes": [16]},
    "exploration": {"epsilon_steps": 200, "temperature_steps": 200},
}
PIXELS = {
    **STATE,
    "obs_type": "pixels",
    "buffer_size": 300,  # smaller than the run: the frame ring wraps
    "eval_episodes": 1,
    # augmented replay batches draw their shifts from the agent's generator: a resume must restore it
    "pixels": {"size": [12, 36], "frame_stack": 3, "augment_shift": 1},
    "n_step": 2,  # n-step returns are summed from the replay memory at sampling: nothing more to restore
    "eval_ema": 0.9,  # the evaluated weights' average is part of the run
    "model": {"hidden_sizes": [16], "conv_channels": [4, 8], "conv_kernels": [4, 3], "conv_strides": [2, 1]},
}


def _without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.parametrize("base", [STATE, PIXELS], ids=["state", "pixels"])
def test_resumed_trainer_continues_bit_for_bit(base, tmp_path):
    cfg = DQNConfig.model_validate(base)
    whole = train_dqn(cfg, "softmax", 0, tmp_path / "whole")
    part = DQNTrainer(cfg, "softmax", 0, tmp_path / "part")
    try:
        part.train(300)  # last.pt at step 300, in the middle of an episode
    finally:
        part.close()
    state = load_checkpoint(tmp_path / "part" / "last.pt")
    assert state["step"] == 300 and len(state["run"]["episode_actions"]) > 0
    resumed = train_dqn(cfg, "softmax", 0, tmp_path / "part", resume=True)
    assert resumed.resumed_from == 300
    assert resumed.episodes == whole.episodes and resumed.updates == whole.updates
    assert _without_seconds(resumed.evals) == _without_seconds(whole.evals)
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "part" / "last.pt")
    for key in ("model", "target", "eval_ema"):
        if key in a or key in b:
            assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert ("eval_ema" in a) == (base is PIXELS)
    assert resumed.checkpoint["bytes"] > resumed.checkpoint["replay_bytes"] > 0


def test_resume_refuses_a_checkpoint_of_a_non_deterministic_episode(tmp_path):
    from dlrl.errors import CheckpointError

    cfg = DQNConfig.model_validate(STATE)
    trainer = DQNTrainer(cfg, "epsilon", 0, tmp_path)
    try:
        trainer.train(150)
    finally:
        trainer.close()
    state = load_checkpoint(tmp_path / "last.pt")
    state["run"]["obs"] = state["run"]["obs"] + 1.0  # not where replaying the episode's actions leads
    other = DQNTrainer(cfg, "epsilon", 0)
    try:
        with pytest.raises(CheckpointError, match="does not give the saved observation"):
            other.load_state(state, "last.pt")
    finally:
        other.close()


# ----- end to end: SIGKILL a real `dlrl rl train`, then --resume until it finishes -----------------------

# figures=false: the figures over seeds hold none of the numbers compared (and are tested in test_dqn.py)
KILL_STATE = [
    "figures=false",
    "total_steps=1500",
    "learning_starts=200",
    "buffer_size=1000",
    "batch_size=32",
    "eval_every=150",
    "eval_episodes=2",
    "final_episodes=3",
    "checkpoint_every=null",
    "model.hidden_sizes=[32]",
    "exploration.epsilon_steps=500",
]
KILL_PIXELS = [
    "figures=false",
    "obs_type=pixels",
    "total_steps=400",
    "learning_starts=100",
    "buffer_size=250",
    "batch_size=16",
    "eval_every=100",
    "eval_episodes=1",
    "confirm_episodes=null",
    "final_episodes=2",
    "checkpoint_every=null",
    "log_every=50",
    "pixels.size=[12,36]",
    "pixels.frame_stack=3",
    "model.hidden_sizes=[16]",
    "model.conv_channels=[4,8]",
    "model.conv_kernels=[4,3]",
    "model.conv_strides=[2,1]",
    "exploration.epsilon_steps=200",
]
# what differs between two runs of the same agent: time, and what this process itself wrote or resumed
TIMING = {
    "train_seconds",
    "seconds_this_process",
    "cpu_seconds_this_process",
    "steps_per_second",
    "resumed_from",
    "checkpoint_bytes",
    "checkpoint_replay_bytes",
    "checkpoint_write_seconds",
}


def _train(out: Path, options: list[str], resume: bool) -> subprocess.Popen:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONHASHSEED": "0"}
    argv = [sys.executable, "-m", "dlrl", "-q", "rl", "train", "--workers", "1", "--out", str(out)]
    return subprocess.Popen(
        [*argv, *(["--resume"] if resume else []), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, newer_than: float = 0.0) -> None:
    """Until ``path`` exists (modified after ``newer_than``) or the process has ended."""
    while proc.poll() is None and not (path.exists() and path.stat().st_mtime > newer_than):
        time.sleep(0.02)


def _killed_run(out: Path, options: list[str], seed: int, kills: int) -> int:
    """Train into ``out``, SIGKILLed ``kills`` times at random moments, each time resumed; kills done."""
    rng = np.random.default_rng(seed)
    last = out / "epsilon-seed0" / "checkpoints" / "last.pt"
    done = 0
    while True:
        proc = _train(out, options, resume=(out / "config.yaml").exists())
        if done < kills:
            if done == 0:  # anywhere once the run directory is there: set-up, warm-up, learning
                _wait_for(out / "config.yaml", proc)
                time.sleep(rng.uniform(0.0, 3.0))
            else:  # after the next checkpoint, a random moment into what follows it
                _wait_for(last, proc, newer_than=last.stat().st_mtime if last.exists() else 0.0)
                time.sleep(rng.uniform(0.0, 1.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                done += 1
                continue
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        return done


def _final(out: Path) -> dict:
    """Everything a run reports about its agent, timings left out."""
    sub = RunDir(out / "epsilon-seed0")
    result = json.loads((sub.path / "result.json").read_text())
    weights = load_checkpoint(sub.checkpoints / "best.pt")["model"]
    return {
        "result": {k: v for k, v in result.items() if k not in TIMING},
        "episodes": sub.read_metrics("episodes.csv"),
        "evals": _without_seconds(sub.read_metrics("evals.csv")),
        "updates": sub.read_metrics("updates.csv"),
        "best_weights": {k: v.tolist() for k, v in weights.items()},
        "summary_final_mean": json.loads((out / "summary.json").read_text())["final_mean"],
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
# Pixels: one kill (each costs a process start of seconds); the state run is killed twice, so a resumed run
# is resumed again.
@pytest.mark.parametrize(
    ("options", "seed", "kills"), [(KILL_STATE, 1, 2), (KILL_PIXELS, 2, 1)], ids=["state", "pixels"]
)
def test_sigkill_at_random_points_then_resume_is_bit_identical(options, seed, kills, tmp_path):
    reference = _train(tmp_path / "reference", options, resume=False)  # beside the killed run: same result
    killed = tmp_path / "killed"
    assert _killed_run(killed, options, seed, kills) >= 1
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err
    ours, theirs = _final(killed), _final(tmp_path / "reference")
    assert ours["result"]["steps"] == theirs["result"]["steps"]
    assert ours == theirs


def test_augmented_replay_batches_change_the_updates(tmp_path):
    short = {**PIXELS, "total_steps": 160, "log_every": 20}
    runs = {
        shift: train_dqn(
            DQNConfig.model_validate({**short, "pixels": {**PIXELS["pixels"], "augment_shift": shift}}),
            "softmax",
            0,
            tmp_path / str(shift),
        )
        for shift in (0, 1)
    }
    losses = {shift: [row["loss"] for row in run.updates if "loss" in row] for shift, run in runs.items()}
    assert len(losses[0]) == len(losses[1]) >= 2 and losses[0] != losses[1]


def test_n_step_returns_change_the_updates(tmp_path):
    short = {**STATE, "total_steps": 200, "log_every": 20}
    runs = {
        n: train_dqn(DQNConfig.model_validate({**short, "n_step": n}), "epsilon", 0, tmp_path / str(n))
        for n in (1, 3)
    }
    losses = {n: [row["loss"] for row in run.updates if "loss" in row] for n, run in runs.items()}
    assert len(losses[1]) == len(losses[3]) >= 2 and losses[1] != losses[3]
