"""Networks for 1-D regression: one configurable MLP, and a batched ensemble of them for uncertainty."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


class RegressionNet(nn.Module):
    """x (B, in) -> [Linear -> activation -> Dropout] * depth -> Linear -> y (B, out)."""

    def __init__(
        self,
        hidden_sizes: list[int],
        activation: str = "tanh",
        dropout: float = 0.0,
        in_features: int = 1,
        out_features: int = 1,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r} (choose from {', '.join(ACTIVATIONS)})")
        self.hidden = nn.ModuleList()
        width = in_features
        for size in hidden_sizes:
            self.hidden.append(nn.Sequential(nn.Linear(width, size), ACTIVATIONS[activation]()))
            width = size
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = self.dropout(layer(x))
        return self.head(x)

    def hidden_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output of each hidden layer's activation (before dropout): a list of (B, width) tensors."""
        outputs = []
        for layer in self.hidden:
            x = layer(x)
            outputs.append(x)
        return outputs

    def linear_layers(self) -> list[tuple[str, nn.Linear]]:
        """(name, layer) of every Linear, input to output, for the weight histograms."""
        layers = [(f"hidden {i + 1}", block[0]) for i, block in enumerate(self.hidden)]
        return [*layers, ("output", self.head)]


class EnsembleLinear(nn.Module):
    """``members`` independent Linear layers applied at once: x (K, B, in) -> (K, B, out)."""

    def __init__(self, members: int, in_features: int, out_features: int, generator: torch.Generator):
        super().__init__()
        # The same uniform(-1/sqrt(in), 1/sqrt(in)) range as nn.Linear's default initialisation.
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(
            (torch.rand(members, in_features, out_features, generator=generator) * 2 - 1) * bound
        )
        self.bias = nn.Parameter((torch.rand(members, 1, out_features, generator=generator) * 2 - 1) * bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class RegressionEnsemble(nn.Module):
    """``members`` RegressionNets of the same shape, trained side by side in one batched forward pass.

    x (B, in) is shared by all members, or (K, B, in) gives each its own input; output (K, B, out).
    The spread of the members' predictions is the uncertainty of the fit (not of the noise).
    """

    def __init__(
        self,
        members: int,
        hidden_sizes: list[int],
        activation: str = "tanh",
        dropout: float = 0.0,
        in_features: int = 1,
        out_features: int = 1,
        seed: int = 0,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r} (choose from {', '.join(ACTIVATIONS)})")
        generator = torch.Generator().manual_seed(seed)
        self.members = members
        sizes = [in_features, *hidden_sizes, out_features]
        self.layers = nn.ModuleList(
            EnsembleLinear(members, a, b, generator) for a, b in itertools.pairwise(sizes)
        )
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)  # (B, in) -> (K, B, in)
        for layer in self.layers[:-1]:
            x = self.dropout(self.activation(layer(x)))
        return self.layers[-1](x)
