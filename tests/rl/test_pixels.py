"""The pixel pipeline: frame processing, the observation wrapper, the frame replay memory and the conv net."""

import numpy as np
import pytest
import torch

from dlrl.errors import DlrlError
from dlrl.models.qnet import ConvQNetwork
from dlrl.rl.buffer import FrameReplayBuffer, ReplayBuffer, check_replay_fits, replay_state_bytes
from dlrl.rl.envs import EnvMaker, env_info
from dlrl.rl.pixels import FrameProcessor, area_matrix, side_by_side

CARTPOLE_PIXELS = EnvMaker("CartPole-v1", True, (160, 320, 0, 600), (16, 48), 3)


def test_area_matrix_averages_the_pixels_each_cell_covers():
    assert np.allclose(area_matrix(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    # 3 -> 2: each output cell covers 1.5 pixels
    assert np.allclose(area_matrix(3, 2), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])
    assert np.allclose(area_matrix(600, 96).sum(axis=1), 1.0)


def test_frame_processor_crops_greys_and_downsamples():
    rgb = np.full((8, 12, 3), 255, dtype=np.uint8)
    rgb[2:4, 0:6] = 0  # a black 2x6 block in the top-left quarter of the crop below
    processor = FrameProcessor(rgb.shape, (2, 6, 0, 12), (2, 2))
    out = processor(rgb)
    assert out.dtype == np.uint8 and out.tolist() == [[0, 255], [255, 255]]
    with pytest.raises(ValueError, match="does not fit"):
        FrameProcessor(rgb.shape, (2, 10, 0, 12), (2, 2))
    with pytest.raises(ValueError, match="larger than the cropped"):
        FrameProcessor(rgb.shape, (2, 4, 0, 12), (3, 2))


def test_pixel_env_gives_stacked_frames_only():
    env = CARTPOLE_PIXELS()
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (3, 16, 48) and obs.dtype == np.uint8
        assert all(np.array_equal(obs[0], f) for f in obs)  # a fresh episode: copies of its first frame
        assert obs.min() < 100 < 250 < obs.max()  # the dark cart on white
        nxt, *_ = env.step(1)
        assert np.array_equal(nxt[:-1], obs[1:])  # the stack moves on by one frame
        for _ in range(6):
            later, _, terminated, *_ = env.step(1)
            assert not terminated
        assert not np.array_equal(later[-1], obs[-1])  # pushed right 7 times: cart and pole have moved
    finally:
        env.close()
    info = env_info(CARTPOLE_PIXELS)
    assert info.obs_shape == (3, 16, 48) and info.num_actions == 2 and info.reward_threshold == 475


def test_action_repeat_plays_the_action_several_env_steps():
    env = EnvMaker("CartPole-v1", True, (160, 320, 0, 600), (16, 48), 2, repeat=3)()
    try:
        env.reset(seed=0)
        _, reward, terminated, truncated, _ = env.step(1)
        assert reward == 3.0 and not (terminated or truncated)
        assert env.get_wrapper_attr("_elapsed_steps") == 3  # the time limit counts env steps
    finally:
        env.close()


def test_pixel_env_bad_crop_is_one_line():
    with pytest.raises(DlrlError, match=r"pixels: crop .* does not fit in the rendered 400x600 frame"):
        EnvMaker("CartPole-v1", True, (0, 500, 0, 600), (16, 48), 2)()


def _episode(env, seed, steps):
    """(obs, action, reward, next_obs, terminated) of up to ``steps`` random steps of one episode."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        action = int(rng.integers(2))
        nxt, reward, terminated, truncated, _ = env.step(action)
        out.append((obs, action, reward, nxt, terminated))
        obs = nxt
        if terminated or truncated:
            break
    return out


@pytest.fixture(scope="module")
def transitions():
    env = CARTPOLE_PIXELS()
    try:
        return [t for seed in range(4) for t in _episode(env, seed, 40)]
    finally:
        env.close()


def _rows(buffer, transitions):
    """Every stored transition's (obs, next_obs) rebuilt by sampling all valid slots."""
    batch = buffer.sample(2000, torch.Generator().manual_seed(0))
    return {(float(r), int(a)): None for r, a in zip(batch.reward, batch.action, strict=True)}, batch


def test_frame_replay_rebuilds_every_observation_exactly(transitions):
    buffer = FrameReplayBuffer(1000, (3, 16, 48))
    for t in transitions:
        buffer.add(*t)
    episodes = 4
    assert len(buffer) == len(transitions) + episodes  # one frame per step, one first frame per episode
    batch = buffer.sample(500, torch.Generator().manual_seed(0))
    stored = {(t[0].tobytes(), t[3].tobytes()) for t in transitions}
    for obs, nxt in zip(batch.obs.numpy(), batch.next_obs.numpy(), strict=True):
        assert (obs.tobytes(), nxt.tobytes()) in stored
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (500, 3, 16, 48)


def test_frame_replay_ring_never_samples_overwritten_frames(transitions):
    buffer = FrameReplayBuffer(30, (3, 16, 48))  # far smaller than the transitions: the ring wraps
    for t in transitions:
        buffer.add(*t)
    stored = {(t[0].tobytes(), t[3].tobytes()) for t in transitions}
    batch = buffer.sample(300, torch.Generator().manual_seed(1))
    for obs, nxt in zip(batch.obs.numpy(), batch.next_obs.numpy(), strict=True):
        assert (obs.tobytes(), nxt.tobytes()) in stored
    recent = {t[3].tobytes() for t in transitions[-30:]}
    assert all(n.tobytes() in recent for n in batch.next_obs.numpy())


def test_frame_replay_refuses_observations_that_are_no_stack(transitions):
    obs, action, reward, nxt, terminated = transitions[0]
    with pytest.raises(ValueError, match="shifted by one frame"):
        wrong = nxt.copy()
        wrong[0] = 0  # its first frame is not obs's second
        FrameReplayBuffer(10, (3, 16, 48)).add(obs, action, reward, wrong, terminated)


def test_frame_replay_state_round_trip_samples_the_same(transitions):
    buffer = FrameReplayBuffer(50, (3, 16, 48))
    for t in transitions[:70]:
        buffer.add(*t)
    state = buffer.state_dict()
    # one frame and 15 bytes (action uint8, reward, terminated, episode start, kind) per slot + the last stack
    assert replay_state_bytes(state) == 50 * (16 * 48 + 15) + 3 * 16 * 48
    copy = FrameReplayBuffer(50, (3, 16, 48))
    copy.load_state_dict(state)
    for t in transitions[70:80]:  # both go on the same way after the restore
        buffer.add(*t)
        copy.add(*t)
    a = buffer.sample(64, torch.Generator().manual_seed(2))
    b = copy.sample(64, torch.Generator().manual_seed(2))
    assert a.discount is b.discount is None  # one-step returns
    assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in a._fields if f != "discount")


