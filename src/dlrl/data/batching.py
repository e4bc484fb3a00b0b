"""Mini-batches from in-memory tensors: one seeded permutation per epoch, batches by indexing.

No per-item ``__getitem__`` in the hot path: a batch is one fancy-indexing call per tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

Batch = tuple[torch.Tensor, ...]


class Batches:
    """Iterable of batches over aligned tensors (same first dimension).

    The order of epoch ``e`` depends only on (seed, e), so a resumed run sees the same batches as an
    uninterrupted one. Call ``set_epoch(e)`` before iterating (the training loop does).
    ``transform`` maps a batch to a batch (augmentation, noise); it receives a generator seeded the same way.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        transform: Callable[[Batch, torch.Generator], Batch] | None = None,
    ):
        if not tensors:
            raise ValueError("Batches needs at least one tensor")
        n = len(tensors[0])
        if any(len(t) != n for t in tensors):
            raise ValueError(f"tensors differ in length: {[len(t) for t in tensors]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def num_samples(self) -> int:
        return len(self.tensors[0])

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = self.num_samples
        order = torch.randperm(n, generator=generator) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            if order is None:
                batch = tuple(t[start : start + self.batch_size] for t in self.tensors)
            else:
                index = order[start : start + self.batch_size]
                batch = tuple(t[index] for t in self.tensors)
            if self.transform is not None:
                batch = self.transform(batch, generator)
            yield batch
