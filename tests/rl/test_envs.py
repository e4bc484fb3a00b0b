import pytest

from dlrl.errors import DlrlError
from dlrl.rl.envs import env_info, make_env


def test_cartpole_info():
    info = env_info("CartPole-v1")
    assert info.obs_shape == (4,) and info.num_actions == 2
    assert info.max_episode_steps == 500 and info.reward_threshold == 475.0


def test_unknown_env_id_suggests_a_close_one():
    with pytest.raises(
        DlrlError, match=r"env 'CartPole-v9': unknown Gymnasium environment id \(did you mean"
    ):
        make_env("CartPole-v9")


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0"])
def test_continuous_actions_are_refused(env_id):
    with pytest.raises(DlrlError, match="DQN needs discrete actions") as err:
        env_info(env_id)
    assert "\n" not in str(err.value)


def test_lunar_lander_is_there_with_box2d():
    info = env_info("LunarLander-v3")
    assert info.obs_shape == (8,) and info.num_actions == 4
    assert info.max_episode_steps == 1000 and info.reward_threshold == 200


def test_a_rendering_env_still_ends_on_sigterm(tmp_path):
    """SDL (pygame) takes SIGTERM over unless told not to: a pixel run must stop on a plain `kill`."""
    import signal
    import subprocess
    import sys
    import time

    script = (
        "from dlrl.rl.envs import make_env\n"
        "env = make_env('CartPole-v1', render_mode='rgb_array'); env.reset(seed=0); env.render()\n"
        "print('ready', flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(timeout=30) == -signal.SIGTERM and time.monotonic() - started < 30
    finally:
        proc.kill()
        proc.wait()