def test_state_replay_round_trip_is_bit_exact_and_compact():
    buffer = ReplayBuffer(8, (2,))
    rng = np.random.default_rng(0)
    obs = rng.normal(size=2).astype(np.float32)
    for i in range(11):  # 11 into 8 rows: rows 0..7 hold i = 8, 9, 10, 3, 4, 5, 6, 7
        nxt = np.array([-0.0, 1.0], np.float32) if i == 4 else rng.normal(size=2).astype(np.float32)
        buffer.add(obs, i % 2, float(i), nxt, i == 4)
        # the episode ending at i = 4 is followed by one starting at [0.0, 1.0]: equal, but not in its bits
        obs = np.array([0.0, 1.0], np.float32) if i == 4 else nxt
    state = buffer.state_dict()
    # next_obs is stored only where it is not the next row's obs: the episode end (row 4), the newest (row 2)
    assert state["next_obs_own"].nonzero().flatten().tolist() == [2, 4]
    copy = ReplayBuffer(8, (2,))
    copy.load_state_dict(state)
    for field in ("obs", "next_obs", "action", "reward", "terminated"):
        assert torch.equal(getattr(buffer, field).view(torch.uint8), getattr(copy, field).view(torch.uint8))
    assert (copy.pos, copy.full) == (buffer.pos, buffer.full)


def test_replay_memory_that_does_not_fit_is_refused_before_allocating():
    assert check_replay_fits(1000, (4, 32, 96), True, available=10**9) == 1000 * (32 * 96 + 25)
    with pytest.raises(DlrlError, match=r"buffer_size 10,000,000: the replay memory needs 28.8 GiB") as err:
        check_replay_fits(10_000_000, (4, 32, 96), True, agents=1, available=2**30)
    assert "\n" not in str(err.value) and "3,097 bytes per transition" in str(err.value)
    with pytest.raises(DlrlError, match=r"\(2 agents in parallel\)"):
        check_replay_fits(10**8, (4,), False, agents=2, available=2**30)


def test_conv_q_network_shapes_and_scaling():
    torch.manual_seed(0)
    net = ConvQNetwork((3, 16, 48), 2, [4, 8], [4, 3], [2, 1], [16], dueling=True)
    frames = torch.randint(0, 256, (5, 3, 16, 48), dtype=torch.uint8)
    out = net(frames)
    assert out.shape == (5, 2)
    assert torch.allclose(out, net(frames.float()))  # uint8 or the same values as floats
    # frame differences: the conv layers see the newest frame and the motion between frames
    diff = ConvQNetwork((3, 16, 48), 2, [4, 8], [4, 3], [2, 1], [16], differences=True)
    seen = []
    diff.features.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    still = torch.full((1, 3, 16, 48), 51, dtype=torch.uint8)  # three equal frames: no motion
    assert diff(still).shape == (1, 2)
    assert torch.allclose(seen[0][0, 0], torch.tensor(0.2)) and torch.allclose(
        seen[0][0, 1:], torch.tensor(0.5)
    )
    with pytest.raises(ValueError, match="shrink the 8x8 frames to nothing"):
        ConvQNetwork((3, 8, 8), 2, [4, 8], [8, 4], [4, 2], [16])


def test_side_by_side_shows_the_frames_beside_the_screen():
    rgb = np.zeros((400, 600, 3), dtype=np.uint8)
    frame = side_by_side(rgb, np.full((4, 32, 96), 7, dtype=np.uint8))
    assert frame.shape == (400, 600 + 8 + 96 * 3, 3)
    assert (frame[: 4 * 32 * 3, 608:] == 7).all() and (frame[4 * 32 * 3 :, 608:] == 255).all()
