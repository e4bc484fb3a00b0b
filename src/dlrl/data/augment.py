"""Batch-level image augmentation, vectorised (no per-image Python loop), driven by an explicit generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(
    images: torch.Tensor, max_shift: int, generator: torch.Generator, edge: bool = False
) -> torch.Tensor:
    """Translate each image by an independent random (dy, dx) in [-max_shift, max_shift], zero-filled, or
    with ``edge`` filled with the nearest edge pixel (DrQ's replicate padding; any dtype, uint8 frames too).

    images: (B, C, H, W); every channel of an image moves together."""
    if max_shift <= 0:
        return images
    b, c, h, w = images.shape
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = torch.arange(h)[None, :] + dy[:, None]  # (B, H): rows of the image padded by max_shift
    cols = torch.arange(w)[None, :] + dx[:, None]
    if edge:
        source, width = images, w
        rows, cols = (rows - max_shift).clamp(0, h - 1), (cols - max_shift).clamp(0, w - 1)
    else:
        source, width = F.pad(images, (max_shift,) * 4), w + 2 * max_shift  # (B, C, H + 2s, W + 2s)
    # One gather along each image's flattened pixels, the same values as indexing with four index tensors
    # but 3-8x faster (2 threads: a 256-image Fashion-MNIST batch 1.04 -> 0.32 ms, a replay batch of 32
    # uint8 4x32x96 frame stacks 2.0 -> 0.3 ms).
    pixels = (rows[:, :, None] * width + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return source.flatten(2).gather(2, pixels).view(b, c, h, w)


def translate(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Move every image down by ``dy`` and right by ``dx`` pixels (negative: up, left), zero-filled.

    images: (B, C, H, W)."""
    h, w = images.shape[-2:]
    s = max(abs(dy), abs(dx))
    padded = F.pad(images, (s,) * 4)
    return padded[..., s - dy : s - dy + h, s - dx : s - dx + w]


def random_hflip(images: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    flip = torch.rand(images.shape[0], generator=generator) < p
    return torch.where(flip[:, None, None, None], images.flip(-1), images)
