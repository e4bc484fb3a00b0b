"""Noise models for the denoising AutoEncoder, applied on the fly with an explicit generator, and PSNR.

Every function takes images (B, C, H, W) with values in [0, 1] and returns noisy images in [0, 1].
Levels: gaussian sigma, salt-and-pepper probability, masking probability, each in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch

NOISE_KINDS = ("gaussian", "salt_pepper", "mask")
LEVEL_RANGE = (0.0, 1.0)


def check_level(kind: str, level: float) -> float:
    """Raise ValueError unless ``kind`` is known and ``level`` lies in [0, 1]."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind '{kind}' (choose from {', '.join(NOISE_KINDS)})")
    low, high = LEVEL_RANGE
    if not low <= level <= high:
        name = "sigma" if kind == "gaussian" else "probability"
        raise ValueError(f"{kind} noise level ({name}) must be in [{low:g}, {high:g}], got {level}")
    return level


def gaussian_noise(images: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """images + sigma * N(0, 1), clipped to [0, 1]."""
    check_level("gaussian", sigma)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return (images + sigma * noise).clamp(0.0, 1.0)


def salt_and_pepper(images: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Each pixel independently with ``probability`` set to 0 or 1 (equally likely)."""
    check_level("salt_pepper", probability)
    hit = torch.rand(images.shape, generator=generator) < probability
    salt = torch.rand(images.shape, generator=generator) < 0.5
    return torch.where(hit, salt.to(images.dtype), images)


def masking_noise(images: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Each pixel independently with ``probability`` set to 0 (dropped)."""
    check_level("mask", probability)
    drop = torch.rand(images.shape, generator=generator) < probability
    return images.masked_fill(drop, 0.0)


NOISE_FUNCTIONS: dict[str, Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]] = {
    "gaussian": gaussian_noise,
    "salt_pepper": salt_and_pepper,
    "mask": masking_noise,
}


def add_noise(images: torch.Tensor, kind: str, level: float, generator: torch.Generator) -> torch.Tensor:
    """Apply noise model ``kind`` at ``level`` (see the module docstring for the ranges)."""
    check_level(kind, level)
    return NOISE_FUNCTIONS[kind](images, level, generator)


def psnr(clean: torch.Tensor, other: torch.Tensor, max_value: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: 10 log10(max^2 / MSE over the image's pixels).

    clean, other: (B, ...) with the same shape; returns (B,). Identical images give +inf.
    """
    if clean.shape != other.shape:
        raise ValueError(f"psnr: shapes differ, {tuple(clean.shape)} vs {tuple(other.shape)}")
    mse = (clean - other).pow(2).reshape(clean.shape[0], -1).mean(dim=1)
    return 10.0 * torch.log10(max_value**2 / mse)
