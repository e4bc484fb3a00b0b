import copy

import pytest
import torch
from torch import nn

from dlrl.models.qnet import QNetwork
from dlrl.rl.buffer import Transition
from dlrl.rl.dqn import dqn_update, polyak_update, td_target


def test_td_target_hand_computed():
    rewards = torch.tensor([1.0, 1.0, 0.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    next_q = torch.tensor([10.0, 10.0, -2.0])
    assert td_target(rewards, terminated, next_q, 0.9).tolist() == pytest.approx([10.0, 1.0, -1.8])


def test_polyak_update_hard_and_soft():
    online, target = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        online.weight.fill_(1.0), online.bias.fill_(1.0), target.weight.fill_(3.0), target.bias.fill_(3.0)
    polyak_update(online, target, 0.25)
    assert target.weight.tolist() == [[2.5, 2.5]] and target.bias.tolist() == [2.5]
    polyak_update(online, target, 1.0)
    assert target.weight.tolist() == [[1.0, 1.0]]


def _fixed_net(q_values: list[float]) -> nn.Module:
    """A 'network' that outputs the same Q-values for any input (bias only)."""
    net = nn.Linear(1, len(q_values))
    with torch.no_grad():
        net.weight.zero_()
        net.bias.copy_(torch.tensor(q_values))
    return net


def test_double_dqn_lets_the_online_net_choose_the_action():
    batch = Transition(
        torch.zeros(1, 1), torch.tensor([0]), torch.tensor([0.0]), torch.zeros(1, 1), torch.tensor([0.0])
    )
    target = _fixed_net([5.0, 1.0])  # target prefers action 0 (value 5), online prefers action 1
    for double, expected_target in ((False, 5.0), (True, 1.0)):
        online = _fixed_net([0.0, 9.0])
        optimizer = torch.optim.SGD(online.parameters(), lr=0.0)
        stats = dqn_update(
            online, target, optimizer, batch, gamma=1.0, double=double, huber=False, grad_clip=None
        )
        # squared error between Q(s, 0) = 0 and the target
        assert stats.loss.item() == expected_target**2
        assert stats.q_mean.item() == 0.0


def test_n_step_batches_bootstrap_with_their_own_discount():
    """A batch with a discount per transition (n-step returns) uses it instead of gamma."""
    target = _fixed_net([4.0, 2.0])
    discount = torch.tensor([0.5, 0.25])
    batch = Transition(
        torch.zeros(2, 1),
        torch.tensor([0, 0]),
        torch.tensor([1.0, 3.0]),
        torch.zeros(2, 1),
        torch.zeros(2),
        discount,
    )
    online = _fixed_net([0.0, 0.0])
    optimizer = torch.optim.SGD(online.parameters(), lr=0.0)
    stats = dqn_update(online, target, optimizer, batch, gamma=0.9, double=False, huber=False, grad_clip=None)
    # targets 1 + 0.5 * 4 = 3 and 3 + 0.25 * 4 = 4, against Q = 0
    assert stats.loss.item() == (3.0**2 + 4.0**2) / 2


def test_updates_fit_a_fixed_batch_and_clip_gradients():
    torch.manual_seed(0)
    q_net = QNetwork((4,), 2, [32])
    target = copy.deepcopy(q_net)
    g = torch.Generator().manual_seed(0)
    batch = Transition(
        torch.randn(32, 4, generator=g),
        torch.randint(2, (32,), generator=g),
        torch.randn(32, generator=g),
        torch.randn(32, 4, generator=g),
        torch.ones(32),
    )
    optimizer = torch.optim.Adam(q_net.parameters(), lr=1e-2)
    first = dqn_update(q_net, target, optimizer, batch, 0.99).loss.item()
    for _ in range(200):
        last = dqn_update(q_net, target, optimizer, batch, 0.99, grad_clip=1.0).loss.item()
    assert last < first * 0.05  # all terminal: targets are the rewards, learnable exactly
