"""Batch-level image augmentation, vectorised (no per-image Python loop), driven by an explicit generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by an independent random (dy, dx) in [-max_shift, max_shift], zero-filled.

    images: (B, C, H, W)."""
    if max_shift <= 0:
        return images
    b, c, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)  # (B, C, H + 2s, W + 2s)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = (torch.arange(h)[None, :] + dy[:, None])[:, None, :, None]  # (B, 1, H, 1)
    cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b)[:, None, None, None]
    channel = torch.arange(c)[None, :, None, None]
    return padded[batch, channel, rows, cols]


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
