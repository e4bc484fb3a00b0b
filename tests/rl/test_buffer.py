import numpy as np
import pytest
import torch

from dlrl.rl.buffer import FrameReplayBuffer, ReplayBuffer, Transition


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


def n_step_reference(rows, n_step, gamma, newest):
    """(return, terminated, discount, index of the last row) of each row of ``rows`` (obs, action, reward,
    next_obs, terminated), summed the slow way: a row continues into the next when that row's obs is its
    next_obs and it did not terminate; ``newest`` (the last row) has no successor yet."""
    out = []
    for i in range(len(rows)):
        total, discount, last = rows[i][2], gamma, i
        for _ in range(n_step - 1):
            if rows[last][4] or last == newest or not np.array_equal(rows[last][3], rows[last + 1][0]):
                break
            last += 1
            total += discount * rows[last][2]
            discount *= gamma
        out.append((total, float(rows[last][4]), discount, last))
    return out


def test_n_step_returns_sum_rewards_within_the_episode():
    rows = [
        (np.full(3, i, dtype=np.float32), 0, float(i), np.full(3, i + 1, dtype=np.float32), i == 4)
        for i in range(8)
    ]
    # an episode cut without terminating (a time limit): row 8 starts elsewhere, so row 7 has no successor
    rows += [
        (np.full(3, 100 + i, dtype=np.float32), 1, 1.0, np.full(3, 101 + i, dtype=np.float32), False)
        for i in range(4)
    ]
    buffer = ReplayBuffer(20, (3,), n_step=3, gamma=0.5)
    for row in rows:
        buffer.add(*row)
    batch = buffer.sample(400, torch.Generator().manual_seed(0))
    expected = n_step_reference(rows, 3, 0.5, newest=len(rows) - 1)
    first = {float(row[0][0]): i for i, row in enumerate(rows)}
    seen = set()
    for obs, reward, next_obs, terminated, discount in zip(
        batch.obs, batch.reward, batch.next_obs, batch.terminated, batch.discount, strict=True
    ):
        i = first[float(obs[0])]
        total, done, factor, last = expected[i]
        assert (reward.item(), terminated.item(), discount.item()) == (total, done, factor)
        assert np.array_equal(next_obs.numpy(), rows[last][3])
        seen.add(i)
    assert len(seen) == len(rows)
    # hand-checked: 0 + 0.5 * 1 + 0.25 * 2; row 3 reaches the termination at row 4; row 7 stops at the cut;
    # row 10 at the newest row
    assert expected[0][:3] == (1.0, 0.0, 0.125) and expected[3][:3] == (5.0, 1.0, 0.25)
    assert expected[7][:3] == (7.0, 0.0, 0.5) and expected[10][:3] == (1.5, 0.0, 0.25)


def test_one_step_replay_has_no_discount_of_its_own():
    buffer = ReplayBuffer(10, (3,))
    _fill(buffer, 5)
    assert buffer.sample(4, torch.Generator().manual_seed(0)).discount is None


def _frame_episodes(lengths, terminated):
    """Transitions of episodes of stacked (3, 2, 2) frames, every frame distinct; rewards 1, 2, 3, ..."""
    rows, value = [], 0
    for length, ends in zip(lengths, terminated, strict=True):
        frames = [np.full((2, 2), value, dtype=np.uint8)] * 3  # a fresh episode: copies of its first frame
        for t in range(length):
            value += 1
            nxt = [*frames[1:], np.full((2, 2), value, dtype=np.uint8)]
            rows.append((np.stack(frames), t % 2, float(value), np.stack(nxt), ends and t == length - 1))
            frames = nxt
        value += 1
    return rows


def test_frame_replay_n_step_returns_match_the_slow_sum():
    """n-step returns rebuilt from frames: the same as summing the stored transitions one by one, cut at
    every episode's end (terminated or not); the ring wraps (capacity below the slots) without changing
    them."""
    rows = _frame_episodes([6, 3, 9, 5], [True, False, True, False])
    expected = n_step_reference(rows, 4, 0.5, newest=len(rows) - 1)
    index = {row[0].tobytes(): i for i, row in enumerate(rows)}
    assert len(index) == len(rows)
    for capacity in (100, 16):
        buffer = FrameReplayBuffer(capacity, (3, 2, 2), n_step=4, gamma=0.5)
        for row in rows:
            buffer.add(*row)
        batch = buffer.sample(300, torch.Generator().manual_seed(0))
        seen = set()
        for obs, reward, next_obs, terminated, discount in zip(
            batch.obs.numpy(),
            batch.reward,
            batch.next_obs.numpy(),
            batch.terminated,
            batch.discount,
            strict=True,
        ):
            i = index[obs.tobytes()]
            total, done, factor, last = expected[i]
            assert (reward.item(), terminated.item(), discount.item()) == (total, done, factor)
            assert np.array_equal(next_obs, rows[last][3])
            seen.add(i)
        assert len(seen) == (len(rows) if capacity == 100 else 9 + 5)  # 16 slots: the last two episodes
    # hand-checked: the first episode's rewards 1..6 end in a termination
    assert expected[0][:3] == (1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 4, 0.0, 0.0625)
    assert expected[4][:3] == (5 + 0.5 * 6, 1.0, 0.25)
