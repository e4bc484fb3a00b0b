import numpy as np
import pytest
import torch

from dlrl.rl.buffer import ReplayBuffer, Transition


def _fill(buffer: ReplayBuffer, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        buffer.add(
            np.full(3, i, dtype=np.float32), i % 2, float(i), np.full(3, i + 1, dtype=np.float32), i % 5 == 4
        )


def test_add_writes_rows_and_ring_wraps():
    buffer = ReplayBuffer(4, (3,))
    _fill(buffer, 3)
    assert len(buffer) == 3 and not buffer.full
    assert buffer.obs[2].tolist() == [2, 2, 2] and buffer.next_obs[2].tolist() == [3, 3, 3]
    _fill(buffer, 3, start=3)  # 6 transitions into 4 slots: rows 0, 1 overwritten by 4, 5
    assert len(buffer) == 4 and buffer.full and buffer.pos == 2
    assert buffer.reward.tolist() == [4.0, 5.0, 2.0, 3.0]
    assert buffer.terminated.tolist() == [1.0, 0.0, 0.0, 0.0]  # only step 4 terminated


def test_sample_shapes_dtypes_and_consistency():
    buffer = ReplayBuffer(100, (3,))
    _fill(buffer, 50)
    batch = buffer.sample(16, torch.Generator().manual_seed(0))
    assert isinstance(batch, Transition)
    assert batch.obs.shape == (16, 3) and batch.next_obs.shape == (16, 3)
    assert batch.action.dtype == torch.int64 and batch.reward.shape == (16,)
    # rows stay aligned across fields: next_obs = obs + 1 and reward = obs in every sampled row
    assert torch.equal(batch.next_obs, batch.obs + 1)
    assert torch.equal(batch.reward, batch.obs[:, 0])
    assert batch.reward.max() < 50  # never samples unwritten rows


def test_sample_is_reproducible_with_the_generator():
    buffer = ReplayBuffer(100, (3,))
    _fill(buffer, 100)
    a = buffer.sample(8, torch.Generator().manual_seed(3))
    b = buffer.sample(8, torch.Generator().manual_seed(3))
    c = buffer.sample(8, torch.Generator().manual_seed(4))
    assert torch.equal(a.reward, b.reward) and not torch.equal(a.reward, c.reward)


def test_bad_capacity_and_empty_sample():
    with pytest.raises(ValueError, match="positive"):
        ReplayBuffer(0, (3,))
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, (3,)).sample(2, torch.Generator())
