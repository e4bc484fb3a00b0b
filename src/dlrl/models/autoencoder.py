"""Convolutional AutoEncoder of Part 2: ``ConvEncoder``, ``ConvDecoder`` and ``AutoEncoder``.

The architecture is the original project's, kept exact; only the hidden width ``hidden_dim`` (H), the
encoded-space dimension ``latent_dim`` (d) and the dropout rate are hyperparameters. The denoising
AutoEncoder is this same class trained on noisy inputs (noise is a data step, see dlrl.data.noise).
"""

from __future__ import annotations

import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
# Channels and spatial size after the conv trunk: 28 -> 14 -> 7 -> 3 (last conv has no padding).
TRUNK_SHAPE = (32, 3, 3)
TRUNK_FEATURES = TRUNK_SHAPE[0] * TRUNK_SHAPE[1] * TRUNK_SHAPE[2]  # 288


def _check_dims(latent_dim: int, hidden_dim: int, dropout: float) -> None:
    if latent_dim <= 0:
        raise ValueError(f"latent_dim must be positive, got {latent_dim}")
    if hidden_dim <= 0:
        raise ValueError(f"hidden_dim must be positive, got {hidden_dim}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


class ConvTrunk(nn.Sequential):
    """The convolutional part of the encoder: (B, 1, 28, 28) -> (B, 288)."""

    def __init__(self, dropout: float = 0.0):
        super().__init__(
            nn.Conv2d(1, 8, kernel_size=3, stride=2, padding=1),  # -> (B, 8, 14, 14)
            nn.ReLU(),
            nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1),  # -> (B, 16, 7, 7)
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=0),  # -> (B, 32, 3, 3)
            nn.ReLU(),
            nn.Flatten(),  # -> (B, 288)
        )


class ConvEncoder(nn.Module):
    """Conv trunk -> Linear(288, H) -> ReLU -> Linear(H, d): (B, 1, 28, 28) -> (B, d)."""

    def __init__(self, latent_dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        _check_dims(latent_dim, hidden_dim, dropout)
        self.latent_dim = latent_dim
        self.trunk = ConvTrunk(dropout)
        self.head = nn.Sequential(
            nn.Linear(TRUNK_FEATURES, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, latent_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


class ConvDecoder(nn.Module):
    """Mirror image of the encoder: (B, d) -> (B, 1, 28, 28) in (0, 1)."""

    def __init__(self, latent_dim: int, hidden_dim: int):
        super().__init__()
        _check_dims(latent_dim, hidden_dim, 0.0)
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, TRUNK_FEATURES),
            nn.ReLU(),
            nn.Unflatten(1, TRUNK_SHAPE),  # -> (B, 32, 3, 3)
            nn.ConvTranspose2d(32, 16, kernel_size=3, stride=2, output_padding=0),  # -> (B, 16, 7, 7)
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.ConvTranspose2d(
                16, 8, kernel_size=3, stride=2, padding=1, output_padding=1
            ),  # -> (B, 8, 14, 14)
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.ConvTranspose2d(
                8, 1, kernel_size=3, stride=2, padding=1, output_padding=1
            ),  # -> (B, 1, 28, 28)
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class AutoEncoder(nn.Module):
    """encoder then decoder; ``forward`` returns the reconstruction (B, 1, 28, 28)."""

    def __init__(self, latent_dim: int = 10, hidden_dim: int = 128, dropout: float = 0.1):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = ConvEncoder(latent_dim, hidden_dim, dropout)
        self.decoder = ConvDecoder(latent_dim, hidden_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, 1, 28, 28) -> (B, d)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, d) -> (B, 1, 28, 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class EncoderClassifier(nn.Module):
    """An encoder (B, 1, 28, 28) -> (B, d) followed by a small head -> (B, num_classes) logits.

    With ``freeze_encoder`` the encoder's parameters get no gradients and it stays in eval mode (fixed
    BatchNorm statistics, no dropout) even while the head trains.
    """

    def __init__(
        self,
        encoder: nn.Module,
        latent_dim: int,
        num_classes: int,
        head_hidden: int = 64,
        freeze_encoder: bool = False,
    ):
        super().__init__()
        self.encoder = encoder
        self.freeze_encoder = freeze_encoder
        if head_hidden > 0:
            self.head: nn.Module = nn.Sequential(
                nn.Linear(latent_dim, head_hidden), nn.ReLU(), nn.Linear(head_hidden, num_classes)
            )
        else:
            self.head = nn.Linear(latent_dim, num_classes)
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(not freeze_encoder)

    def train(self, mode: bool = True) -> EncoderClassifier:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, 1, 28, 28) -> (B, d) -> (B, num_classes)
