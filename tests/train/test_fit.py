"""Trainer and fit: learn, deterministic, exact resume, early stopping; a finished run stays finished."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlrl.config import OptimConfig
from dlrl.data.batching import Batches
from dlrl.train.checkpoint import load_checkpoint
from dlrl.train.fit import Monitor, fit
from dlrl.train.optim import make_optimization
from dlrl.train.trainer import Trainer, evaluate

CPU = torch.device("cpu")


def classify_step(model: nn.Module, batch):
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits, y), {"accuracy": (logits.argmax(1) == y).float().mean()}


def _data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x, y


def _setup(seed: int = 0, schedule: str = "onecycle", epochs: int = 6):
    """Dropout (global RNG), shuffled batches, a per-batch schedule: all that resume must restore."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))
    x, y = _data()
    train = Batches(x[:64], y[:64], batch_size=16, shuffle=True, seed=seed)
    val = Batches(x[64:], y[64:], batch_size=32)
    cfg = OptimConfig(lr=0.05, schedule=schedule)
    optimizer, scheduler, per_batch = make_optimization(model.parameters(), cfg, epochs, len(train))
    return model, optimizer, scheduler, per_batch, train, val


def _trainer(setup, step=classify_step) -> Trainer:
    model, optimizer, scheduler, per_batch, train, val = setup
    return Trainer(
        model, step, optimizer, train, val, device=CPU, scheduler=scheduler, scheduler_per_batch=per_batch
    )


def _fit(setup, epochs: int = 6, monitor: Monitor | None = None, **kwargs):
    return fit(_trainer(setup), epochs, monitor, progress=False, **kwargs)


def _strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_overfits_a_small_batch() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 3))
    x, y = _data(16)
    batches = Batches(x, y, batch_size=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    trainer = Trainer(model, classify_step, optimizer, batches, batches, device=CPU)
    result = fit(trainer, 150, progress=False)
    assert result.history[-1]["train_loss"] < 0.05
    assert evaluate(model, batches, classify_step, CPU)["accuracy"] == 1.0


def test_deterministic_under_a_seed() -> None:
    first = _fit(_setup(seed=3))
    second = _fit(_setup(seed=3))
    other = _fit(_setup(seed=4))
    assert _strip(first.history) == _strip(second.history)
    assert _strip(first.history) != _strip(other.history)


def test_resume_after_interruption_equals_uninterrupted(tmp_path: Path) -> None:
    full_setup = _setup()
    full = _fit(full_setup, checkpoint_dir=tmp_path / "full")

    def interrupt(epoch: int, row: dict) -> bool:
        if epoch == 3:
            raise KeyboardInterrupt
        return True

    with pytest.raises(KeyboardInterrupt):
        _fit(_setup(), checkpoint_dir=tmp_path / "cut", on_epoch_end=interrupt)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2  # epochs done: 1-2 saved, 3 lost
    torch.manual_seed(999)  # the resumed process starts from a different global RNG state
    resumed_setup = _setup()
    resumed = _fit(resumed_setup, checkpoint_dir=tmp_path / "cut", resume=True)
    assert _strip(resumed.history) == _strip(full.history)
    assert (resumed.best_epoch, resumed.best_metric) == (full.best_epoch, full.best_metric)
    for a, b in zip(full_setup[0].state_dict().values(), resumed_setup[0].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_early_stopping(tmp_path: Path) -> None:
    def constant_step(model: nn.Module, batch):
        loss, metrics = classify_step(model, batch)
        return loss, {**metrics, "flat": torch.tensor(1.0)}

    trainer = _trainer(_setup(schedule="none"), constant_step)
    result = fit(trainer, 10, Monitor("val_flat", "min", patience=2), checkpoint_dir=tmp_path, progress=False)
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1
    assert (tmp_path / "best.pt").exists()
    assert load_checkpoint(tmp_path / "last.pt")["finished"] is True


def test_hook_returning_false_stops() -> None:
    result = _fit(_setup(), on_epoch_end=lambda epoch, row: epoch < 2)
    assert len(result.history) == 2 and result.stopped_early


def test_finished_run_resumed_does_nothing(tmp_path: Path) -> None:
    done = _fit(_setup(), checkpoint_dir=tmp_path)
    before = (tmp_path / "last.pt").read_bytes()
    calls = []

    def counting_step(model, batch):
        calls.append(1)
        return classify_step(model, batch)

    again = fit(_trainer(_setup(), counting_step), 6, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert calls == []
    assert _strip(again.history) == _strip(done.history)
    assert (tmp_path / "last.pt").read_bytes() == before


def test_best_checkpoint_follows_the_monitored_metric(tmp_path: Path) -> None:
    result = _fit(_setup(), checkpoint_dir=tmp_path, monitor=Monitor("val_accuracy", "max"))
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == result.best_epoch
    assert result.best_metric == max(row["val_accuracy"] for row in result.history)


def test_trainer_state_round_trip_continues_identically() -> None:
    """Two epochs, then state() into a fresh trainer: its third epoch equals an uninterrupted third."""
    full = _trainer(_setup(seed=5))
    rows = [full.train_epoch() for _ in range(3)]
    first = _trainer(_setup(seed=5))
    first.train_epoch(), first.train_epoch()
    state, rng = first.state(), torch.get_rng_state()
    second = _trainer(_setup(seed=5))
    with torch.no_grad():  # other weights: everything must come from the state
        for parameter in second.model.parameters():
            parameter.normal_()
    second.load_state(state)
    torch.set_rng_state(rng)
    assert second.epoch == 2
    assert second.train_epoch() == rows[2]
