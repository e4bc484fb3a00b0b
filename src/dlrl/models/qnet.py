"""Q-networks: state in, one value per discrete action out."""

from __future__ import annotations

import math

import torch
from torch import nn

from dlrl.models.mlp import ACTIVATIONS


class QNetwork(nn.Module):
    """MLP on the flattened state: [Linear -> activation] * len(hidden_sizes) -> Linear(num_actions).

    ``dueling``: the last layer gives a state value V(s) and advantages A(s, a), combined as
    Q = V + A - mean_a A (Wang et al. 2016), so that small differences between actions are learnt apart
    from the large value they share.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        hidden_sizes: list[int],
        activation: str = "relu",
        dueling: bool = False,
    ):
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.num_actions = num_actions
        self.dueling = dueling
        layers: list[nn.Module] = []
        width = math.prod(obs_shape)
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            width = size
        layers.append(nn.Linear(width, num_actions + 1 if dueling else num_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.net(obs.flatten(1))  # (B, *obs_shape) -> (B, num_actions [+ 1])
        if not self.dueling:
            return out
        value, advantage = out[:, :1], out[:, 1:]  # (B, 1), (B, num_actions)
        return value + advantage - advantage.mean(dim=1, keepdim=True)
