"""Image datasets as in-memory tensors, split into train / validation / test."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from dlrl.config import DataConfig
from dlrl.data.idx import read_pair
from dlrl.data.sources import ResolvedFiles, get_spec, resolve
from dlrl.errors import DataError

log = logging.getLogger(__name__)

# How the shipped 10,000-image sample is divided when it stands in for the full dataset.
SAMPLE_SPLIT = (0.7, 0.1, 0.2)


@dataclass
class ImageData:
    """Images as float32 (N, 1, H, W) in [0, 1], labels as int64 (N,)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    dataset: str
    origin: str
    is_sample: bool

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def describe(self) -> str:
        return (
            f"{self.dataset} from {self.origin}: {len(self.train_x)} train / {len(self.val_x)} val / "
            f"{len(self.test_x)} test images"
        )


def _to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
    return x, torch.from_numpy(labels)


def split_indices(n: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Disjoint index sets covering range(n) in the given proportions, from a seeded permutation."""
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([round(f * n) for f in fractions[:-1]])
    return np.split(order, bounds)


def load_images(cfg: DataConfig, files: ResolvedFiles | None = None) -> ImageData:
    """Load the dataset named in ``cfg`` (resolving files unless given) as train/val/test tensors."""
    spec = get_spec(cfg.dataset)
    files = files or resolve(cfg.dataset, cfg.data_dir, download=cfg.download)
    num_classes = len(spec.classes)
    test_images, test_labels = read_pair(files.files["test-images"], files.files["test-labels"], num_classes)
    if files.is_sample:
        train_idx, val_idx, test_idx = split_indices(len(test_images), SAMPLE_SPLIT, cfg.split_seed)
        train_images, train_labels = test_images[train_idx], test_labels[train_idx]
        val_images, val_labels = test_images[val_idx], test_labels[val_idx]
        test_images, test_labels = test_images[test_idx], test_labels[test_idx]
    else:
        images, labels = read_pair(files.files["train-images"], files.files["train-labels"], num_classes)
        if cfg.val_size >= len(images):
            raise DataError(
                f"data.val_size={cfg.val_size} leaves no training images ({len(images)} in total)"
            )
        order = np.random.default_rng(cfg.split_seed).permutation(len(images))
        val_idx, train_idx = order[: cfg.val_size], order[cfg.val_size :]
        train_images, train_labels = images[train_idx], labels[train_idx]
        val_images, val_labels = images[val_idx], labels[val_idx]
    if cfg.limit is not None:
        train_images, train_labels = train_images[: cfg.limit], train_labels[: cfg.limit]
    if test_images.shape[1:] != train_images.shape[1:]:
        raise DataError(
            f"{files.directory}: train images are {train_images.shape[1:]}, test images "
            f"{test_images.shape[1:]}"
        )
    train_x, train_y = _to_tensors(train_images, train_labels)
    val_x, val_y = _to_tensors(val_images, val_labels)
    test_x, test_y = _to_tensors(test_images, test_labels)
    data = ImageData(
        train_x,
        train_y,
        val_x,
        val_y,
        test_x,
        test_y,
        spec.classes,
        spec.name,
        f"{files.origin} ({files.directory})",
        files.is_sample,
    )
    log.info("%s", data.describe())
    return data
