"""Feed-forward classifier on flattened images."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLPClassifier(nn.Module):
    """Flatten -> [Linear -> (BatchNorm) -> activation -> Dropout] * len(hidden_sizes) -> Linear."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        hidden_sizes: list[int],
        activation: str = "relu",
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        batch_norm: bool = False,
    ):
        super().__init__()
        self.input_shape = tuple(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        if input_dropout:
            layers.append(nn.Dropout(input_dropout))
        width = math.prod(input_shape)
        for size in hidden_sizes:
            layers.append(nn.Linear(width, size, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 1, 28, 28) -> (B, num_classes) logits
