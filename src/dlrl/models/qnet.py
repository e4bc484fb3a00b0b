"""Q-networks: state in, one value per discrete action out."""

from __future__ import annotations

import math

import torch
from torch import nn

from dlrl.models.mlp import ACTIVATIONS


class QNetwork(nn.Module):
    """MLP on the flattened state: [Linear -> activation] * len(hidden_sizes) -> Linear(num_actions)."""

    def __init__(
        self, obs_shape: tuple[int, ...], num_actions: int, hidden_sizes: list[int], activation: str = "relu"
    ):
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.num_actions = num_actions
        layers: list[nn.Module] = []
        width = math.prod(obs_shape)
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            width = size
        layers.append(nn.Linear(width, num_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.flatten(1))  # (B, *obs_shape) -> (B, num_actions)
