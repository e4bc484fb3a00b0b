"""A DQN agent's last.pt changed where its training resumes from it (found by
tests/fuzz/test_fuzz_checkpoints.py: history of another shape, generator states of another kind, a target
net of other shapes, an optimizer state that does not fit, a run entry that is not a mapping ended in
TypeError, ValueError or RuntimeError mid-restore, or loaded silently). Each is one CheckpointError line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlrl.config.dqn import DQNConfig
from dlrl.errors import CheckpointError
from dlrl.rl.loop import train_dqn
from dlrl.train.checkpoint import load_checkpoint

TINY = {
    "total_steps": 200,
    "learning_starts": 50,
    "buffer_size": 300,
    "batch_size": 16,
    "eval_every": 100,
    "eval_episodes": 1,
    "confirm_episodes": None,
    "log_every": 50,
    "checkpoint_every": None,
    "model": {"hidden_sizes": [8]},
    "eval_ema": 0.9,  # last.pt then holds the evaluated weights' average too
}


@pytest.fixture(scope="module")
def last(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """last.pt of a 100-step agent of a 200-step run: resumed, it trains 100 more steps."""
    directory = tmp_path_factory.mktemp("dqn")
    train_dqn(DQNConfig.model_validate({**TINY, "total_steps": 100}), "epsilon", 0, directory)
    return load_checkpoint(directory / "last.pt")


def _opt_moment(state: dict) -> None:
    state["optimizer"]["state"][0]["exp_avg"] = torch.zeros(3)


CASES = {
    "history-list": (lambda s: s.update(history=[1]), "history"),
    "history-entries": (
        lambda s: s.update(history={"episodes": 1, "evals": None, "updates": "x"}),
        "history",
    ),
    "numpy-rng": (lambda s: s.update(numpy_rng={"a": 1}), "generator"),
    "torch-rng": (lambda s: s.update(torch_rng=torch.zeros(3)), "generator"),
    "global-rng": (lambda s: s.update(torch_global_rng=torch.zeros(3)), "generator"),
    "target": (lambda s: s.update(target={k: torch.zeros(2) for k in s["target"]}), "another architecture"),
    "optimizer": (_opt_moment, "optimizer state does not match"),
    "eval-ema": (
        lambda s: s.update(eval_ema={k: torch.zeros(2) for k in s["eval_ema"]}),
        "another architecture",
    ),
    "eval-ema-list": (lambda s: s.update(eval_ema=[1]), "not a state dict of tensors"),
    "run-none": (lambda s: s.update(run=None), "run is NoneType, not the run's state"),
    "run-actions": (lambda s: s["run"].update(episode_actions=torch.tensor([7, 9])), "episode"),
    "best-eval": (lambda s: s.update(best_eval="x"), "best_eval is a str"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_damaged_last_pt_is_one_checkpoint_error(last: dict, tmp_path: Path, name: str) -> None:
    change, detail = CASES[name]
    state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in last.items()}
    state["optimizer"] = {
        **last["optimizer"],
        "state": {k: dict(v) for k, v in last["optimizer"]["state"].items()},
    }
    change(state)
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(CheckpointError) as info:
        train_dqn(DQNConfig.model_validate(TINY), "epsilon", 0, tmp_path, resume=True)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'last.pt'}: ") and detail in message and "\n" not in message


def test_the_untouched_last_pt_resumes(last: dict, tmp_path: Path) -> None:
    torch.save(last, tmp_path / "last.pt")
    result = train_dqn(DQNConfig.model_validate(TINY), "epsilon", 0, tmp_path, resume=True)
    assert result.resumed_from == 100 and result.steps == 200
