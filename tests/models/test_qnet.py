import torch

from dlrl.models.qnet import QNetwork


def test_shapes_and_flattening():
    q_net = QNetwork((2, 3), 4, [8, 8])
    assert q_net(torch.zeros(5, 2, 3)).shape == (5, 4)


def test_dueling_head_combines_value_and_centred_advantages():
    q_net = QNetwork((1,), 3, [], dueling=True)  # a single Linear: 1 -> 1 + 3
    with torch.no_grad():
        q_net.net[0].weight.zero_()
        q_net.net[0].bias.copy_(torch.tensor([10.0, 1.0, 2.0, 6.0]))  # V = 10, A = (1, 2, 6), mean A = 3
    assert q_net(torch.zeros(1, 1)).tolist() == [[8.0, 9.0, 13.0]]
