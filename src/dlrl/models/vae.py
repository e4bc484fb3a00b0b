"""Variational AutoEncoder on the same conv trunk and decoder as the AutoEncoder, and its loss.

``encode(x) -> (mu, logvar)`` (two linear heads), ``reparameterize(mu, logvar, eps)``, ``decode(z)``.
The standard-normal noise ``eps`` is an input, drawn by the caller from an explicit generator.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dlrl.models.autoencoder import TRUNK_FEATURES, ConvDecoder, ConvTrunk, _check_dims


class VAELoss(NamedTuple):
    """Terms of the VAE objective, each a scalar: summed over pixels / latent dims, mean over the batch."""

    recon: torch.Tensor
    kl: torch.Tensor
    total: torch.Tensor


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over latent dims: (B, d) -> (B,)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def vae_loss(
    recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> VAELoss:
    """Negative ELBO terms as in pytorch/examples vae: BCE summed per image + beta * KL, mean over the batch.

    recon, x: (B, 1, H, W) in [0, 1]; mu, logvar: (B, d). ``total`` = recon + beta * kl.
    """
    batch = x.shape[0]
    bce = F.binary_cross_entropy(recon.reshape(batch, -1), x.reshape(batch, -1), reduction="sum") / batch
    kl = kl_to_standard_normal(mu, logvar).mean()
    return VAELoss(bce, kl, bce + beta * kl)


class VAE(nn.Module):
    """Conv trunk -> Linear(288, H) -> ReLU -> (mu, logvar) heads; decoder as the AutoEncoder's."""

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 128, dropout: float = 0.0):
        super().__init__()
        _check_dims(latent_dim, hidden_dim, dropout)
        self.latent_dim = latent_dim
        self.trunk = ConvTrunk(dropout)
        self.hidden = nn.Sequential(nn.Linear(TRUNK_FEATURES, hidden_dim), nn.ReLU())
        self.mu_head = nn.Linear(hidden_dim, latent_dim)
        self.logvar_head = nn.Linear(hidden_dim, latent_dim)
        self.decoder = ConvDecoder(latent_dim, hidden_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self.trunk(x))  # (B, 1, 28, 28) -> (B, H)
        return self.mu_head(h), self.logvar_head(h)  # (B, d) each

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None) -> torch.Tensor:
        """z = mu + sigma * eps; ``eps=None`` returns mu (deterministic decoding)."""
        if eps is None:
            return mu
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, d) -> (B, 1, 28, 28)

    def forward(
        self, x: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mu, logvar); eps: (B, d) standard-normal draws, or None for z = mu."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, eps)), mu, logvar


class MeanEncoder(nn.Module):
    """A VAE's encoder as a plain encoder: x -> mu (for fine-tuning and latent analysis)."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.trunk, self.hidden, self.mu_head = vae.trunk, vae.hidden, vae.mu_head
        self.latent_dim = vae.latent_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mu_head(self.hidden(self.trunk(x)))
