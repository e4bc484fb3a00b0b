"""Loading image datasets into tensors: the shipped sample split, full datasets, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlrl.config import DataConfig
from dlrl.data.augment import random_hflip, random_shift, translate
from dlrl.data.idx import write_idx
from dlrl.data.images import load_images, split_indices
from dlrl.data.sources import SPLIT_FILES
from dlrl.errors import DataError


def test_sample_split_is_disjoint_and_reproducible() -> None:
    data = load_images(DataConfig(dataset="mnist", download=False))
    assert data.is_sample
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (7000, 1000, 2000)
    assert data.train_x.shape[1:] == (1, 28, 28) and data.train_x.dtype == torch.float32
    assert 0.0 <= float(data.train_x.min()) and float(data.train_x.max()) <= 1.0
    again = load_images(DataConfig(dataset="mnist", download=False))
    assert torch.equal(data.test_y, again.test_y)
    parts = split_indices(10_000, (0.7, 0.1, 0.2), seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(10_000))


def test_limit_and_full_dataset_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "mnist").mkdir()
    for split, stem in SPLIT_FILES.items():
        n = 30 if split.startswith("train") else 10
        shape = (n, 28, 28) if split.endswith("images") else (n,)
        high = 256 if split.endswith("images") else 10
        write_idx(tmp_path / "mnist" / f"{stem}.gz", rng.integers(0, high, shape, dtype=np.uint8))
    data = load_images(DataConfig(data_dir=str(tmp_path), val_size=5, limit=20, download=False))
    assert not data.is_sample
    assert (len(data.train_x), len(data.val_x), len(data.test_x)) == (20, 5, 10)
    with pytest.raises(DataError, match="val_size=30 leaves no training images"):
        load_images(DataConfig(data_dir=str(tmp_path), val_size=30, download=False))


def test_random_shift_moves_pixels_within_bounds() -> None:
    images = torch.zeros(64, 1, 5, 5)
    images[:, 0, 2, 2] = 1.0
    shifted = random_shift(images, 1, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    assert torch.all(shifted.sum(dim=(1, 2, 3)) == 1)  # a centre pixel shifted by 1 stays inside
    positions = {tuple(torch.nonzero(s[0])[0].tolist()) for s in shifted}
    assert positions <= {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} and len(positions) > 1
    assert random_shift(images, 0, torch.Generator()) is images


def test_random_shift_with_edge_repeats_the_border_pixels() -> None:
    images = torch.arange(18, dtype=torch.uint8).reshape(1, 2, 3, 3).repeat(50, 1, 1, 1)
    shifted = random_shift(images, 1, torch.Generator().manual_seed(0), edge=True)
    assert shifted.dtype == torch.uint8 and shifted.shape == images.shape
    # the same draws as the zero-filled shift: where that one kept a pixel, this one has the same pixel
    zero_filled = random_shift(images.float(), 1, torch.Generator().manual_seed(0))
    inside = zero_filled != 0
    assert torch.equal(shifted.float()[inside], zero_filled[inside])
    # and where that one filled a zero, the nearest row or column of the image repeats
    moved_down = [i for i in range(50) if torch.all(zero_filled[i, :, 0, :] == 0)]
    assert moved_down and all(torch.equal(shifted[i, :, 0], shifted[i, :, 1]) for i in moved_down)
    assert torch.equal(shifted[:, 1] - shifted[:, 0], torch.full((50, 3, 3), 9, dtype=torch.uint8))


@settings(max_examples=60, deadline=None, database=None)
@given(
    shape=st.tuples(*(st.integers(1, n) for n in (5, 3, 7, 9))),
    max_shift=st.integers(1, 3),
    edge=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_random_shift_is_a_window_of_the_padded_image(
    shape: tuple[int, int, int, int], max_shift: int, edge: bool, seed: int
) -> None:
    """Each image is the h x w window at its own drawn offset in the image padded by max_shift (zeros, or the
    edge pixels repeated): a slice per image, the slow obvious way, against the one gather of random_shift."""
    images = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    shifted = random_shift(images, max_shift, torch.Generator().manual_seed(seed), edge=edge)
    draws = torch.Generator().manual_seed(seed)
    dy = torch.randint(0, 2 * max_shift + 1, (shape[0],), generator=draws)
    dx = torch.randint(0, 2 * max_shift + 1, (shape[0],), generator=draws)
    padded = F.pad(images, (max_shift,) * 4, mode="replicate" if edge else "constant")
    h, w = shape[2:]
    for i in range(shape[0]):
        assert torch.equal(shifted[i], padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w])


def test_translate_moves_every_image_and_fills_with_zeros() -> None:
    images = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3).repeat(2, 1, 1, 1)
    down_right = translate(images, 1, 1)
    assert torch.equal(down_right[0, 0], torch.tensor([[0.0, 0, 0], [0, 1, 2], [0, 4, 5]]))
    assert torch.equal(translate(images, -1, 0)[1, 0], torch.tensor([[4.0, 5, 6], [7, 8, 9], [0, 0, 0]]))
    assert torch.equal(translate(images, 0, 0), images)


def test_random_hflip_flips_some() -> None:
    images = torch.arange(8.0).reshape(1, 1, 1, 8).repeat(100, 1, 1, 1)
    out = random_hflip(images, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 7).sum().item()
    assert 20 < flipped < 80
    assert torch.all((out[:, 0, 0, 0] == 0) | (out[:, 0, 0, 0] == 7))
