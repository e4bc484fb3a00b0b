import numpy as np
import torch

from dlrl.models.qnet import QNetwork
from dlrl.rl.evaluate import greedy_frames, greedy_returns


def test_greedy_returns_are_reproducible_and_in_range():
    torch.manual_seed(0)
    q_net = QNetwork((4,), 2, [8])
    a = greedy_returns(q_net, "CartPole-v1", 5, seed=7)
    b = greedy_returns(q_net, "CartPole-v1", 5, seed=7)
    assert a.shape == (5,) and np.array_equal(a, b)
    assert np.all((a >= 1) & (a <= 500)) and np.all(a == np.round(a))


def test_greedy_frames_render_without_a_screen():
    torch.manual_seed(0)
    frames, returns = greedy_frames(QNetwork((4,), 2, [8]), "CartPole-v1", 1, seed=0, every=5)
    assert len(returns) == 1 and frames[0].shape == (400, 600, 3) and frames[0].dtype == np.uint8
    assert len(frames) == int(returns[0] - 1) // 5 + 2  # every 5th step plus the final frame
