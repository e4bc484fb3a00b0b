"""VAE model and its loss: hand-computed terms, reparameterisation, shapes."""

from __future__ import annotations

import math

import pytest
import torch

from dlrl.models.vae import VAE, MeanEncoder, kl_to_standard_normal, vae_loss


def test_kl_is_exactly_zero_at_the_prior() -> None:
    mu, logvar = torch.zeros(3, 5), torch.zeros(3, 5)
    assert torch.equal(kl_to_standard_normal(mu, logvar), torch.zeros(3))


def test_vae_loss_hand_computed() -> None:
    # Two images of 4 pixels, all x = 1, reconstructed as 0.5: BCE = 4 ln 2 per image (summed), batch mean.
    x = torch.ones(2, 1, 2, 2)
    recon = torch.full((2, 1, 2, 2), 0.5)
    # KL per image, d = 2: image 1 mu = (1, 0), logvar = 0 -> 0.5 * 1 = 0.5;
    # image 2 mu = 0, logvar = (ln 2, 0) -> -0.5 * (1 + ln 2 - 2) = 0.5 * (1 - ln 2).
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(2.0), 0.0]])
    loss = vae_loss(recon, x, mu, logvar, beta=2.0)
    expected_kl = (0.5 + 0.5 * (1 - math.log(2.0))) / 2
    assert loss.recon.item() == pytest.approx(4 * math.log(2.0), rel=1e-6)
    assert loss.kl.item() == pytest.approx(expected_kl, rel=1e-6)
    assert loss.total.item() == pytest.approx(4 * math.log(2.0) + 2.0 * expected_kl, rel=1e-6)


def test_vae_loss_is_per_image_not_per_batch() -> None:
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    recon = torch.full_like(x, 0.3)
    mu, logvar = torch.randn(4, 3), torch.zeros(4, 3)
    one = vae_loss(
        recon[:1].repeat(4, 1, 1, 1), x[:1].repeat(4, 1, 1, 1), mu[:1].repeat(4, 1), logvar[:1].repeat(4, 1)
    )
    single = vae_loss(recon[:1], x[:1], mu[:1], logvar[:1])
    assert one.total.item() == pytest.approx(single.total.item(), rel=1e-6)


def test_encode_reparameterize_decode_shapes() -> None:
    model = VAE(latent_dim=4, hidden_dim=16).eval()
    x = torch.rand(3, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 4)
    recon, mu2, _ = (t.detach() for t in model(x))
    assert recon.shape == x.shape and torch.equal(mu, mu2)
    assert float(recon.min()) >= 0 and float(recon.max()) <= 1
    assert torch.equal(MeanEncoder(model)(x), mu)


def test_reparameterize_uses_the_given_noise() -> None:
    mu = torch.tensor([[1.0, -1.0]])
    logvar = torch.tensor([[math.log(4.0), 0.0]])  # sigma = (2, 1)
    eps = torch.tensor([[0.5, 2.0]])
    assert torch.allclose(VAE.reparameterize(mu, logvar, eps), torch.tensor([[2.0, 1.0]]))
    assert torch.equal(VAE.reparameterize(mu, logvar, None), mu)


@pytest.mark.parametrize("latent_dim", [0, -3])
def test_latent_dim_must_be_positive(latent_dim: int) -> None:
    with pytest.raises(ValueError, match="latent_dim must be positive"):
        VAE(latent_dim=latent_dim)
