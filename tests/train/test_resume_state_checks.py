"""A checkpoint given to --resume is checked before training continues from it. Found by tests/fuzz: an
optimizer state whose moments have other shapes loaded silently (and a wrong-typed learning rate, history
row or scheduler entry failed later with a TypeError); a model entry of complex numbers loaded with a
warning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from dlrl.config import OptimConfig
from dlrl.data.batching import Batches
from dlrl.errors import CheckpointError
from dlrl.train.checkpoint import load_checkpoint, save_checkpoint
from dlrl.train.fit import fit
from dlrl.train.optim import make_optimization
from dlrl.train.trainer import Trainer


def _step(model: nn.Module, batch):
    x, y = batch
    return torch.mean((model(x) - y) ** 2), {}


def _trainer(schedule: str = "cosine") -> Trainer:
    torch.manual_seed(0)
    x = torch.randn(32, 3)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    batches = Batches(x, x[:, :1] * 2, batch_size=8, shuffle=True, seed=0)
    optimizer, scheduler, per_batch = make_optimization(
        model.parameters(), OptimConfig(schedule=schedule), 4, len(batches)
    )
    return Trainer(
        model,
        _step,
        optimizer,
        batches,
        device=torch.device("cpu"),
        scheduler=scheduler,
        scheduler_per_batch=per_batch,
    )


@pytest.fixture
def interrupted(tmp_path: Path) -> Path:
    """checkpoints/last.pt of a 4-epoch fit stopped after epoch 2."""
    fit(_trainer(), 2, checkpoint_dir=tmp_path, progress=False)
    state = load_checkpoint(tmp_path / "last.pt")
    save_checkpoint(tmp_path / "last.pt", {**state, "finished": False})
    return tmp_path


def _resume_with(directory: Path, change) -> str:
    state = load_checkpoint(directory / "last.pt")
    change(state)
    torch.save(state, directory / "last.pt")
    with pytest.raises(CheckpointError) as info:
        fit(_trainer(), 4, checkpoint_dir=directory, resume=True, progress=False)
    message = str(info.value)
    assert message.startswith(f"{directory / 'last.pt'}: ") and "\n" not in message
    return message


def test_an_untouched_checkpoint_resumes(interrupted: Path) -> None:
    result = fit(_trainer(), 4, checkpoint_dir=interrupted, resume=True, progress=False)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]


def _moment(shape: tuple[int, ...], dtype=torch.float32):
    def change(state):
        first = state["optimizer"]["state"][0]
        first["exp_avg"] = torch.zeros(shape, dtype=dtype)

    return change


@pytest.mark.parametrize(
    "change, detail",
    [
        (_moment((3,)), "exp_avg of parameter 0 is torch.float32 (3,)"),
        (_moment((4, 3), torch.int64), "exp_avg of parameter 0 is torch.int64 (4, 3)"),
        (lambda s: s["optimizer"]["param_groups"][0].update(lr="0.1"), "group 0: lr is a str"),
        (lambda s: s["optimizer"]["param_groups"][0].update(betas=[0.9]), "group 0: betas is a list"),
        (lambda s: s["optimizer"]["param_groups"][0].update(params=[0]), "group 0 is not for 4 parameters"),
        (lambda s: s["optimizer"].update(param_groups=[]), "expected 1 parameter group(s)"),
        (lambda s: s["optimizer"]["state"].update({7: {}}), "state of an unknown parameter 7"),
        (lambda s: s["optimizer"]["state"][0].update(step="x"), "step of parameter 0 is a str"),
        (lambda s: s.update(optimizer={"state": 1}), "not an optimizer state dict"),
    ],
)
def test_an_optimizer_state_that_does_not_fit_is_refused(interrupted: Path, change, detail: str) -> None:
    assert _resume_with(interrupted, change).endswith(f"optimizer state does not match ({detail})")


@pytest.mark.parametrize(
    "change, detail",
    [
        (
            lambda s: s["scheduler"].update(last_epoch="x"),
            "scheduler state does not match (entry last_epoch)",
        ),
        (lambda s: s["scheduler"].update(foo=1), "scheduler state does not match (entry foo)"),
        (lambda s: s.update(history=[1, "x"]), "history is not one row of numbers per epoch up to epoch 2"),
        (lambda s: s.update(history=[{"epoch": "x"}] * 2), "history is not one row of numbers per epoch"),
        (lambda s: s.update(history=s["history"][:1]), "history is not one row of numbers per epoch"),
        (lambda s: s.update(epoch=-3), "history is not one row of numbers per epoch up to epoch -3"),
        (
            lambda s: s["model"].update({"0.weight": s["model"]["0.weight"].to(torch.complex64)}),
            "0.weight holds torch.complex64 values, not torch.float32",
        ),
    ],
)
def test_other_entries_that_do_not_fit_are_refused(interrupted: Path, change, detail: str) -> None:
    assert detail in _resume_with(interrupted, change)


def test_a_half_precision_model_entry_still_loads(interrupted: Path) -> None:
    state = load_checkpoint(interrupted / "last.pt")
    state["model"] = {k: v.half() for k, v in state["model"].items()}
    torch.save(state, interrupted / "last.pt")
    assert len(fit(_trainer(), 4, checkpoint_dir=interrupted, resume=True, progress=False).history) == 4
