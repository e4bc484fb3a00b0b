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


def conv_output_size(size: int, kernel: int, stride: int) -> int:
    """Length of one spatial axis after an unpadded convolution."""
    return (size - kernel) // stride + 1


class ConvQNetwork(nn.Module):
    """Q-network on stacked uint8 frames (B, k, H, W): [Conv2d -> activation] * len(channels), then the
    same MLP head as QNetwork (hidden_sizes, optionally dueling) on the flattened features.

    Pixels are scaled to [0, 1] inside ``forward``, so the replay memory and the acting code keep uint8
    frames (or floats of the same 0..255 values). ``differences``: the conv layers see the newest frame
    and the k-1 differences between consecutive frames, times DIFFERENCE_GAIN around 0.5, instead of the
    k frames: motion, a sub-pixel grey-level change between frames, then stands out from the image.
    """

    DIFFERENCE_GAIN = 4.0

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        num_actions: int,
        channels: list[int],
        kernels: list[int],
        strides: list[int],
        hidden_sizes: list[int],
        activation: str = "relu",
        dueling: bool = False,
        differences: bool = False,
    ):
        super().__init__()
        self.differences = differences
        if not (len(channels) == len(kernels) == len(strides)):
            raise ValueError("conv channels, kernels and strides must have the same length")
        stack, height, width = obs_shape
        self.obs_shape = tuple(obs_shape)
        self.num_actions = num_actions
        layers: list[nn.Module] = []
        in_channels = stack
        for out_channels, kernel, stride in zip(channels, kernels, strides, strict=True):
            layers += [nn.Conv2d(in_channels, out_channels, kernel, stride), ACTIVATIONS[activation]()]
            height, width = conv_output_size(height, kernel, stride), conv_output_size(width, kernel, stride)
            if height <= 0 or width <= 0:
                raise ValueError(
                    f"the conv layers shrink the {obs_shape[1]}x{obs_shape[2]} frames to nothing "
                    f"(kernel {kernel}, stride {stride}); use larger frames or smaller kernels"
                )
            in_channels = out_channels
        self.features = nn.Sequential(*layers, nn.Flatten())  # (B, k, H, W) -> (B, C * h * w)
        # channels-last weights and inputs: oneDNN's convolutions then run an update 25-30% faster on CPU
        # (AVX-512 and AVX2 alike), with the same parameters in the same order
        self.features.to(memory_format=torch.channels_last)
        self.head = QNetwork((in_channels * height * width,), num_actions, hidden_sizes, activation, dueling)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.contiguous(memory_format=torch.channels_last).float() / 255.0  # (B, k, H, W), oldest first
        if self.differences:
            motion = (x[:, 1:] - x[:, :-1]) * self.DIFFERENCE_GAIN + 0.5
            x = torch.cat([x[:, -1:], motion], dim=1)
        return self.head(self.features(x))  # (B, k, H, W) -> (B, num_actions)
