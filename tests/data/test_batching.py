"""In-memory batching: coverage, seeded order, drop_last, transforms."""

from __future__ import annotations

import pytest
import torch

from dlrl.data.batching import Batches


def _epoch(batches: Batches, epoch: int) -> list[torch.Tensor]:
    batches.set_epoch(epoch)
    return [b[0] for b in batches]


def test_every_sample_once_per_epoch_and_aligned() -> None:
    x = torch.arange(103)
    y = x * 10
    batches = Batches(x, y, batch_size=10, shuffle=True, seed=3)
    assert len(batches) == 11
    for epoch in range(3):
        batches.set_epoch(epoch)
        seen = []
        for bx, by in batches:
            assert torch.equal(by, bx * 10)
            seen.append(bx)
        assert [len(b) for b in seen] == [10] * 10 + [3]
        assert sorted(torch.cat(seen).tolist()) == list(range(103))


def test_order_depends_on_seed_and_epoch_only() -> None:
    x = torch.arange(50)
    a = Batches(x, batch_size=8, shuffle=True, seed=1)
    b = Batches(x, batch_size=8, shuffle=True, seed=1)
    _epoch(b, 4)  # iterating other epochs first must not matter
    torch.manual_seed(123)  # nor the global RNG
    for epoch in (0, 1, 2):
        assert all(torch.equal(p, q) for p, q in zip(_epoch(a, epoch), _epoch(b, epoch), strict=True))
    assert not torch.equal(torch.cat(_epoch(a, 0)), torch.cat(_epoch(a, 1)))
    c = Batches(x, batch_size=8, shuffle=True, seed=2)
    assert not torch.equal(torch.cat(_epoch(a, 0)), torch.cat(_epoch(c, 0)))


def test_no_shuffle_keeps_order() -> None:
    x = torch.arange(10)
    assert torch.equal(torch.cat(list(b[0] for b in Batches(x, batch_size=3))), x)


def test_drop_last() -> None:
    batches = Batches(torch.arange(103), batch_size=10, shuffle=True, drop_last=True)
    assert len(batches) == 10
    got = [b[0] for b in batches]
    assert [len(b) for b in got] == [10] * 10
    assert len(set(torch.cat(got).tolist())) == 100


def test_transform_sees_a_seeded_generator() -> None:
    def noise(batch, generator):
        (x,) = batch
        return (x + torch.rand(x.shape, generator=generator),)

    x = torch.zeros(20)
    first = _epoch(Batches(x, batch_size=5, shuffle=True, seed=0, transform=noise), 2)
    again = _epoch(Batches(x, batch_size=5, shuffle=True, seed=0, transform=noise), 2)
    assert all(torch.equal(p, q) for p, q in zip(first, again, strict=True))
    assert torch.cat(first).abs().sum() > 0


@pytest.mark.parametrize(
    ("tensors", "kwargs", "match"),
    [
        ((), {"batch_size": 2}, "at least one tensor"),
        ((torch.zeros(3), torch.zeros(4)), {"batch_size": 2}, "differ in length"),
        ((torch.zeros(3),), {"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments(tensors, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Batches(*tensors, **kwargs)
