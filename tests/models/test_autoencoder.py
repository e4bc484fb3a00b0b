"""The convolutional AutoEncoder: the original layer sequence, shapes, learning, the classifier wrapper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlrl.models.autoencoder import AutoEncoder, ConvDecoder, ConvEncoder, EncoderClassifier


def layer_signature(module: nn.Module) -> list[str]:
    out = []
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            extra = f",op{layer.output_padding[0]}" if isinstance(layer, nn.ConvTranspose2d) else ""
            out.append(
                f"{type(layer).__name__}({layer.in_channels}->{layer.out_channels},k{layer.kernel_size[0]},"
                f"s{layer.stride[0]},p{layer.padding[0]}{extra})"
            )
        elif isinstance(layer, nn.Linear):
            out.append(f"Linear({layer.in_features}->{layer.out_features})")
        elif isinstance(layer, nn.BatchNorm2d):
            out.append(f"BatchNorm2d({layer.num_features})")
        elif isinstance(layer, nn.ReLU | nn.Sigmoid | nn.Dropout | nn.Flatten | nn.Unflatten):
            out.append(type(layer).__name__)
    return out


def test_encoder_is_the_original_architecture() -> None:
    assert layer_signature(ConvEncoder(latent_dim=10, hidden_dim=64, dropout=0.2)) == [
        "Conv2d(1->8,k3,s2,p1)",
        "ReLU",
        "Conv2d(8->16,k3,s2,p1)",
        "BatchNorm2d(16)",
        "ReLU",
        "Dropout",
        "Conv2d(16->32,k3,s2,p0)",
        "ReLU",
        "Flatten",
        "Linear(288->64)",
        "ReLU",
        "Linear(64->10)",
    ]


def test_decoder_is_the_mirror_image() -> None:
    assert layer_signature(ConvDecoder(latent_dim=10, hidden_dim=64)) == [
        "Linear(10->64)",
        "ReLU",
        "Linear(64->288)",
        "ReLU",
        "Unflatten",
        "ConvTranspose2d(32->16,k3,s2,p0,op0)",
        "BatchNorm2d(16)",
        "ReLU",
        "ConvTranspose2d(16->8,k3,s2,p1,op1)",
        "BatchNorm2d(8)",
        "ReLU",
        "ConvTranspose2d(8->1,k3,s2,p1,op1)",
        "Sigmoid",
    ]


def test_shapes_and_output_range() -> None:
    model = AutoEncoder(latent_dim=3, hidden_dim=16).eval()
    x = torch.rand(5, 1, 28, 28)
    assert model.encode(x).shape == (5, 3)
    recon = model(x).detach()
    assert recon.shape == (5, 1, 28, 28)
    assert float(recon.min()) >= 0 and float(recon.max()) <= 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latent_dim": 0}, "latent_dim must be positive"),
        ({"hidden_dim": -1}, "hidden_dim must be positive"),
        ({"dropout": 1.0}, "dropout must be in"),
    ],
)
def test_bad_hyperparameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AutoEncoder(**kwargs)


def test_overfits_one_small_batch() -> None:
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1)).round()
    model = AutoEncoder(latent_dim=8, hidden_dim=32, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = nn.functional.mse_loss(model(x), x)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


def test_frozen_encoder_classifier_keeps_encoder_fixed() -> None:
    encoder = ConvEncoder(latent_dim=4, hidden_dim=8, dropout=0.5)
    model = EncoderClassifier(encoder, 4, 10, head_hidden=0, freeze_encoder=True).train()
    assert not encoder.training and model.head.training
    assert all(not p.requires_grad for p in encoder.parameters())
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(model(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    # Neither weights nor BatchNorm running statistics moved.
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    trainable = EncoderClassifier(ConvEncoder(4, 8), 4, 10, head_hidden=16).train()
    assert trainable.encoder.training and all(p.requires_grad for p in trainable.parameters())
