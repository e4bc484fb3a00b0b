"""Regression networks: shapes, hidden activations, overfitting a tiny batch, the batched ensemble."""

from __future__ import annotations

import pytest
import torch

from dlrl.models.regression import RegressionEnsemble, RegressionNet


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "silu"])
def test_shapes_and_hidden_activations(activation: str) -> None:
    torch.manual_seed(0)
    net = RegressionNet([16, 8, 4], activation, dropout=0.1)
    x = torch.randn(5, 1)
    assert net(x).shape == (5, 1)
    hidden = net.hidden_activations(x)
    assert [h.shape for h in hidden] == [(5, 16), (5, 8), (5, 4)]
    if activation == "tanh":
        assert all(h.abs().max() <= 1 for h in hidden)
    names = [name for name, _ in net.linear_layers()]
    assert names == ["hidden 1", "hidden 2", "hidden 3", "output"]


def test_dropout_is_off_in_eval_mode() -> None:
    torch.manual_seed(0)
    net = RegressionNet([32], "relu", dropout=0.5).eval()
    x = torch.randn(8, 1)
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_unknown_activation() -> None:
    with pytest.raises(ValueError, match="unknown activation 'sigmoid'"):
        RegressionNet([4], "sigmoid")


def test_overfits_a_tiny_batch() -> None:
    torch.manual_seed(0)
    net = RegressionNet([32, 32], "tanh")
    x = torch.linspace(-2, 2, 16).reshape(-1, 1)
    y = torch.sin(3 * x) + 0.3 * torch.randn_like(x)  # noise the net must memorise
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(600):
        loss = torch.mean((net(x) - y) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 1e-3


def test_ensemble_members_are_independent_nets() -> None:
    ensemble = RegressionEnsemble(3, [8, 8], "tanh", seed=0)
    x = torch.randn(6, 1)
    out = ensemble(x)
    assert out.shape == (3, 6, 1)
    assert not torch.allclose(out[0], out[1])  # different initialisations
    # Member k is the same function as a RegressionNet with member k's weights.
    net = RegressionNet([8, 8], "tanh")
    linears = [layer for _, layer in net.linear_layers()]
    with torch.no_grad():
        for source, target in zip(ensemble.layers, linears, strict=True):
            target.weight.copy_(source.weight[1].T)
            target.bias.copy_(source.bias[1, 0])
    torch.testing.assert_close(net(x), out[1])
    # A loss on one member's output leaves the other members' gradients at zero.
    ensemble(x)[2].sum().backward()
    assert ensemble.layers[0].weight.grad[:2].abs().sum() == 0
    assert ensemble.layers[0].weight.grad[2].abs().sum() > 0


def test_ensemble_initialisation_follows_the_seed() -> None:
    a, b, c = (RegressionEnsemble(2, [4], seed=s) for s in (1, 1, 2))
    assert torch.equal(a.layers[0].weight, b.layers[0].weight)
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)
