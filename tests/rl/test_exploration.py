import math

import numpy as np
import pytest

from dlrl.rl.exploration import (
    boltzmann_action,
    boltzmann_probabilities,
    epsilon_greedy,
    exponential_schedule,
    linear_schedule,
    schedule_curve,
    schedule_value,
)


def test_linear_schedule_hand_computed():
    assert linear_schedule(0, 1.0, 0.05, 1000) == 1.0
    assert linear_schedule(500, 1.0, 0.05, 1000) == pytest.approx(0.525)
    assert linear_schedule(1000, 1.0, 0.05, 1000) == 0.05
    assert linear_schedule(5000, 1.0, 0.05, 1000) == 0.05
    assert linear_schedule(10, 1.0, 0.05, 0) == 0.05


def test_exponential_schedule_hand_computed():
    assert exponential_schedule(0, 1.0, 0.01, 100) == 1.0
    assert exponential_schedule(50, 1.0, 0.01, 100) == pytest.approx(0.1)  # sqrt(1 * 0.01)
    assert exponential_schedule(100, 1.0, 0.01, 100) == pytest.approx(0.01)
    assert exponential_schedule(10**6, 1.0, 0.01, 100) == 0.01
    assert schedule_value("exponential", 25, 16.0, 1.0, 100) == pytest.approx(8.0)  # 16 * (1/16)^(1/4)


def test_schedule_value_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown schedule"):
        schedule_value("cosine", 0, 1.0, 0.1, 10)


def test_schedule_curve_is_monotone():
    steps, values = schedule_curve("linear", 1.0, 0.1, 50, 100, points=11)
    assert steps[0] == 0 and steps[-1] == 100
    assert np.all(np.diff(values) <= 0) and values[-1] == pytest.approx(0.1)


def test_boltzmann_probabilities_hand_computed():
    p = boltzmann_probabilities(np.array([0.0, math.log(3.0)]), temperature=1.0)
    assert p.tolist() == pytest.approx([0.25, 0.75])
    p = boltzmann_probabilities(np.array([0.0, math.log(3.0)]), temperature=0.5)  # 1 : 9
    assert p.tolist() == pytest.approx([0.1, 0.9])
    assert boltzmann_probabilities(np.array([1000.0, 0.0]), 1.0).tolist() == pytest.approx(
        [1.0, 0.0]
    )  # stable


def test_boltzmann_action_frequencies_follow_the_probabilities():
    rng = np.random.default_rng(0)
    q = np.array([0.0, math.log(3.0)])
    actions = [boltzmann_action(q, 1.0, rng) for _ in range(4000)]
    assert np.mean(actions) == pytest.approx(0.75, abs=0.03)
    assert all(boltzmann_action(q, 1e-6, rng) == 1 for _ in range(50))  # cold: greedy


def test_epsilon_greedy_extremes():
    rng = np.random.default_rng(0)
    q = np.array([0.1, 0.9, 0.2])
    assert all(epsilon_greedy(q, 0.0, rng) == 1 for _ in range(50))
    counts = np.bincount([epsilon_greedy(q, 1.0, rng) for _ in range(3000)], minlength=3)
    assert counts.min() > 850  # uniform over 3 actions
