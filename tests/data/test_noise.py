"""Noise models of the denoising AutoEncoder and PSNR, on hand-checked inputs."""

from __future__ import annotations

import math

import pytest
import torch

from dlrl.data.noise import add_noise, check_level, gaussian_noise, masking_noise, psnr, salt_and_pepper


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", ["gaussian", "salt_pepper", "mask"])
def test_level_zero_is_identity_and_output_stays_in_range(kind: str) -> None:
    images = torch.rand(4, 1, 28, 28, generator=gen(1))
    assert torch.equal(add_noise(images, kind, 0.0, gen()), images)
    noisy = add_noise(images, kind, 0.5, gen())
    assert noisy.shape == images.shape
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
    assert not torch.equal(noisy, images)


@pytest.mark.parametrize("kind", ["gaussian", "salt_pepper", "mask"])
def test_same_generator_seed_same_noise(kind: str) -> None:
    images = torch.full((2, 1, 8, 8), 0.5)
    assert torch.equal(add_noise(images, kind, 0.3, gen(7)), add_noise(images, kind, 0.3, gen(7)))
    assert not torch.equal(add_noise(images, kind, 0.3, gen(7)), add_noise(images, kind, 0.3, gen(8)))


@pytest.mark.parametrize("kind", ["gaussian", "salt_pepper", "mask"])
@pytest.mark.parametrize("level", [-0.1, 1.01, math.nan])
def test_level_out_of_range_is_refused(kind: str, level: float) -> None:
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        add_noise(torch.zeros(1, 1, 2, 2), kind, level, gen())


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown noise kind 'speckle'"):
        check_level("speckle", 0.1)


def test_salt_and_pepper_at_probability_one_is_binary_with_both_values() -> None:
    noisy = salt_and_pepper(torch.full((1, 1, 28, 28), 0.5), 1.0, gen())
    assert set(noisy.unique().tolist()) == {0.0, 1.0}


def test_masking_only_zeroes_pixels_at_about_the_rate() -> None:
    images = torch.ones(1, 1, 100, 100)
    noisy = masking_noise(images, 0.25, gen())
    assert set(noisy.unique().tolist()) == {0.0, 1.0}
    assert abs(float((noisy == 0).float().mean()) - 0.25) < 0.02
    assert torch.equal(masking_noise(images, 1.0, gen()), torch.zeros_like(images))


def test_gaussian_noise_has_the_requested_sigma_and_is_clipped() -> None:
    images = torch.full((1, 1, 200, 200), 0.5)
    noisy = gaussian_noise(images, 0.1, gen())
    assert abs(float((noisy - images).std()) - 0.1) < 0.005
    assert float(gaussian_noise(images, 1.0, gen()).max()) == 1.0  # 0.5 + N(0, 1) exceeds 1: clipped


def test_psnr_hand_computed() -> None:
    clean = torch.zeros(2, 1, 4, 4)
    other = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.01)])
    # MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB; MSE 1e-4 -> 40 dB
    assert torch.allclose(psnr(clean, other), torch.tensor([20.0, 40.0]))
    assert torch.allclose(psnr(clean, other * 255, max_value=255.0), torch.tensor([20.0, 40.0]))
    assert math.isinf(float(psnr(clean, clean)[0]))


def test_psnr_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(torch.zeros(1, 4), torch.zeros(1, 5))
